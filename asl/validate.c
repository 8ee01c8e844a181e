/* asl/validate.c - definition validation as AWS does it (asl.md section 13): every
 * diagnostic with AWS's code, message and location, then the features this engine cannot
 * run yet. One table (state_fields) says which fields each state type accepts and how each
 * value is checked; check_state() walks it for every state, nested branches and Map
 * processors included. The graph checks (targets, reachability, terminal state) run after
 * the structural walk, over the scopes it recorded. Pure: no I/O, reports through diags.
 * Every json_t parameter in this file is borrowed; nothing here modifies the definition. */
#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "asl/asl.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/xalloc.h"

#define CODE_SCHEMA "SCHEMA_VALIDATION_FAILED"
#define CODE_TARGET "MISSING_TRANSITION_TARGET"
#define CODE_END "MISSING_END_STATE"
#define CODE_DUP "DUPLICATE_STATE_NAME"
#define CODE_JSON "INVALID_JSON_DESCRIPTION"
#define CODE_UNSUPPORTED "UNSUPPORTED_FEATURE"

#define STATE_NAME_MAX 80     /* asl.md 1.1: state names are 1..80 characters */
#define SECONDS_MAX 99999999  /* AWS schema maximum for every *Seconds field */
#define MAX_DELAY_MAX 31622400 /* asl.md 9.3: MaxDelaySeconds 1..31,622,400 (366 days) */
#define LABEL_MAX 40          /* asl.md 11.1: Map Label */

/* ---------------------------------------------------------------------------------------
 * Features AWS accepts that this engine cannot run yet. A definition that is otherwise
 * valid gets one UNSUPPORTED_FEATURE diagnostic per use, located at the field. When a
 * feature lands, set its message to NULL (or delete the entry and its uses).
 */
enum unsupported {
    UNSUP_JSONATA,     /* QueryLanguage JSONata, anywhere */
    UNSUP_ASSIGN,      /* Assign fields (workflow variables) */
    UNSUP_VARIABLE,    /* $name references in paths, templates and choice rules */
    UNSUP_DISTRIBUTED, /* ProcessorConfig.Mode DISTRIBUTED */
    UNSUP_MAP_FIELDS,  /* ItemReader, ItemBatcher, ResultWriter, Label, ExecutionType */
};

static const char *const unsupported_message[] = {
    [UNSUP_JSONATA] = "JSONata (QueryLanguage 'JSONata') is not supported by this engine yet",
    [UNSUP_ASSIGN] = "Workflow variables ('Assign') are not supported by this engine yet",
    [UNSUP_VARIABLE] = "Workflow variable references ('$name') are not supported by this "
                       "engine yet",
    [UNSUP_DISTRIBUTED] = "Distributed Map (ProcessorConfig.Mode DISTRIBUTED) is not "
                          "supported by this engine yet",
    [UNSUP_MAP_FIELDS] = "Distributed Map fields (ItemReader, ItemBatcher, ResultWriter, "
                         "Label, ExecutionType) are not supported by this engine yet",
};

/* ---------------------------------------------------------------------------------------
 * Which fields each state type accepts (asl.md 2), and how each value is checked.
 */
enum {
    T_PASS = 1u << 0,
    T_TASK = 1u << 1,
    T_CHOICE = 1u << 2,
    T_WAIT = 1u << 3,
    T_SUCCEED = 1u << 4,
    T_FAIL = 1u << 5,
    T_PARALLEL = 1u << 6,
    T_MAP = 1u << 7,
};
#define T_ALL 0xffu
#define T_IO (T_ALL & ~(unsigned)T_FAIL)                     /* InputPath, OutputPath */
#define T_FLOW (T_PASS | T_TASK | T_WAIT | T_PARALLEL | T_MAP) /* Next / End */
#define T_RESULT (T_PASS | T_TASK | T_PARALLEL | T_MAP)        /* ResultPath */
#define T_ERRH (T_TASK | T_PARALLEL | T_MAP)                   /* Retry, Catch */
#define T_ASSIGN (T_PASS | T_TASK | T_CHOICE | T_WAIT | T_PARALLEL | T_MAP)

/* "Type" values in AWS's order (the order its message lists them). */
static const struct {
    const char *name;
    unsigned bit;
} state_types[] = {
    {"Task", T_TASK}, {"Wait", T_WAIT},   {"Pass", T_PASS},         {"Succeed", T_SUCCEED},
    {"Fail", T_FAIL}, {"Choice", T_CHOICE}, {"Parallel", T_PARALLEL}, {"Map", T_MAP},
};

enum lang {
    LANG_BOTH,     /* accepted in either query language */
    LANG_JSONPATH, /* JSONPath-only field */
    LANG_JSONATA,  /* JSONata-only field */
};

enum kind {
    K_SKIP,        /* checked elsewhere (Type) */
    K_STRING,      /* any string */
    K_QUERY_LANG,  /* "JSONPath" | "JSONata" */
    K_PATH,        /* Path or null (InputPath, OutputPath) */
    K_RESULT_PATH, /* Reference Path without $$, or null */
    K_REF_PATH,    /* Reference Path (*Path fields) */
    K_TEMPLATE,    /* payload template (Parameters, ResultSelector, ItemSelector) */
    K_ANY,         /* any JSON value (Result, Output, Arguments, Items) */
    K_TARGET,      /* a state name (Next, Default) */
    K_BOOL,        /* End */
    K_RESOURCE,    /* Task Resource ARN */
    K_INTEGER,     /* integer within [min, max] (or a JSONata expression) */
    K_NUMBER,      /* number within [min, max] (or a JSONata expression) */
    K_TIMESTAMP,   /* RFC 3339 timestamp (or a JSONata expression) */
    K_ERROR_PATH,  /* Fail ErrorPath / CausePath: Reference Path or intrinsic call */
    K_RETRY,       /* Retry array */
    K_CATCH,       /* Catch array */
    K_CREDENTIALS, /* Task Credentials */
    K_CHOICES,     /* Choice rules */
    K_BRANCHES,    /* Parallel branches */
    K_PROCESSOR,   /* Map ItemProcessor */
    K_ITERATOR,    /* Map Iterator (deprecated ItemProcessor) */
    K_ASSIGN,      /* Assign object */
    K_MAP_EXTRA,   /* ItemReader / ItemBatcher / ResultWriter: objects */
    K_LABEL,       /* Map Label */
};

struct field_rule {
    const char *name; /* field name as written in the definition */
    unsigned types;   /* T_* bits of the state types that accept it */
    enum lang lang;   /* the query language(s) it belongs to */
    enum kind kind;   /* how its value is checked */
    double min, max;  /* K_INTEGER / K_NUMBER range */
};

static const struct field_rule state_fields[] = {
    {"Type", T_ALL, LANG_BOTH, K_SKIP, 0, 0},
    {"Comment", T_ALL, LANG_BOTH, K_STRING, 0, 0},
    {"QueryLanguage", T_ALL, LANG_BOTH, K_QUERY_LANG, 0, 0},
    {"InputPath", T_IO, LANG_JSONPATH, K_PATH, 0, 0},
    {"OutputPath", T_IO, LANG_JSONPATH, K_PATH, 0, 0},
    {"Parameters", T_PASS | T_TASK | T_PARALLEL | T_MAP, LANG_JSONPATH, K_TEMPLATE, 0, 0},
    {"Result", T_PASS, LANG_JSONPATH, K_ANY, 0, 0},
    {"ResultPath", T_RESULT, LANG_JSONPATH, K_RESULT_PATH, 0, 0},
    {"ResultSelector", T_ERRH, LANG_JSONPATH, K_TEMPLATE, 0, 0},
    {"Output", T_IO, LANG_JSONATA, K_ANY, 0, 0},
    {"Arguments", T_TASK | T_PARALLEL, LANG_JSONATA, K_ANY, 0, 0},
    {"Assign", T_ASSIGN, LANG_BOTH, K_ASSIGN, 0, 0},
    {"Next", T_FLOW, LANG_BOTH, K_TARGET, 0, 0},
    {"End", T_FLOW, LANG_BOTH, K_BOOL, 0, 0},
    /* Task */
    {"Resource", T_TASK, LANG_BOTH, K_RESOURCE, 0, 0},
    {"TimeoutSeconds", T_TASK, LANG_BOTH, K_INTEGER, 1, SECONDS_MAX},
    {"TimeoutSecondsPath", T_TASK, LANG_JSONPATH, K_REF_PATH, 0, 0},
    {"HeartbeatSeconds", T_TASK, LANG_BOTH, K_INTEGER, 1, SECONDS_MAX},
    {"HeartbeatSecondsPath", T_TASK, LANG_JSONPATH, K_REF_PATH, 0, 0},
    {"Credentials", T_TASK, LANG_BOTH, K_CREDENTIALS, 0, 0},
    {"Retry", T_ERRH, LANG_BOTH, K_RETRY, 0, 0},
    {"Catch", T_ERRH, LANG_BOTH, K_CATCH, 0, 0},
    /* Choice */
    {"Choices", T_CHOICE, LANG_BOTH, K_CHOICES, 0, 0},
    {"Default", T_CHOICE, LANG_BOTH, K_TARGET, 0, 0},
    /* Wait */
    {"Seconds", T_WAIT, LANG_BOTH, K_INTEGER, 0, SECONDS_MAX},
    {"Timestamp", T_WAIT, LANG_BOTH, K_TIMESTAMP, 0, 0},
    {"SecondsPath", T_WAIT, LANG_JSONPATH, K_REF_PATH, 0, 0},
    {"TimestampPath", T_WAIT, LANG_JSONPATH, K_REF_PATH, 0, 0},
    /* Fail */
    {"Error", T_FAIL, LANG_BOTH, K_STRING, 0, 0},
    {"Cause", T_FAIL, LANG_BOTH, K_STRING, 0, 0},
    {"ErrorPath", T_FAIL, LANG_JSONPATH, K_ERROR_PATH, 0, 0},
    {"CausePath", T_FAIL, LANG_JSONPATH, K_ERROR_PATH, 0, 0},
    /* Parallel */
    {"Branches", T_PARALLEL, LANG_BOTH, K_BRANCHES, 0, 0},
    /* Map */
    {"ItemProcessor", T_MAP, LANG_BOTH, K_PROCESSOR, 0, 0},
    {"Iterator", T_MAP, LANG_JSONPATH, K_ITERATOR, 0, 0},
    {"ItemsPath", T_MAP, LANG_JSONPATH, K_REF_PATH, 0, 0},
    {"Items", T_MAP, LANG_JSONATA, K_ANY, 0, 0},
    {"ItemSelector", T_MAP, LANG_BOTH, K_TEMPLATE, 0, 0},
    {"MaxConcurrency", T_MAP, LANG_BOTH, K_INTEGER, 0, 9.3e18},
    {"MaxConcurrencyPath", T_MAP, LANG_JSONPATH, K_REF_PATH, 0, 0},
    {"ToleratedFailurePercentage", T_MAP, LANG_BOTH, K_NUMBER, 0, 100},
    {"ToleratedFailurePercentagePath", T_MAP, LANG_JSONPATH, K_REF_PATH, 0, 0},
    {"ToleratedFailureCount", T_MAP, LANG_BOTH, K_INTEGER, 0, 9.3e18},
    {"ToleratedFailureCountPath", T_MAP, LANG_JSONPATH, K_REF_PATH, 0, 0},
    {"ItemReader", T_MAP, LANG_BOTH, K_MAP_EXTRA, 0, 0},
    {"ItemBatcher", T_MAP, LANG_BOTH, K_MAP_EXTRA, 0, 0},
    {"ResultWriter", T_MAP, LANG_BOTH, K_MAP_EXTRA, 0, 0},
    {"Label", T_MAP, LANG_BOTH, K_LABEL, 0, 0},
};

/* Pairs of which a state may carry at most one (asl.md 2); reported at the first field. */
static const char *const exclusive_pairs[][2] = {
    {"Next", "End"},
    {"TimeoutSeconds", "TimeoutSecondsPath"},
    {"HeartbeatSeconds", "HeartbeatSecondsPath"},
    {"Error", "ErrorPath"},
    {"Cause", "CausePath"},
    {"MaxConcurrency", "MaxConcurrencyPath"},
    {"ToleratedFailureCount", "ToleratedFailureCountPath"},
    {"ToleratedFailurePercentage", "ToleratedFailurePercentagePath"},
    {"ItemProcessor", "Iterator"},
    {"ItemSelector", "Parameters"},
};

/* Wait: exactly one of these. */
static const char *const wait_fields[] = {"Seconds", "Timestamp", "SecondsPath",
                                          "TimestampPath"};

/* Fields required per state type (besides Type). */
static const struct {
    unsigned types;
    const char *field;
} required_fields[] = {
    {T_TASK, "Resource"},
    {T_CHOICE, "Choices"},
    {T_PARALLEL, "Branches"},
};

/* ---------------------------------------------------------------------------------------
 * Diagnostics.
 */
void asl_diags_init(struct asl_diags *d)
{
    d->v = NULL;
    d->n = 0;
    d->cap = 0;
}

void asl_diags_release(struct asl_diags *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->v[i].code);
        free(d->v[i].message);
        free(d->v[i].location);
    }
    free(d->v);
    asl_diags_init(d);
}

static void diags_push(struct asl_diags *d, const char *code, const char *location,
                       char *message)
{
    if (d->n == d->cap) {
        d->cap = d->cap != 0 ? d->cap * 2 : 8;
        d->v = xrealloc(d->v, d->cap * sizeof(*d->v));
    }
    struct asl_diag *g = &d->v[d->n++];
    g->code = xstrdup(code);
    g->message = message;
    g->location = location != NULL ? xstrdup(location) : NULL;
}

void asl_diags_add(struct asl_diags *d, const char *code, const char *location,
                   const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *message = xvasprintf(fmt, ap);
    va_end(ap);
    diags_push(d, code, location, message);
}

char *asl_diags_render(const struct asl_diags *d)
{
    struct buf b = BUF_INIT;
    for (size_t i = 0; i < d->n; i++) {
        const struct asl_diag *g = &d->v[i];
        if (i > 0)
            buf_puts(&b, ", ");
        /* AWS prints a missing location as "null" (MISSING_END_STATE ... at null) */
        buf_printf(&b, "%s: %s at %s", g->code, g->message,
                   g->location != NULL ? g->location : "null");
    }
    return buf_detach(&b);
}

/* ---------------------------------------------------------------------------------------
 * Validation context.
 */
struct scope {
    json_t *machine; /* borrowed: an object with a string StartAt and an object States */
    char *prefix;    /* owned: location of the machine, "" for the top level */
    bool top;        /* the top-level machine (MISSING_END_STATE applies) */
};

struct vctx {
    struct asl_diags *d;        /* AWS's diagnostics */
    struct asl_diags unsup;     /* UNSUPPORTED_FEATURE, kept back until the end */
    enum asl_machine_type type; /* STANDARD or EXPRESS */
    bool top_jsonata;           /* the machine's default language is JSONata */
    json_t *names;              /* every state name seen so far (used as a set) */
    struct scope *scopes;       /* machines whose graph is checked after the walk */
    size_t nscopes;             /* entries used */
    size_t cap;                 /* entries allocated */
};

static void schema(struct vctx *v, const char *loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void schema(struct vctx *v, const char *loc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *message = xvasprintf(fmt, ap);
    va_end(ap);
    diags_push(v->d, CODE_SCHEMA, loc, message);
}

static void unsupported(struct vctx *v, enum unsupported what, const char *loc)
{
    if (unsupported_message[what] != NULL)
        asl_diags_add(&v->unsup, CODE_UNSUPPORTED, loc, "%s", unsupported_message[what]);
}

static char *loc_field(const char *loc, const char *field)
{
    return xasprintf("%s/%s", loc, field);
}

static void type_error(struct vctx *v, const char *loc, const char *type)
{
    schema(v, loc, "Expected value of type [%s]", type);
}

/* True for "{% ... %}", a JSONata expression string. */
static bool is_jsonata_expr(json_t *val)
{
    if (!json_is_string(val))
        return false;
    const char *s = json_string_value(val);
    size_t n = json_string_length(val);
    return n >= 4 && strncmp(s, "{%", 2) == 0 && strcmp(s + n - 2, "%}") == 0;
}

/* True for "$name..." (a workflow variable), as opposed to "$", "$.x", "$[0]", "$$...". */
static bool is_variable_ref(const char *s)
{
    return s[0] == '$' && (isalpha((unsigned char)s[1]) || s[1] == '_' ||
                           (unsigned char)s[1] >= 0x80);
}

/* ---------------------------------------------------------------------------------------
 * Values: paths, templates, numbers.
 */
static void check_path(struct vctx *v, json_t *val, const char *field, const char *loc,
                       unsigned flags, bool nullable)
{
    if (nullable && json_is_null(val))
        return;
    if (!json_is_string(val)) {
        type_error(v, loc, "STRING");
        return;
    }
    const char *text = json_string_value(val);
    if (is_variable_ref(text)) {
        if (flags & ASL_PATH_NO_CONTEXT)
            schema(v, loc, "The value for the field '%s' must be a valid JSONPath", field);
        else
            unsupported(v, UNSUP_VARIABLE, loc);
        return;
    }
    struct err err = ERR_INIT;
    struct asl_path *p = asl_path_compile(text, flags, &err);
    if (p == NULL)
        schema(v, loc, "The value for the field '%s' must be a valid JSONPath", field);
    asl_path_free(p);
    err_clear(&err);
}

/* True when some ".$" value of template `t` reads a workflow variable. */
static bool template_uses_variables(json_t *t)
{
    if (json_is_array(t)) {
        for (size_t i = 0; i < json_array_size(t); i++) {
            if (template_uses_variables(json_array_get(t, i)))
                return true;
        }
        return false;
    }
    if (!json_is_object(t))
        return false;
    const char *key;
    json_t *val;
    json_object_foreach(t, key, val) {
        size_t n = strlen(key);
        bool dynamic = n >= 2 && strcmp(key + n - 2, ".$") == 0;
        if (dynamic && json_is_string(val) && is_variable_ref(json_string_value(val)))
            return true;
        if (!dynamic && template_uses_variables(val))
            return true;
    }
    return false;
}

static void check_template(struct vctx *v, json_t *val, const char *loc)
{
    if (template_uses_variables(val)) {
        unsupported(v, UNSUP_VARIABLE, loc);
        return;
    }
    struct err err = ERR_INIT;
    struct asl_tmpl *t = asl_tmpl_compile(val, &err);
    if (t == NULL)
        schema(v, loc, "%s", err.cause != NULL ? err.cause : "Invalid payload template");
    asl_tmpl_free(t);
    err_clear(&err);
}

/* Integer or number within [min, max]; JSONata states may give an expression instead. */
static void check_number(struct vctx *v, json_t *val, const char *loc, bool integer,
                         double min, double max, bool jsonata)
{
    if (jsonata && is_jsonata_expr(val))
        return;
    if (integer ? !json_is_integer(val) : !json_is_number(val)) {
        type_error(v, loc, integer ? "INTEGER" : "NUMBER");
        return;
    }
    double x = json_number(val);
    if (x < min) {
        if (integer)
            schema(v, loc, "Minimum value is %.0f", min);
        else
            schema(v, loc, "Minimum value is %.1f", min);
    } else if (x > max) {
        schema(v, loc, "Maximum value is %.0f", max);
    }
}

/* Fail ErrorPath / CausePath: a Reference Path or an intrinsic call (asl.md 10.6). */
static void check_error_path(struct vctx *v, json_t *val, const char *field, const char *loc)
{
    if (!json_is_string(val)) {
        type_error(v, loc, "STRING");
        return;
    }
    const char *text = json_string_value(val);
    struct err err = ERR_INIT;
    bool ok;
    if (asl_intrinsic_is_call(text)) {
        struct asl_intrinsic *f = asl_intrinsic_parse(text, &err);
        ok = f != NULL;
        asl_intrinsic_free(f);
    } else if (is_variable_ref(text)) {
        unsupported(v, UNSUP_VARIABLE, loc);
        ok = true;
    } else {
        struct asl_path *p = asl_path_compile(text, ASL_PATH_REFERENCE, &err);
        ok = p != NULL;
        asl_path_free(p);
    }
    err_clear(&err);
    if (!ok)
        schema(v, loc,
               "The value for the field '%s' must be a valid JSONPath or a valid intrinsic "
               "function call",
               field);
}

/* ---------------------------------------------------------------------------------------
 * Task resources (asl.md 10.2).
 */
static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s);
    size_t k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Splits "arn:partition:service:region:account:resource" into its six fields (the
 * resource keeps its own colons). Returns false when the text has not that shape. */
static bool arn_split(const char *arn, const char *f[6], size_t len[6])
{
    const char *p = arn;
    for (int i = 0; i < 5; i++) {
        const char *c = strchr(p, ':');
        if (c == NULL)
            return false;
        f[i] = p;
        len[i] = (size_t)(c - p);
        p = c + 1;
    }
    f[5] = p;
    len[5] = strlen(p);
    return len[0] == 3 && memcmp(f[0], "arn", 3) == 0 && len[1] > 0 && len[2] > 0 &&
           len[5] > 0;
}

/* True for "a:b" style names whose every colon-separated part is non-empty. */
static bool parts_nonempty(const char *s, int nparts)
{
    for (int i = 0; i < nparts; i++) {
        const char *c = strchr(s, ':');
        size_t n = c != NULL && i < nparts - 1 ? (size_t)(c - s) : strlen(s);
        if (n == 0)
            return false;
        if (i < nparts - 1) {
            if (c == NULL)
                return false;
            s = c + 1;
        }
    }
    return true;
}

/* Strips a service-integration pattern suffix; returns the pattern found ("" for none). */
static const char *integration_pattern(const char *resource, size_t *base_len)
{
    static const char *const patterns[] = {".sync:2", ".sync", ".waitForTaskToken"};
    size_t n = strlen(resource);
    for (size_t i = 0; i < ARRAY_LEN(patterns); i++) {
        if (has_suffix(resource, patterns[i])) {
            *base_len = n - strlen(patterns[i]);
            return patterns[i];
        }
    }
    *base_len = n;
    return "";
}

/* The optimized integrations sfnd runs (integrations.md §2.4, §3.4, §4.4, §5.4, §9): every
 * action has request-response, `sync` says whether it also has .sync; none has
 * .waitForTaskToken or .sync:2. The one table the validator consults; the integrations' own
 * tables (integrations/<service>.c) are checked against it by tests/unit/test_integrations.c. */
const struct asl_known_action asl_known_actions[] = {
    {"athena", "startQueryExecution", true},
    {"athena", "stopQueryExecution", false},
    {"athena", "getQueryExecution", false},
    {"athena", "getQueryResults", false},
    {"elasticmapreduce", "createCluster", true},
    {"elasticmapreduce", "terminateCluster", true},
    {"elasticmapreduce", "setClusterTerminationProtection", false},
    {"elasticmapreduce", "addStep", true},
    {"elasticmapreduce", "cancelStep", false},
    {"elasticmapreduce", "modifyInstanceFleetByName", false},
    {"elasticmapreduce", "modifyInstanceGroupByName", false},
    {"emr-containers", "createVirtualCluster", false},
    {"emr-containers", "deleteVirtualCluster", true},
    {"emr-containers", "startJobRun", true},
    {"emr-serverless", "createApplication", true},
    {"emr-serverless", "startApplication", true},
    {"emr-serverless", "stopApplication", true},
    {"emr-serverless", "deleteApplication", true},
    {"emr-serverless", "startJobRun", true},
    {"emr-serverless", "cancelJobRun", true},
};
const size_t asl_n_known_actions = ARRAY_LEN(asl_known_actions);

/* Whether `res` ("<service>:<action>", the pattern stripped) with `pattern` is allowed:
 * anything for a service the table does not list, else one of its actions and patterns. */
static bool known_action(const char *res, const char *pattern)
{
    const char *colon = strchr(res, ':');
    size_t n = (size_t)(colon - res);
    bool service_known = false;
    for (size_t i = 0; i < asl_n_known_actions; i++) {
        const struct asl_known_action *k = &asl_known_actions[i];
        if (strlen(k->service) != n || strncmp(k->service, res, n) != 0)
            continue;
        service_known = true;
        if (strcmp(k->action, colon + 1) != 0)
            continue;
        return pattern[0] == '\0' || (strcmp(pattern, ".sync") == 0 && k->sync);
    }
    return !service_known;
}

static void check_resource(struct vctx *v, json_t *val, const char *loc)
{
    if (!json_is_string(val)) {
        type_error(v, loc, "STRING");
        return;
    }
    const char *arn = json_string_value(val);
    const char *f[6];
    size_t len[6];
    bool ok = arn_split(arn, f, len);
    bool states = ok && len[2] == 6 && memcmp(f[2], "states", 6) == 0;
    bool activity = false;
    const char *pattern = "";
    if (states && len[3] == 0 && len[4] == 0) {
        /* arn:aws:states:::<service>:<action>[pattern] or aws-sdk:<service>:<action> */
        size_t base;
        pattern = integration_pattern(f[5], &base);
        char *res = xstrndup(f[5], base);
        if (strncmp(res, "aws-sdk:", 8) == 0)
            ok = parts_nonempty(res, 3);
        else
            ok = parts_nonempty(res, 2) && strchr(strchr(res, ':') + 1, ':') == NULL &&
                 known_action(res, pattern);
        free(res);
    } else if (states) {
        activity = strncmp(f[5], "activity:", 9) == 0 && f[5][9] != '\0';
    }
    if (!ok) {
        schema(v, loc,
               "The resource provided %s is not recognized. The value is not a valid resource "
               "ARN, or the resource is not available in this region.",
               arn);
        return;
    }
    if (v->type != ASL_EXPRESS)
        return;
    if (strncmp(pattern, ".sync", 5) == 0)
        schema(v, loc, "Express state machine does not support '.sync' service integration");
    else if (strcmp(pattern, ".waitForTaskToken") == 0)
        /* the trailing space is AWS's (asl.md 13.1) */
        schema(v, loc,
               "Express state machine does not support '.waitForTaskToken' service "
               "integration ");
    else if (activity)
        schema(v, loc, "Express state machine does not support Activity ARN");
}

/* ---------------------------------------------------------------------------------------
 * Retry and Catch (asl.md 9.3, 9.4).
 */
static const char *const retrier_fields[] = {
    "ErrorEquals", "IntervalSeconds", "MaxAttempts",   "BackoffRate",
    "MaxDelaySeconds", "JitterStrategy", "Comment",
};
static const char *const catcher_fields[] = {"ErrorEquals", "Next", "ResultPath", "Output",
                                             "Assign", "Comment"};

static bool name_in(const char *name, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(name, list[i]) == 0)
            return true;
    }
    return false;
}

/* Checks ErrorEquals of handler `loc`; returns true when it holds States.ALL. */
static bool check_error_equals(struct vctx *v, json_t *h, const char *loc)
{
    json_t *eq = json_object_get(h, "ErrorEquals");
    if (eq == NULL) {
        schema(v, loc, "These fields are required: [ErrorEquals]");
        return false;
    }
    char *eloc = loc_field(loc, "ErrorEquals");
    bool all = false;
    if (!json_is_array(eq)) {
        type_error(v, eloc, "ARRAY");
    } else if (json_array_size(eq) == 0) {
        schema(v, eloc, "Value cannot be empty");
    } else {
        for (size_t i = 0; i < json_array_size(eq); i++) {
            json_t *name = json_array_get(eq, i);
            if (!json_is_string(name)) {
                char *iloc = xasprintf("%s[%zu]", eloc, i);
                type_error(v, iloc, "STRING");
                free(iloc);
            } else if (strcmp(json_string_value(name), ASL_ERR_ALL) == 0) {
                all = true;
            }
        }
        if (all && json_array_size(eq) > 1)
            schema(v, eloc, "'States.ALL' must appear alone in 'ErrorEquals'");
    }
    free(eloc);
    return all;
}

static void check_handlers(struct vctx *v, json_t *arr, const char *loc, bool catcher,
                           bool jsonata)
{
    if (!json_is_array(arr)) {
        type_error(v, loc, "ARRAY");
        return;
    }
    size_t n = json_array_size(arr);
    for (size_t i = 0; i < n; i++) {
        json_t *h = json_array_get(arr, i);
        char *hloc = xasprintf("%s[%zu]", loc, i);
        if (!json_is_object(h)) {
            type_error(v, hloc, "OBJECT");
            free(hloc);
            continue;
        }
        const char *key;
        json_t *val;
        json_object_foreach(h, key, val) {
            bool known = catcher ? name_in(key, catcher_fields, ARRAY_LEN(catcher_fields))
                                 : name_in(key, retrier_fields, ARRAY_LEN(retrier_fields));
            if (!known) {
                schema(v, hloc, "Field '%s' is not supported", key);
                continue;
            }
            if (strcmp(key, "ResultPath") == 0 && jsonata) {
                schema(v, hloc,
                       "The QueryLanguage is set to 'JSONata', but field '%s' is only "
                       "supported for the 'JSONPath' QueryLanguage",
                       key);
                continue;
            }
            if (strcmp(key, "Output") == 0 && !jsonata) {
                schema(v, hloc,
                       "The QueryLanguage is set to 'JSONPath', but field '%s' is only "
                       "supported for the 'JSONata' QueryLanguage",
                       key);
                continue;
            }
            char *floc = loc_field(hloc, key);
            if (strcmp(key, "Comment") == 0 && !json_is_string(val))
                type_error(v, floc, "STRING");
            else if (strcmp(key, "Next") == 0 && !json_is_string(val))
                type_error(v, floc, "STRING");
            else if (strcmp(key, "ResultPath") == 0)
                check_path(v, val, key, floc, ASL_PATH_REFERENCE | ASL_PATH_NO_CONTEXT, true);
            else if (strcmp(key, "Assign") == 0 && !json_is_object(val))
                type_error(v, floc, "OBJECT");
            else if (strcmp(key, "Assign") == 0)
                unsupported(v, UNSUP_ASSIGN, floc);
            else if (strcmp(key, "IntervalSeconds") == 0)
                check_number(v, val, floc, true, 1, SECONDS_MAX, false);
            else if (strcmp(key, "MaxAttempts") == 0)
                check_number(v, val, floc, true, 0, SECONDS_MAX, false);
            else if (strcmp(key, "BackoffRate") == 0)
                check_number(v, val, floc, false, 1.0, 1e300, false);
            else if (strcmp(key, "MaxDelaySeconds") == 0)
                check_number(v, val, floc, true, 1, MAX_DELAY_MAX, false);
            else if (strcmp(key, "JitterStrategy") == 0 && !json_is_string(val))
                type_error(v, floc, "STRING");
            else if (strcmp(key, "JitterStrategy") == 0 &&
                     strcmp(json_string_value(val), "FULL") != 0 &&
                     strcmp(json_string_value(val), "NONE") != 0)
                schema(v, floc, "Value should be one of the following: [FULL, NONE]");
            free(floc);
        }
        bool all = check_error_equals(v, h, hloc);
        if (all && i + 1 < n)
            schema(v, hloc, "'States.ALL' must appear in the last %s",
                   catcher ? "Catcher" : "Retrier");
        if (catcher && json_object_get(h, "Next") == NULL)
            schema(v, hloc, "These fields are required: [Next]");
        free(hloc);
    }
}

/* ---------------------------------------------------------------------------------------
 * Choice rules (asl.md 7).
 */
static const char *const jsonata_rule_fields[] = {"Condition", "Next", "Comment", "Assign",
                                                  "Output"};

/* True when a JSONPath rule tree reads a workflow variable (Variable or a *Path operand). */
static bool rule_uses_variables(json_t *rule)
{
    if (json_is_array(rule)) {
        for (size_t i = 0; i < json_array_size(rule); i++) {
            if (rule_uses_variables(json_array_get(rule, i)))
                return true;
        }
        return false;
    }
    if (!json_is_object(rule))
        return false;
    const char *key;
    json_t *val;
    json_object_foreach(rule, key, val) {
        bool pathish = strcmp(key, "Variable") == 0 || has_suffix(key, "Path");
        if (pathish && json_is_string(val) && is_variable_ref(json_string_value(val)))
            return true;
        if (rule_uses_variables(val))
            return true;
    }
    return false;
}

static void check_choice_rule(struct vctx *v, json_t *rule, const char *loc, bool jsonata)
{
    if (!json_is_object(rule)) {
        type_error(v, loc, "OBJECT");
        return;
    }
    json_t *next = json_object_get(rule, "Next");
    if (next == NULL)
        schema(v, loc, "These fields are required: [Next]");
    else if (!json_is_string(next)) {
        char *nloc = loc_field(loc, "Next");
        type_error(v, nloc, "STRING");
        free(nloc);
    }
    json_t *assign = json_object_get(rule, "Assign");
    if (assign != NULL) {
        char *aloc = loc_field(loc, "Assign");
        if (!json_is_object(assign))
            type_error(v, aloc, "OBJECT");
        else
            unsupported(v, UNSUP_ASSIGN, aloc);
        free(aloc);
    }
    if (jsonata) {
        const char *key;
        json_t *val;
        json_object_foreach(rule, key, val) {
            if (!name_in(key, jsonata_rule_fields, ARRAY_LEN(jsonata_rule_fields)))
                schema(v, loc, "Field '%s' is not supported", key);
        }
        if (json_object_get(rule, "Condition") == NULL)
            schema(v, loc, "These fields are required: [Condition]");
        return;
    }
    json_t *output = json_object_get(rule, "Output");
    if (output != NULL)
        schema(v, loc,
               "The QueryLanguage is set to 'JSONPath', but field 'Output' is only supported "
               "for the 'JSONata' QueryLanguage");
    if (rule_uses_variables(rule)) {
        unsupported(v, UNSUP_VARIABLE, loc);
        return;
    }
    /* asl_rule_compile ignores Next and Comment; it does not know Assign or Output */
    json_t *copy = json_shallow_copy(rule);
    json_object_del(copy, "Assign");
    json_object_del(copy, "Output");
    struct err err = ERR_INIT;
    struct asl_rule *r = asl_rule_compile(copy, &err);
    if (r == NULL)
        schema(v, loc, "%s", err.cause != NULL ? err.cause : "Invalid Choice rule");
    asl_rule_free(r);
    err_clear(&err);
    json_decref(copy);
}

static void check_choices(struct vctx *v, json_t *val, const char *loc, bool jsonata)
{
    if (!json_is_array(val)) {
        type_error(v, loc, "ARRAY");
        return;
    }
    if (json_array_size(val) == 0) {
        schema(v, loc, "Value cannot be empty");
        return;
    }
    for (size_t i = 0; i < json_array_size(val); i++) {
        char *rloc = xasprintf("%s[%zu]", loc, i);
        check_choice_rule(v, json_array_get(val, i), rloc, jsonata);
        free(rloc);
    }
}

/* ---------------------------------------------------------------------------------------
 * Nested machines, Map extras, Credentials.
 */
enum machine_kind {
    MACHINE_TOP,       /* the definition itself */
    MACHINE_BRANCH,    /* a Parallel branch */
    MACHINE_PROCESSOR, /* a Map ItemProcessor (may carry ProcessorConfig) */
    MACHINE_ITERATOR,  /* a Map Iterator (deprecated; recorded with ProcessorConfig too) */
};

static void check_machine(struct vctx *v, json_t *m, const char *prefix,
                          enum machine_kind kind);

static void check_processor_config(struct vctx *v, json_t *pc, const char *loc)
{
    if (!json_is_object(pc)) {
        type_error(v, loc, "OBJECT");
        return;
    }
    bool distributed = false;
    const char *key;
    json_t *val;
    json_object_foreach(pc, key, val) {
        char *floc = loc_field(loc, key);
        if (strcmp(key, "Mode") == 0) {
            if (!json_is_string(val))
                type_error(v, floc, "STRING");
            else if (strcmp(json_string_value(val), "DISTRIBUTED") == 0) {
                distributed = true;
                unsupported(v, UNSUP_DISTRIBUTED, floc);
            } else if (strcmp(json_string_value(val), "INLINE") != 0)
                schema(v, floc, "Value should be one of the following: [INLINE, DISTRIBUTED]");
        } else if (strcmp(key, "ExecutionType") == 0) {
            if (!json_is_string(val))
                type_error(v, floc, "STRING");
            else if (strcmp(json_string_value(val), "STANDARD") != 0 &&
                     strcmp(json_string_value(val), "EXPRESS") != 0)
                schema(v, floc, "Value should be one of the following: [STANDARD, EXPRESS]");
        } else {
            schema(v, loc, "Field '%s' is not supported", key);
        }
        free(floc);
    }
    if (distributed && json_object_get(pc, "ExecutionType") == NULL)
        schema(v, loc, "These fields are required: [ExecutionType]");
    if (!distributed && json_object_get(pc, "ExecutionType") != NULL) {
        /* with DISTRIBUTED the Mode diagnostic already covers it */
        char *floc = loc_field(loc, "ExecutionType");
        unsupported(v, UNSUP_MAP_FIELDS, floc);
        free(floc);
    }
}

static void check_credentials(struct vctx *v, json_t *val, const char *loc, bool jsonata)
{
    if (jsonata && is_jsonata_expr(val))
        return;
    if (!json_is_object(val)) {
        type_error(v, loc, "OBJECT");
        return;
    }
    bool role = json_object_get(val, "RoleArn") != NULL;
    if (!jsonata)
        role = role || json_object_get(val, "RoleArn.$") != NULL;
    if (!role) {
        schema(v, loc, "The field 'RoleArn' is required but was missing");
        return;
    }
    if (!jsonata)
        check_template(v, val, loc);
}

static void check_assign(struct vctx *v, json_t *val, const char *loc)
{
    if (!json_is_object(val)) {
        type_error(v, loc, "OBJECT");
        return;
    }
    const char *key;
    json_t *item;
    json_object_foreach(val, key, item) {
        size_t n = strlen(key);
        if (n >= 2 && strcmp(key + n - 2, ".$") == 0)
            n -= 2;
        /* asl.md 8.1: whole variables only, at most 80 characters, not "states" */
        if (n == 0 || n > 80 || strcspn(key, ".[") < n ||
            (n == 6 && strncmp(key, "states", 6) == 0))
            schema(v, loc, "The variable name '%s' is not valid", key);
    }
    unsupported(v, UNSUP_ASSIGN, loc);
}

static void check_map_extra(struct vctx *v, json_t *val, const char *field, const char *loc)
{
    if (!json_is_object(val)) {
        type_error(v, loc, "OBJECT");
        return;
    }
    if (json_object_size(val) == 0) {
        schema(v, loc, "Value cannot be empty");
        return;
    }
    if (strcmp(field, "ItemBatcher") == 0) {
        static const char *const limits[] = {"MaxItemsPerBatch", "MaxItemsPerBatchPath",
                                             "MaxInputBytesPerBatch",
                                             "MaxInputBytesPerBatchPath"};
        bool any = false;
        for (size_t i = 0; i < ARRAY_LEN(limits); i++)
            any = any || json_object_get(val, limits[i]) != NULL;
        if (!any)
            schema(v, loc, "These fields are required: [MaxItemsPerBatch]");
    }
    json_t *res = json_object_get(val, "Resource");
    if (res != NULL && !json_is_string(res)) {
        char *rloc = loc_field(loc, "Resource");
        type_error(v, rloc, "STRING");
        free(rloc);
    }
    unsupported(v, UNSUP_MAP_FIELDS, loc);
}

/* ---------------------------------------------------------------------------------------
 * States.
 */
static const struct field_rule *field_rule_find(const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(state_fields); i++) {
        if (strcmp(state_fields[i].name, name) == 0)
            return &state_fields[i];
    }
    return NULL;
}

/* The rule for `key` when state type `bit` in language `jsonata` accepts it, else NULL.
 * Reports why not when `report`. */
static const struct field_rule *field_accept(struct vctx *v, const char *key, unsigned bit,
                                             bool jsonata, bool mixed_ok, const char *loc,
                                             bool report)
{
    const struct field_rule *r = field_rule_find(key);
    if (r == NULL || !(r->types & bit)) {
        if (report)
            schema(v, loc, "Field '%s' is not supported", key);
        return NULL;
    }
    if (mixed_ok || r->lang == LANG_BOTH)
        return r;
    if (r->lang == LANG_JSONATA && !jsonata) {
        if (report)
            schema(v, loc,
                   "The QueryLanguage is set to 'JSONPath', but field '%s' is only supported "
                   "for the 'JSONata' QueryLanguage",
                   key);
        return NULL;
    }
    if (r->lang == LANG_JSONPATH && jsonata) {
        if (report)
            schema(v, loc,
                   "The QueryLanguage is set to 'JSONata', but field '%s' is only supported "
                   "for the 'JSONPath' QueryLanguage",
                   key);
        return NULL;
    }
    return r;
}

static void check_field(struct vctx *v, const struct field_rule *r, json_t *val,
                        const char *loc, bool jsonata)
{
    switch (r->kind) {
    case K_SKIP:
    case K_ANY:
        break;
    case K_STRING:
    case K_TARGET:
        if (!json_is_string(val))
            type_error(v, loc, "STRING");
        break;
    case K_LABEL:
        if (!json_is_string(val))
            type_error(v, loc, "STRING");
        else if (json_string_length(val) > LABEL_MAX)
            schema(v, loc, "String length must be at most %d", LABEL_MAX);
        else
            unsupported(v, UNSUP_MAP_FIELDS, loc);
        break;
    case K_QUERY_LANG:
        if (!json_is_string(val))
            type_error(v, loc, "STRING");
        else if (strcmp(json_string_value(val), "JSONPath") != 0 &&
                 strcmp(json_string_value(val), "JSONata") != 0)
            schema(v, loc, "Value should be one of the following: [JSONPath, JSONata]");
        else if (strcmp(json_string_value(val), "JSONata") == 0 && !v->top_jsonata)
            unsupported(v, UNSUP_JSONATA, loc);
        break;
    case K_PATH:
        check_path(v, val, r->name, loc, 0, true);
        break;
    case K_RESULT_PATH:
        check_path(v, val, r->name, loc, ASL_PATH_REFERENCE | ASL_PATH_NO_CONTEXT, true);
        break;
    case K_REF_PATH:
        check_path(v, val, r->name, loc, ASL_PATH_REFERENCE, false);
        break;
    case K_TEMPLATE:
        if (!jsonata)
            check_template(v, val, loc);
        break;
    case K_BOOL:
        if (!json_is_boolean(val))
            type_error(v, loc, "BOOLEAN");
        break;
    case K_RESOURCE:
        check_resource(v, val, loc);
        break;
    case K_INTEGER:
        check_number(v, val, loc, true, r->min, r->max, jsonata);
        break;
    case K_NUMBER:
        check_number(v, val, loc, false, r->min, r->max, jsonata);
        break;
    case K_TIMESTAMP: {
        struct asl_time t;
        if (jsonata && is_jsonata_expr(val))
            break;
        if (!json_is_string(val))
            type_error(v, loc, "STRING");
        else if (asl_time_parse(json_string_value(val), &t) != 0)
            schema(v, loc, "String does not match RFC3339 timestamp");
        break;
    }
    case K_ERROR_PATH:
        check_error_path(v, val, r->name, loc);
        break;
    case K_RETRY:
        check_handlers(v, val, loc, false, jsonata);
        break;
    case K_CATCH:
        check_handlers(v, val, loc, true, jsonata);
        break;
    case K_CREDENTIALS:
        check_credentials(v, val, loc, jsonata);
        break;
    case K_CHOICES:
        check_choices(v, val, loc, jsonata);
        break;
    case K_BRANCHES:
        if (!json_is_array(val)) {
            type_error(v, loc, "ARRAY");
        } else if (json_array_size(val) == 0) {
            schema(v, loc, "Value cannot be empty");
        } else {
            for (size_t i = 0; i < json_array_size(val); i++) {
                char *bloc = xasprintf("%s[%zu]", loc, i);
                check_machine(v, json_array_get(val, i), bloc, MACHINE_BRANCH);
                free(bloc);
            }
        }
        break;
    case K_PROCESSOR:
        check_machine(v, val, loc, MACHINE_PROCESSOR);
        break;
    case K_ITERATOR:
        check_machine(v, val, loc, MACHINE_ITERATOR);
        break;
    case K_ASSIGN:
        check_assign(v, val, loc);
        break;
    case K_MAP_EXTRA:
        check_map_extra(v, val, r->name, loc);
        break;
    }
}

/* Cross-field rules: required fields, exclusive pairs, Next/End, Wait timing, heartbeat. */
static void check_state_fields(struct vctx *v, json_t *st, unsigned bit, const char *loc)
{
    for (size_t i = 0; i < ARRAY_LEN(required_fields); i++) {
        if ((required_fields[i].types & bit) && !json_object_get(st, required_fields[i].field))
            schema(v, loc, "These fields are required: [%s]", required_fields[i].field);
    }
    if (bit == T_MAP && !json_object_get(st, "ItemProcessor") &&
        !json_object_get(st, "Iterator"))
        schema(v, loc, "These fields are required: [ItemProcessor]");

    for (size_t i = 0; i < ARRAY_LEN(exclusive_pairs); i++) {
        const char *a = exclusive_pairs[i][0];
        const char *b = exclusive_pairs[i][1];
        json_t *va = json_object_get(st, a);
        json_t *vb = json_object_get(st, b);
        if (va == NULL || vb == NULL)
            continue;
        if (!(field_rule_find(a)->types & bit) || !(field_rule_find(b)->types & bit))
            continue; /* already reported as not supported */
        if (strcmp(a, "Next") == 0 && !json_is_true(vb))
            continue; /* "End": false next to Next is harmless */
        char *floc = loc_field(loc, a);
        schema(v, floc, "Fields '%s' and '%s' are mutually exclusive", a, b);
        free(floc);
    }

    if ((bit & T_FLOW) && json_object_get(st, "Next") == NULL &&
        !json_is_true(json_object_get(st, "End")))
        schema(v, loc, "Either 'Next' or 'End: true' is required");

    if (bit == T_WAIT) {
        const char *first = NULL;
        for (size_t i = 0; i < ARRAY_LEN(wait_fields); i++) {
            if (json_object_get(st, wait_fields[i]) == NULL)
                continue;
            if (first == NULL) {
                first = wait_fields[i];
                continue;
            }
            char *floc = loc_field(loc, first);
            schema(v, floc, "Fields '%s' and '%s' are mutually exclusive", first,
                   wait_fields[i]);
            free(floc);
        }
        if (first == NULL)
            schema(v, loc,
                   "One of these fields is required: [Seconds, Timestamp, SecondsPath, "
                   "TimestampPath]");
    }

    if (bit == T_TASK) {
        json_t *t = json_object_get(st, "TimeoutSeconds");
        json_t *h = json_object_get(st, "HeartbeatSeconds");
        if (json_is_integer(t) && json_is_integer(h) &&
            json_integer_value(h) >= json_integer_value(t) && json_integer_value(h) > 0) {
            char *floc = loc_field(loc, "HeartbeatSeconds");
            schema(v, floc, "HeartbeatSeconds must be smaller than TimeoutSeconds");
            free(floc);
        }
    }
}

static void check_state(struct vctx *v, json_t *st, const char *loc)
{
    if (!json_is_object(st)) {
        type_error(v, loc, "OBJECT");
        return;
    }
    json_t *type = json_object_get(st, "Type");
    if (type == NULL) {
        schema(v, loc, "These fields are required: [Type]");
        return;
    }
    unsigned bit = 0;
    for (size_t i = 0; json_is_string(type) && i < ARRAY_LEN(state_types); i++) {
        if (strcmp(json_string_value(type), state_types[i].name) == 0)
            bit = state_types[i].bit;
    }
    if (bit == 0) {
        char *tloc = loc_field(loc, "Type");
        schema(v, tloc,
               "The field 'Type' should have one of these values: [Task, Wait, Pass, Succeed, "
               "Fail, Choice, Parallel, Map]");
        free(tloc);
        return;
    }

    /* asl.md 3: only the exact "JSONPath" selects JSONPath; any other value is JSONata */
    json_t *ql = json_object_get(st, "QueryLanguage");
    bool jsonata = v->top_jsonata;
    bool mixed_ok = false;
    if (ql != NULL) {
        bool jsonpath = json_is_string(ql) && strcmp(json_string_value(ql), "JSONPath") == 0;
        jsonata = !jsonpath;
        if (jsonpath && v->top_jsonata) {
            schema(v, loc,
                   "'QueryLanguage' can not be 'JSONPath' if set to 'JSONata' for whole state "
                   "machine");
            mixed_ok = true; /* AWS reports the downgrade alone, not each field */
        }
    }

    const char *key;
    json_t *val;
    json_object_foreach(st, key, val)
        field_accept(v, key, bit, jsonata, mixed_ok, loc, true);
    json_object_foreach(st, key, val) {
        const struct field_rule *r = field_accept(v, key, bit, jsonata, mixed_ok, loc, false);
        if (r == NULL)
            continue;
        char *floc = loc_field(loc, key);
        check_field(v, r, val, floc, jsonata);
        free(floc);
    }
    check_state_fields(v, st, bit, loc);
}

/* ---------------------------------------------------------------------------------------
 * Machines (top level, branches, processors).
 */
static const char *const top_fields[] = {"StartAt", "States", "Comment", "Version",
                                         "TimeoutSeconds", "QueryLanguage"};
static const char *const nested_fields[] = {"StartAt", "States", "Comment", "ProcessorConfig"};

static void scope_add(struct vctx *v, json_t *m, const char *prefix, bool top)
{
    if (v->nscopes == v->cap) {
        v->cap = v->cap != 0 ? v->cap * 2 : 8;
        v->scopes = xrealloc(v->scopes, v->cap * sizeof(*v->scopes));
    }
    v->scopes[v->nscopes++] = (struct scope){m, xstrdup(prefix), top};
}

static void check_machine(struct vctx *v, json_t *m, const char *prefix,
                          enum machine_kind kind)
{
    const char *here = prefix[0] != '\0' ? prefix : "/";
    if (!json_is_object(m)) {
        type_error(v, here, "OBJECT");
        return;
    }
    json_t *states = json_object_get(m, "States");
    json_t *start = json_object_get(m, "StartAt");
    if (states == NULL || start == NULL)
        schema(v, here, "These fields are required: [%s%s%s]", states == NULL ? "States" : "",
               states == NULL && start == NULL ? ", " : "", start == NULL ? "StartAt" : "");

    const char *key;
    json_t *val;
    json_object_foreach(m, key, val) {
        bool known = kind == MACHINE_TOP
                         ? name_in(key, top_fields, ARRAY_LEN(top_fields))
                         : name_in(key, nested_fields,
                                   ARRAY_LEN(nested_fields) - (kind == MACHINE_BRANCH));
        if (!known) {
            schema(v, here, "Field '%s' is not supported", key);
            continue;
        }
        char *floc = loc_field(prefix, key);
        if (strcmp(key, "StartAt") == 0 || strcmp(key, "Comment") == 0 ||
            strcmp(key, "Version") == 0) {
            if (!json_is_string(val))
                type_error(v, floc, "STRING");
        } else if (strcmp(key, "TimeoutSeconds") == 0) {
            check_number(v, val, floc, true, 0, SECONDS_MAX, false);
        } else if (strcmp(key, "QueryLanguage") == 0) {
            if (!json_is_string(val))
                type_error(v, floc, "STRING");
            else if (strcmp(json_string_value(val), "JSONPath") != 0 &&
                     strcmp(json_string_value(val), "JSONata") != 0)
                schema(v, floc, "Value should be one of the following: [JSONPath, JSONata]");
            if (v->top_jsonata)
                unsupported(v, UNSUP_JSONATA, floc);
        } else if (strcmp(key, "ProcessorConfig") == 0) {
            check_processor_config(v, val, floc);
        } else if (strcmp(key, "States") == 0 && !json_is_object(val)) {
            type_error(v, floc, "OBJECT");
        } else if (strcmp(key, "States") == 0 && json_object_size(val) == 0) {
            schema(v, floc, "Value cannot be empty");
        }
        free(floc);
    }

    if (json_is_string(start) && json_is_object(states))
        scope_add(v, m, prefix, kind == MACHINE_TOP);
    if (!json_is_object(states))
        return;
    json_object_foreach(states, key, val) {
        char *sloc = xasprintf("%s/States/%s", prefix, key);
        size_t chars = 0;
        for (const char *p = key; *p != '\0'; p++)
            chars += ((unsigned char)*p & 0xc0) != 0x80; /* UTF-8 lead bytes */
        if (chars == 0 || chars > STATE_NAME_MAX)
            schema(v, sloc, "State name must be between 1 and %d characters long",
                   STATE_NAME_MAX);
        if (json_object_get(v->names, key) != NULL)
            asl_diags_add(v->d, CODE_DUP, sloc, "Duplicate State name: %s", key);
        else
            json_object_set_new(v->names, key, json_true());
        check_state(v, val, sloc);
        free(sloc);
    }
}

/* ---------------------------------------------------------------------------------------
 * Graph: transition targets, reachability, terminal states (asl.md 13.3 rules 8-11).
 */

/* Calls fn for each transition of state `st` in field order: Next, Default,
 * Choices[i].Next, Catch[i].Next (each a string, with the field's location suffix). */
static void state_targets(json_t *st, void (*fn)(void *arg, const char *target,
                                                 const char *field_loc),
                          void *arg)
{
    const char *key;
    json_t *val;
    json_object_foreach(st, key, val) {
        if ((strcmp(key, "Next") == 0 || strcmp(key, "Default") == 0) && json_is_string(val)) {
            fn(arg, json_string_value(val), key);
        } else if ((strcmp(key, "Choices") == 0 || strcmp(key, "Catch") == 0) &&
                   json_is_array(val)) {
            for (size_t i = 0; i < json_array_size(val); i++) {
                json_t *next = json_object_get(json_array_get(val, i), "Next");
                if (!json_is_string(next))
                    continue;
                char *f = xasprintf("%s[%zu]/Next", key, i);
                fn(arg, json_string_value(next), f);
                free(f);
            }
        }
    }
}

struct target_walk {
    struct vctx *v;
    json_t *states;    /* borrowed: the scope's States */
    const char *sloc;  /* the current state's location */
    json_t *reached;   /* set of reached names (reachability) or NULL (target check) */
    json_t *queue;     /* names still to visit */
};

static void on_target_check(void *arg, const char *target, const char *field)
{
    struct target_walk *w = arg;
    if (json_object_get(w->states, target) != NULL)
        return;
    char *floc = xasprintf("%s/%s", w->sloc, field);
    asl_diags_add(w->v->d, CODE_TARGET, floc, "Missing 'Next' target: %s", target);
    free(floc);
}

static void on_target_reach(void *arg, const char *target, const char *field)
{
    struct target_walk *w = arg;
    (void)field;
    if (json_object_get(w->states, target) == NULL || json_object_get(w->reached, target))
        return;
    json_object_set_new(w->reached, target, json_true());
    json_array_append_new(w->queue, json_string(target));
}

static bool state_is_terminal(json_t *st)
{
    json_t *type = json_object_get(st, "Type");
    if (json_is_string(type) && (strcmp(json_string_value(type), "Succeed") == 0 ||
                                 strcmp(json_string_value(type), "Fail") == 0))
        return true;
    return json_is_true(json_object_get(st, "End"));
}

static void check_graph(struct vctx *v, const struct scope *s)
{
    json_t *states = json_object_get(s->machine, "States");
    const char *start = json_string_value(json_object_get(s->machine, "StartAt"));
    struct target_walk w = {v, states, NULL, NULL, NULL};

    if (json_object_get(states, start) == NULL) {
        char *floc = xasprintf("%s/StartAt", s->prefix);
        asl_diags_add(v->d, CODE_TARGET, floc, "Missing 'Next' target: %s", start);
        free(floc);
    }
    const char *name;
    json_t *st;
    bool terminal = false;
    json_object_foreach(states, name, st) {
        if (!json_is_object(st))
            continue;
        char *sloc = xasprintf("%s/States/%s", s->prefix, name);
        w.sloc = sloc;
        state_targets(st, on_target_check, &w);
        free(sloc);
        terminal = terminal || state_is_terminal(st);
    }
    /* asl.md 13.3 rule 11: every scope (the machine, each branch, each item processor) needs
     * a terminal state; its absence replaces the unreachable-state report [T]. */
    if (!terminal) {
        asl_diags_add(v->d, CODE_END, NULL, "Workflow has no terminal state");
        return;
    }

    w.reached = json_object();
    w.queue = json_array();
    if (json_object_get(states, start) != NULL) {
        json_object_set_new(w.reached, start, json_true());
        json_array_append_new(w.queue, json_string(start));
    }
    for (size_t i = 0; i < json_array_size(w.queue); i++) {
        json_t *next = json_object_get(states, json_string_value(json_array_get(w.queue, i)));
        if (json_is_object(next))
            state_targets(next, on_target_reach, &w);
    }
    json_object_foreach(states, name, st) {
        if (json_object_get(w.reached, name) != NULL)
            continue;
        char *sloc = xasprintf("%s/States/%s", s->prefix, name);
        asl_diags_add(v->d, CODE_TARGET, sloc, "State \"%s\" is not reachable.", name);
        free(sloc);
    }
    json_decref(w.reached);
    json_decref(w.queue);
}

/* ---------------------------------------------------------------------------------------
 * Duplicate keys in the text (jansson keeps the last one silently without
 * JSON_REJECT_DUPLICATES, which stops at the first): a small scanner over text already
 * known to be valid JSON reports each duplicate with its location.
 */
struct dup_scan {
    const char *p;        /* cursor */
    const char *end;      /* end of text */
    struct asl_diags *d;  /* where duplicates go */
    char **seg;           /* location segments ("/Name" or "[i]"), owned */
    size_t nseg;          /* segments in use */
    size_t capseg;        /* segments allocated */
};

static void dup_ws(struct dup_scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

/* Scans a string literal; returns its decoded value (new reference). */
static json_t *dup_string(struct dup_scan *s)
{
    const char *start = s->p;
    s->p++;
    while (s->p < s->end && *s->p != '"') {
        if (*s->p == '\\')
            s->p++;
        s->p++;
    }
    s->p++;
    json_t *str = json_loadb(start, (size_t)(s->p - start), JSON_DECODE_ANY | JSON_ALLOW_NUL,
                             NULL);
    return str != NULL ? str : json_string("");
}

static void dup_push(struct dup_scan *s, char *seg)
{
    if (s->nseg == s->capseg) {
        s->capseg = s->capseg != 0 ? s->capseg * 2 : 16;
        s->seg = xrealloc(s->seg, s->capseg * sizeof(*s->seg));
    }
    s->seg[s->nseg++] = seg;
}

static void dup_pop(struct dup_scan *s)
{
    free(s->seg[--s->nseg]);
}

static bool seg_is(const struct dup_scan *s, size_t from_end, const char *name)
{
    if (from_end >= s->nseg)
        return false;
    const char *g = s->seg[s->nseg - 1 - from_end];
    return g[0] == '/' && strcmp(g + 1, name) == 0;
}

/* True when the object being scanned is a machine's "States". */
static bool dup_in_states(const struct dup_scan *s)
{
    if (!seg_is(s, 0, "States"))
        return false;
    if (s->nseg == 1)
        return true;
    if ((seg_is(s, 1, "ItemProcessor") || seg_is(s, 1, "Iterator")) && seg_is(s, 3, "States"))
        return true;
    return s->nseg >= 2 && s->seg[s->nseg - 2][0] == '[' && seg_is(s, 2, "Branches") &&
           seg_is(s, 4, "States");
}

static void dup_value(struct dup_scan *s);

static void dup_report(struct dup_scan *s, const char *key)
{
    struct buf b = BUF_INIT;
    for (size_t i = 0; i < s->nseg; i++)
        buf_puts(&b, s->seg[i]);
    if (dup_in_states(s)) {
        buf_printf(&b, "/%s", key);
        asl_diags_add(s->d, CODE_DUP, buf_cstr(&b), "Duplicate State name: %s", key);
    } else {
        asl_diags_add(s->d, CODE_SCHEMA, b.len > 0 ? buf_cstr(&b) : "/",
                      "Duplicate field '%s'", key);
    }
    buf_release(&b);
}

static void dup_object(struct dup_scan *s)
{
    json_t *seen = json_object();
    s->p++; /* { */
    for (;;) {
        dup_ws(s);
        if (s->p >= s->end || *s->p == '}')
            break;
        if (*s->p == ',') {
            s->p++;
            continue;
        }
        json_t *key = dup_string(s);
        const char *k = json_string_value(key);
        if (json_object_get(seen, k) != NULL)
            dup_report(s, k);
        json_object_set_new(seen, k, json_true());
        dup_ws(s);
        s->p++; /* : */
        dup_push(s, xasprintf("/%s", k));
        dup_value(s);
        dup_pop(s);
        json_decref(key);
    }
    s->p++;
    json_decref(seen);
}

static void dup_array(struct dup_scan *s)
{
    size_t i = 0;
    s->p++; /* [ */
    for (;;) {
        dup_ws(s);
        if (s->p >= s->end || *s->p == ']')
            break;
        if (*s->p == ',') {
            s->p++;
            continue;
        }
        /* "[i]" attaches to the previous segment: "/Branches" then "[0]" */
        dup_push(s, xasprintf("[%zu]", i++));
        dup_value(s);
        dup_pop(s);
    }
    s->p++;
}

static void dup_value(struct dup_scan *s)
{
    dup_ws(s);
    if (s->p >= s->end)
        return;
    if (*s->p == '{') {
        dup_object(s);
    } else if (*s->p == '[') {
        dup_array(s);
    } else if (*s->p == '"') {
        json_decref(dup_string(s));
    } else {
        while (s->p < s->end && strchr(",]} \t\r\n", *s->p) == NULL)
            s->p++;
    }
}

static void check_duplicate_keys(const char *text, size_t len, struct asl_diags *d)
{
    struct dup_scan s = {text, text + len, d, NULL, 0, 0};
    dup_value(&s);
    while (s.nseg > 0)
        dup_pop(&s);
    free(s.seg);
}

/* ---------------------------------------------------------------------------------------
 * Entry points.
 */
static int validate_def(json_t *def, enum asl_machine_type type, struct asl_diags *d,
                        size_t before)
{
    if (!json_is_object(def)) {
        asl_diags_add(d, CODE_SCHEMA, NULL, "Definition must be a valid JSON object");
        return -1;
    }
    struct vctx v = {.d = d, .type = type, .names = json_object()};
    asl_diags_init(&v.unsup);
    json_t *ql = json_object_get(def, "QueryLanguage");
    v.top_jsonata = ql != NULL && !(json_is_string(ql) &&
                                    strcmp(json_string_value(ql), "JSONPath") == 0);

    check_machine(&v, def, "", MACHINE_TOP);
    for (size_t i = 0; i < v.nscopes; i++)
        check_graph(&v, &v.scopes[i]);

    /* the engine's own limits only once AWS would accept the definition */
    if (d->n == before) {
        for (size_t i = 0; i < v.unsup.n; i++) {
            struct asl_diag *g = &v.unsup.v[i];
            diags_push(d, g->code, g->location, g->message);
            g->message = NULL;
        }
    }
    asl_diags_release(&v.unsup);
    for (size_t i = 0; i < v.nscopes; i++)
        free(v.scopes[i].prefix);
    free(v.scopes);
    json_decref(v.names);
    return d->n == before ? 0 : -1;
}

int asl_validate_json(json_t *def, enum asl_machine_type type, struct asl_diags *d)
{
    return validate_def(def, type, d, d->n);
}

/* AWS parses definitions with Jackson and quotes its message (asl.md 13.2). For the common
 * case of a bare word where a value should start, render Jackson's text; other syntax
 * errors keep jansson's message. Returns true when it added the diagnostic. */
static bool jackson_unrecognized_token(const char *text, size_t len, size_t start,
                                       struct asl_diags *d)
{
    size_t end = start;
    while (end < len && (isalnum((unsigned char)text[end]) || text[end] == '_' ||
                         text[end] == '$' || text[end] == '-'))
        end++;
    if (end == start || text[start] == '-' || isdigit((unsigned char)text[start]))
        return false;
    size_t n = end - start;
    if ((n == 4 && (strncmp(text + start, "true", 4) == 0 || strncmp(text + start, "null", 4) == 0)) ||
        (n == 5 && strncmp(text + start, "false", 5) == 0))
        return false;
    int line = 1;
    size_t col0 = 0;
    for (size_t i = 0; i < start; i++) {
        if (text[i] == '\n') {
            line++;
            col0 = i + 1;
        }
    }
    char *where = xasprintf("[Source: (String)\"%.*s\"; line: %d, column: %zu]",
                            (int)(len < 500 ? len : 500), text, line, end - col0 + 1);
    asl_diags_add(d, CODE_JSON, where,
                  "Unrecognized token '%.*s': was expecting (JSON String, Number, Array, Object "
                  "or token 'null', 'true' or 'false')\n at %s",
                  (int)n, text + start, where);
    free(where);
    return true;
}

int asl_validate(const char *text, size_t len, enum asl_machine_type type,
                 struct asl_diags *d)
{
    size_t before = d->n;
    size_t i = 0;
    while (i < len && isspace((unsigned char)text[i]))
        i++;
    if (i == len) {
        asl_diags_add(d, CODE_SCHEMA, NULL, "Definition must be a valid JSON object");
        return -1;
    }
    struct err err = ERR_INIT;
    json_t *def = json_parse(text, len, true, &err);
    err_clear(&err);
    if (def == NULL) {
        /* a syntax error, or a duplicate key (which parses without the flag) */
        json_error_t jerr;
        def = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        if (def == NULL) {
            if (jackson_unrecognized_token(text, len, i, d))
                return -1;
            char *where = xasprintf("line %d, column %d", jerr.line, jerr.column);
            asl_diags_add(d, CODE_JSON, where, "%s", jerr.text);
            free(where);
            return -1;
        }
        check_duplicate_keys(text, len, d);
    }
    validate_def(def, type, d, before);
    json_decref(def);
    return d->n == before ? 0 : -1;
}
