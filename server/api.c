/* server/api.c - the Step Functions API of sfnd: AWS JSON 1.0 dispatch on X-Amz-Target,
 * the request body as a JSON object, the model's member constraints checked with AWS's
 * ValidationException messages (api.md 1.3), errors in AWS's shape, and the helpers the
 * operations share: ARNs, names, paging tokens, timestamps; and the API's life cycle. The
 * operations themselves are in api_machine.c, api_exec.c, api_activity.c, api_task.c and
 * api_tags.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server/config.h"
#include "server/internal.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/xalloc.h"

#define TARGET_PREFIX "AWSStepFunctions."
/* A request object is shallow and small (the largest lists hold 50 tags); documents travel
 * as strings. Deeper or larger bodies are JSON bombs, refused before jansson builds them. */
#define BODY_DEPTH_MAX 32
#define BODY_VALUES_MAX 10000

/* ---- member constraints (api.md Appendix A) ---- */

enum mtype { M_STRING, M_INT, M_BOOL, M_OBJECT, M_LIST };

struct member {
    const char *name;
    enum mtype type;
    bool required;
    int64_t min, max;          /* length (strings) or value (ints); -1 = none */
    const char *const *enums;  /* NULL-terminated allowed values, or NULL */
    bool bytes;                /* length in UTF-8 bytes (256 KiB payloads), not characters */
};

static const char *const e_type[] = {"STANDARD", "EXPRESS", NULL};
static const char *const e_included[] = {"ALL_DATA", "METADATA_ONLY", NULL};
static const char *const e_severity[] = {"ERROR", "WARNING", NULL};
/* api.md 1.3: the order AWS printed */
static const char *const e_status[] = {"SUCCEEDED", "TIMED_OUT", "PENDING_REDRIVE", "ABORTED",
                                       "FAILED",    "RUNNING",   NULL};
static const char *const e_redrive[] = {"REDRIVEN", "NOT_REDRIVEN", NULL};

#define STR(n, req, lo, hi) {n, M_STRING, req, lo, hi, NULL, false}
#define ENUM(n, values) {n, M_STRING, false, -1, -1, values, false}
#define INT(n, lo, hi) {n, M_INT, false, lo, hi, NULL, false}
#define BOOL(n) {n, M_BOOL, false, -1, -1, NULL, false}
#define OBJ(n) {n, M_OBJECT, false, -1, -1, NULL, false}
#define LIST(n) {n, M_LIST, false, -1, -1, NULL, false}
#define PAYLOAD(n) {n, M_STRING, false, -1, 262144, NULL, true}
#define REQ_PAYLOAD(n) {n, M_STRING, true, -1, 262144, NULL, true}
#define END {NULL, M_STRING, false, -1, -1, NULL, false}

static const struct member m_create[] = {
    STR("name", true, 1, 80), STR("definition", true, 1, 1048576), STR("roleArn", true, 1, 256),
    ENUM("type", e_type), OBJ("loggingConfiguration"), LIST("tags"),
    OBJ("tracingConfiguration"), BOOL("publish"), STR("versionDescription", false, -1, 256),
    OBJ("encryptionConfiguration"), END};
static const struct member m_describe_sm[] = {
    STR("stateMachineArn", true, 1, 256), ENUM("includedData", e_included), END};
static const struct member m_list_sm[] = {
    INT("maxResults", 0, 1000), STR("nextToken", false, 1, 1024), END};
static const struct member m_validate[] = {
    STR("definition", true, 1, 1048576), ENUM("type", e_type), ENUM("severity", e_severity),
    INT("maxResults", 0, 100), END};
static const struct member m_start[] = {
    STR("stateMachineArn", true, 1, 256), STR("name", false, 1, 80), PAYLOAD("input"),
    STR("traceHeader", false, 0, 256), END};
static const struct member m_start_sync[] = {
    STR("stateMachineArn", true, 1, 256), STR("name", false, 1, 80), PAYLOAD("input"),
    STR("traceHeader", false, 0, 256), ENUM("includedData", e_included), END};
static const struct member m_redrive[] = {
    STR("executionArn", true, 1, 256), STR("clientToken", false, 1, 64), END};
static const struct member m_describe_ex[] = {
    STR("executionArn", true, 1, 256), ENUM("includedData", e_included), END};
static const struct member m_stop[] = {
    STR("executionArn", true, 1, 256), STR("error", false, 0, 256),
    STR("cause", false, 0, 32768), END};
static const struct member m_list_ex[] = {
    STR("stateMachineArn", false, 1, 256), ENUM("statusFilter", e_status),
    INT("maxResults", 0, 1000), STR("nextToken", false, 1, 3096), STR("mapRunArn", false, 1, 2000),
    ENUM("redriveFilter", e_redrive), END};
static const struct member m_history[] = {
    STR("executionArn", true, 1, 256), INT("maxResults", 0, 1000), BOOL("reverseOrder"),
    STR("nextToken", false, 1, 1024), BOOL("includeExecutionData"), END};
static const struct member m_update[] = {
    STR("stateMachineArn", true, 1, 256), STR("definition", false, 1, 1048576),
    STR("roleArn", false, 1, 256), OBJ("loggingConfiguration"), OBJ("tracingConfiguration"),
    BOOL("publish"), STR("versionDescription", false, -1, 256), OBJ("encryptionConfiguration"),
    END};
static const struct member m_delete_sm[] = {STR("stateMachineArn", true, 1, 256), END};
static const struct member m_resource[] = {STR("resourceArn", true, 1, 256), END};
static const struct member m_tag[] = {
    STR("resourceArn", true, 1, 256), {"tags", M_LIST, true, -1, -1, NULL, false}, END};
static const struct member m_untag[] = {
    STR("resourceArn", true, 1, 256), {"tagKeys", M_LIST, true, -1, -1, NULL, false}, END};
static const struct member m_create_act[] = {
    STR("name", true, 1, 80), LIST("tags"), OBJ("encryptionConfiguration"), END};
static const struct member m_activity[] = {STR("activityArn", true, 1, 256), END};
static const struct member m_list_act[] = {
    INT("maxResults", 0, 1000), STR("nextToken", false, 1, 1024), END};
static const struct member m_get_task[] = {
    STR("activityArn", true, 1, 256), STR("workerName", false, 1, 80), END};
static const struct member m_task_success[] = {
    STR("taskToken", true, 1, 2048), REQ_PAYLOAD("output"), END};
static const struct member m_task_failure[] = {
    STR("taskToken", true, 1, 2048), STR("error", false, 0, 256), STR("cause", false, 0, 32768),
    END};
static const struct member m_task_heartbeat[] = {STR("taskToken", true, 1, 2048), END};

static const struct member m_none[] = {END};

struct op {
    const char *name;
    void (*fn)(struct call *c);
    const struct member *members;
};

static const struct op ops[] = {
    {"CreateStateMachine", op_create_state_machine, m_create},
    {"DescribeStateMachine", op_describe_state_machine, m_describe_sm},
    {"ListStateMachines", op_list_state_machines, m_list_sm},
    {"ValidateStateMachineDefinition", op_validate_definition, m_validate},
    {"StartExecution", op_start_execution, m_start},
    {"StartSyncExecution", op_start_sync_execution, m_start_sync},
    {"RedriveExecution", op_redrive_execution, m_redrive},
    {"DescribeExecution", op_describe_execution, m_describe_ex},
    {"StopExecution", op_stop_execution, m_stop},
    {"ListExecutions", op_list_executions, m_list_ex},
    {"GetExecutionHistory", op_get_execution_history, m_history},
    {"UpdateStateMachine", op_update_state_machine, m_update},
    {"DeleteStateMachine", op_delete_state_machine, m_delete_sm},
    {"DescribeStateMachineForExecution", op_describe_state_machine_for_execution,
     m_describe_ex},
    {"TagResource", op_tag_resource, m_tag},
    {"UntagResource", op_untag_resource, m_untag},
    {"ListTagsForResource", op_list_tags_for_resource, m_resource},
    {"CreateActivity", op_create_activity, m_create_act},
    {"DescribeActivity", op_describe_activity, m_activity},
    {"DeleteActivity", op_delete_activity, m_activity},
    {"ListActivities", op_list_activities, m_list_act},
    {"GetActivityTask", op_get_activity_task, m_get_task},
    {"SendTaskSuccess", op_send_task_success, m_task_success},
    {"SendTaskFailure", op_send_task_failure, m_task_failure},
    {"SendTaskHeartbeat", op_send_task_heartbeat, m_task_heartbeat},
    {"TestState", op_test_state, m_none}, /* api_test_state.c checks its members */
};

/* ---- answers ---- */

/* api.md 1.3: the namespaces AWS puts before its codes (clients keep what follows '#') */
static const char *error_namespace(const char *code)
{
    if (strcmp(code, "ValidationException") == 0)
        return "com.amazon.coral.validate#";
    if (strcmp(code, "UnknownOperationException") == 0 ||
        strcmp(code, "SerializationException") == 0 || strcmp(code, "InternalFailure") == 0 ||
        strcmp(code, "MissingAuthenticationTokenException") == 0 ||
        strcmp(code, "IncompleteSignatureException") == 0 ||
        strcmp(code, "InvalidSignatureException") == 0 ||
        strcmp(code, "UnrecognizedClientException") == 0)
        return "com.amazon.coral.service#";
    return "com.amazonaws.swf.service.v2.model#";
}

#define REPLY_KEEP_MAX (64 * 1024) /* a larger reply buffer is freed after its answer */

struct buf *call_reply_buf(struct call *c)
{
    buf_reset(&c->api->reply);
    return &c->api->reply;
}

void call_reply(struct call *c, bool after_commit)
{
    struct buf *b = &c->api->reply;
    server_reply(c->req, 200, NULL, buf_cstr(b), b->len, after_commit); /* copies it */
    if (b->cap > REPLY_KEEP_MAX)
        buf_release(b);
}

void call_ok(struct call *c, json_t *out_new, bool after_commit)
{
    json_compact_append(call_reply_buf(c), out_new);
    json_decref(out_new);
    call_reply(c, after_commit);
}

/* The length of the valid UTF-8 sequence at s[0..n), or 0 when it is not one. */
static size_t utf8_valid_len(const unsigned char *s, size_t n)
{
    size_t len = s[0] < 0x80 ? 1 : (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3
               : (s[0] & 0xf8) == 0xf0 ? 4 : 0;
    if (len == 0 || len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    }
    return len;
}

/* A copy of `s` that is valid UTF-8 (messages may quote text cut mid-character, such as a
 * parser's excerpt): invalid bytes become '?'. New string. */
static char *utf8_sanitize(const char *s)
{
    size_t n = strlen(s);
    char *out = xmalloc(n + 1);
    size_t j = 0;
    for (size_t i = 0; i < n;) {
        size_t len = utf8_valid_len((const unsigned char *)s + i, n - i);
        if (len == 0) {
            out[j++] = '?';
            i++;
            continue;
        }
        memcpy(out + j, s + i, len);
        i += len;
        j += len;
    }
    out[j] = '\0';
    return out;
}

static void reply_error(struct call *c, int status, const char *code, const char *message,
                        const char *resource)
{
    char *type = xasprintf("%s%s", error_namespace(code), code);
    char *clean = utf8_sanitize(message);
    json_t *o = json_pack("{s:s,s:s}", "__type", type, "message", clean);
    free(clean);
    if (resource != NULL) {
        clean = utf8_sanitize(resource);
        json_object_set_new(o, "resourceName", json_string(clean));
        free(clean);
    }
    char *text = json_compact(o);
    json_decref(o);
    server_reply(c->req, status, code, text, strlen(text), false);
    free(text);
    free(type);
}

int call_error(struct call *c, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    reply_error(c, 400, code, msg, NULL);
    free(msg);
    return -1;
}

int call_error_resource(struct call *c, const char *code, const char *resource,
                        const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    reply_error(c, 400, code, msg, resource);
    free(msg);
    return -1;
}

int call_fail(struct call *c, const struct err *err)
{
    reply_error(c, 500, "InternalFailure",
                err->cause != NULL ? err->cause : err->name[0] != '\0' ? err->name
                                                                       : "internal failure",
                NULL);
    return -1;
}

/* ---- members ---- */

const char *call_str(struct call *c, const char *member)
{
    return json_string_value(json_object_get(c->in, member));
}

int64_t call_int(struct call *c, const char *member, int64_t def)
{
    json_t *v = json_object_get(c->in, member);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
}

bool call_bool(struct call *c, const char *member, bool def)
{
    json_t *v = json_object_get(c->in, member);
    return json_is_boolean(v) ? json_is_true(v) : def;
}

/* Characters (code points) of UTF-8 text; jansson has checked the encoding. */
static size_t utf8_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xc0) != 0x80;
    return n;
}

static const char *type_word(enum mtype t)
{
    static const char *const words[] = {"a string", "an integer", "a boolean", "an object",
                                        "a list"};
    return words[t];
}

/* Checks the request's members against `members`: a wrong JSON type answers
 * SerializationException; violated constraints are gathered into one ValidationException
 * (api.md 1.3). Returns 0 or -1 (answered). */
static int check_members(struct call *c, const struct member *members)
{
    struct buf clauses = BUF_INIT;
    int n = 0;
    for (const struct member *m = members; m->name != NULL; m++) {
        json_t *v = json_object_get(c->in, m->name);
        if (v == NULL) {
            if (m->required) {
                buf_printf(&clauses, "%sValue null at '%s' failed to satisfy constraint: Member "
                           "must not be null", n > 0 ? "; " : "", m->name);
                n++;
            }
            continue;
        }
        bool ok = (m->type == M_STRING && json_is_string(v)) ||
                  (m->type == M_INT && json_is_integer(v)) ||
                  (m->type == M_BOOL && json_is_boolean(v)) ||
                  (m->type == M_OBJECT && json_is_object(v)) ||
                  (m->type == M_LIST && json_is_array(v));
        if (!ok) {
            buf_release(&clauses);
            return call_error(c, "SerializationException",
                              "cannot deserialize member '%s': expected %s", m->name,
                              type_word(m->type));
        }
        const char *reason = NULL;
        int64_t bound = 0;
        char value[1100];
        if (m->type == M_STRING) {
            const char *s = json_string_value(v);
            size_t bytes = json_string_length(v);
            int64_t len = (int64_t)(m->bytes ? bytes : utf8_chars(s, bytes));
            if (m->min >= 0 && len < m->min) {
                reason = "Member must have length greater than or equal to";
                bound = m->min;
            } else if (m->max >= 0 && len > m->max) {
                reason = "Member must have length less than or equal to";
                bound = m->max;
            }
            bool in_set = m->enums == NULL;
            for (size_t i = 0; m->enums != NULL && m->enums[i] != NULL; i++)
                in_set = in_set || strcmp(m->enums[i], s) == 0;
            if (!in_set) {
                struct buf set = BUF_INIT;
                for (size_t i = 0; m->enums[i] != NULL; i++)
                    buf_printf(&set, "%s%s", i > 0 ? ", " : "", m->enums[i]);
                buf_printf(&clauses, "%sValue '%.1024s' at '%s' failed to satisfy constraint: "
                           "Member must satisfy enum value set: [%s]", n > 0 ? "; " : "", s,
                           m->name, buf_cstr(&set));
                buf_release(&set);
                n++;
                continue;
            }
            if (reason != NULL) /* only a violation quotes the value */
                snprintf(value, sizeof(value), "%.1024s", s);
        } else if (m->type == M_INT) {
            int64_t i = (int64_t)json_integer_value(v);
            if (m->min >= 0 && i < m->min) {
                reason = "Member must have value greater than or equal to";
                bound = m->min;
            } else if (m->max >= 0 && i > m->max) {
                reason = "Member must have value less than or equal to";
                bound = m->max;
            }
            if (reason != NULL)
                snprintf(value, sizeof(value), "%lld", (long long)i);
        }
        if (reason != NULL) {
            buf_printf(&clauses, "%sValue '%s' at '%s' failed to satisfy constraint: %s %lld",
                       n > 0 ? "; " : "", value, m->name, reason, (long long)bound);
            n++;
        }
    }
    if (n == 0) {
        buf_release(&clauses);
        return 0;
    }
    call_error(c, "ValidationException", "%d validation error%s detected: %s", n,
               n > 1 ? "s" : "", buf_cstr(&clauses));
    buf_release(&clauses);
    return -1;
}

/* ---- ARNs and names ---- */

int api_arn_parse(struct call *c, const char *arn, const char *type, char **scratch,
                  char *parts[ARN_PARTS_MAX], int *n_parts)
{
    *scratch = NULL;
    *n_parts = 0;
    if (strncmp(arn, "arn:", 4) != 0)
        return call_error(c, "InvalidArn", "Invalid Arn: 'Invalid ARN prefix: %s'", arn);
    char *copy = xstrdup(arn);
    int n = 0;
    char *p = copy;
    for (;;) {
        char *colon = strchr(p, ':');
        if (n == ARN_PARTS_MAX) {
            n++;
            break;
        }
        parts[n++] = p;
        if (colon == NULL)
            break;
        *colon = '\0';
        p = colon + 1;
    }
    /* arn:partition:service:region:account:resourceType:name... */
    if (n < 7 || n > ARN_PARTS_MAX || strcmp(parts[2], "states") != 0 || parts[3][0] == '\0' ||
        parts[4][0] == '\0' || parts[6][0] == '\0') {
        free(copy);
        return call_error(c, "InvalidArn", "Invalid Arn: 'Invalid ARN prefix: %s'", arn);
    }
    if (type != NULL && strcmp(parts[5], type) != 0) {
        call_error(c, "InvalidArn", "Invalid Arn: 'Resource type not valid in this context: %s'",
                   parts[5]);
        free(copy);
        return -1;
    }
    *scratch = copy;
    *n_parts = n;
    return 0;
}

/* Decodes one UTF-8 sequence at s (valid: jansson checked it); *len gets its length. */
static uint32_t utf8_decode(const unsigned char *s, size_t *len)
{
    if (s[0] < 0x80) {
        *len = 1;
        return s[0];
    }
    if ((s[0] & 0xe0) == 0xc0) {
        *len = 2;
        return ((uint32_t)(s[0] & 0x1f) << 6) | (s[1] & 0x3f);
    }
    if ((s[0] & 0xf0) == 0xe0) {
        *len = 3;
        return ((uint32_t)(s[0] & 0x0f) << 12) | ((uint32_t)(s[1] & 0x3f) << 6) | (s[2] & 0x3f);
    }
    *len = 4;
    return ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3f) << 12) |
           ((uint32_t)(s[2] & 0x3f) << 6) | (s[3] & 0x3f);
}

static bool name_char_ok(uint32_t ch)
{
    /* api.md 2.1: whitespace, brackets, wildcards, special characters, control characters,
     * U+FFFE-FFFF and surrogates are refused */
    if (ch <= 0x20 || (ch >= 0x7f && ch <= 0xa0) || ch == 0x1680 ||
        (ch >= 0x2000 && ch <= 0x200a) || ch == 0x2028 || ch == 0x2029 || ch == 0x202f ||
        ch == 0x205f || ch == 0x3000 || ch == 0xfffe || ch == 0xffff ||
        (ch >= 0xd800 && ch <= 0xdfff))
        return false;
    return ch > 0x7f || strchr("<>{}[]?*\"#%\\^|~`$&,;:/", (int)ch) == NULL;
}

int api_name_check(struct call *c, const char *name)
{
    const unsigned char *s = (const unsigned char *)name;
    size_t chars = 0;
    bool ok = s[0] != '\0';
    while (ok && *s != '\0') {
        size_t len = 1;
        ok = name_char_ok(utf8_decode(s, &len));
        s += len;
        chars++;
    }
    if (!ok || chars > 80)
        return call_error(c, "InvalidName", "Invalid Name: '%s'", name);
    return 0;
}

/* ---- paging ---- */

size_t api_page_size(struct call *c)
{
    int64_t n = call_int(c, "maxResults", 0);
    return n > 0 ? (size_t)n : 100; /* api.md 4: 0 or absent = 100 */
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void b64_encode(struct buf *out, const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)s[i + 1] << 8;
        if (i + 2 < n)
            v |= s[i + 2];
        buf_putc(out, b64[(v >> 18) & 63]);
        buf_putc(out, b64[(v >> 12) & 63]);
        if (i + 1 < n)
            buf_putc(out, b64[(v >> 6) & 63]);
        if (i + 2 < n)
            buf_putc(out, b64[v & 63]);
    }
}

static int b64_decode(struct buf *out, const char *s)
{
    uint32_t acc = 0;
    int bits = 0;
    for (; *s != '\0'; s++) {
        const char *p = strchr(b64, *s);
        if (p == NULL)
            return -1;
        acc = (acc << 6) | (uint32_t)(p - b64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf_putc(out, (char)((acc >> bits) & 0xff));
        }
    }
    return 0;
}

/* A token is base64url of the JSON {"k": position, "f": the listing's arguments}. */
char *api_token_make(const char *key, const char *filter)
{
    json_t *o = json_pack("{s:s,s:s}", "k", key, "f", filter);
    char *text = json_compact(o);
    json_decref(o);
    struct buf b = BUF_INIT;
    b64_encode(&b, (const unsigned char *)text, strlen(text));
    free(text);
    buf_cstr(&b);
    return buf_detach(&b);
}

int api_token_read(struct call *c, const char *filter, char **key_out)
{
    *key_out = NULL;
    const char *token = call_str(c, "nextToken");
    if (token == NULL)
        return 0;
    struct buf b = BUF_INIT;
    json_t *o = NULL;
    if (b64_decode(&b, token) == 0 && b.len > 0)
        o = json_loadb(b.data, b.len, 0, NULL);
    buf_release(&b);
    const char *key = json_string_value(json_object_get(o, "k"));
    const char *f = json_string_value(json_object_get(o, "f"));
    if (key == NULL || f == NULL || strcmp(f, filter) != 0) {
        json_decref(o);
        return call_error(c, "InvalidToken", "Invalid Token: 'Invalid token'");
    }
    *key_out = xstrdup(key);
    json_decref(o);
    return 0;
}

json_t *api_time(int64_t ms)
{
    return json_real((double)ms / 1000.0);
}

char *api_json_sorted(const json_t *v)
{
    char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    char *copy = xstrdup(text != NULL ? text : "null");
    json_malloc_t jmalloc = NULL;
    json_free_t jfree = NULL;
    json_get_alloc_funcs(&jmalloc, &jfree);
    jfree(text); /* jansson's allocator (util/xalloc.h) */
    return copy;
}

int64_t api_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t next_rand(struct api *api)
{
    uint64_t x = api->rng; /* xorshift64*: revisionIds only need to be distinct */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    api->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

void api_uuid(struct api *api, char out[37])
{
    uint64_t a = next_rand(api), b = next_rand(api);
    unsigned char u[16];
    for (int i = 0; i < 8; i++) {
        u[i] = (unsigned char)(a >> (i * 8));
        u[8 + i] = (unsigned char)(b >> (i * 8));
    }
    u[6] = (unsigned char)((u[6] & 0x0f) | 0x40);
    u[8] = (unsigned char)((u[8] & 0x3f) | 0x80);
    static const char hex[] = "0123456789abcdef";
    size_t j = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[j++] = '-';
        out[j++] = hex[u[i] >> 4];
        out[j++] = hex[u[i] & 15];
    }
    out[j] = '\0';
}

void api_name_new(struct api *api, char out[37])
{
    /* RFC 9562 UUID version 7: 48 bits of Unix ms, then random bits. Names made in time
     * order land at the end of the store's name and ARN indexes, where random ones would
     * dirty a different page per execution at each commit */
    uint64_t ms = (uint64_t)api_now_ms();
    uint64_t a = next_rand(api), b = next_rand(api);
    unsigned char u[16];
    for (int i = 0; i < 6; i++)
        u[i] = (unsigned char)(ms >> (40 - 8 * i));
    u[6] = (unsigned char)(0x70 | (a & 0x0f));
    u[7] = (unsigned char)(a >> 8);
    for (int i = 0; i < 8; i++)
        u[8 + i] = (unsigned char)(b >> (i * 8));
    u[8] = (unsigned char)((u[8] & 0x3f) | 0x80);
    static const char hex[] = "0123456789abcdef";
    size_t j = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[j++] = '-';
        out[j++] = hex[u[i] >> 4];
        out[j++] = hex[u[i] & 15];
    }
    out[j] = '\0';
}

/* ---- dispatch ---- */

static const struct op *op_find(const char *target)
{
    if (target == NULL || strncmp(target, TARGET_PREFIX, strlen(TARGET_PREFIX)) != 0)
        return NULL;
    const char *name = target + strlen(TARGET_PREFIX);
    for (size_t i = 0; i < ARRAY_LEN(ops); i++) {
        if (strcmp(ops[i].name, name) == 0)
            return &ops[i];
    }
    return NULL;
}

/* api.md 1.1: an explicit null is the same as an absent member */
static void drop_nulls(json_t *o)
{
    const char *key;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(o, tmp, key, v) {
        if (json_is_null(v))
            json_object_del(o, key);
    }
}

/* NULL when the body's JSON structure (outside strings) stays within BODY_DEPTH_MAX and
 * BODY_VALUES_MAX; else what is wrong. Malformed text is left to the parser. */
static const char *body_shape_check(const char *s, size_t n)
{
    int depth = 0;
    size_t values = 0;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (in_str) {
            if (ch == '\\')
                i++;
            else if (ch == '"')
                in_str = false;
            continue;
        }
        if (ch == '"') {
            in_str = true;
        } else if (ch == '{' || ch == '[') {
            if (++depth > BODY_DEPTH_MAX)
                return "the request body nests deeper than 32 levels";
        } else if (ch == '}' || ch == ']') {
            depth--;
        } else if (ch == ',') {
            if (++values > BODY_VALUES_MAX)
                return "the request body holds more than 10000 values";
        }
    }
    return NULL;
}

void api_set_auth(struct api *api, struct auth *auth)
{
    api->auth = auth;
}

void api_set_poll_ms(struct api *api, int64_t ms)
{
    api->poll_ms = ms;
}

void api_handle(struct server_req *req, void *arg)
{
    struct api *api = arg;
    struct call c = {api, req, NULL};
    if (api->auth != NULL) {
        struct auth_fail f;
        if (auth_check(api->auth, req, time(NULL), &f) != 0) {
            reply_error(&c, f.status, f.code, f.message, NULL);
            return;
        }
    }
    const char *target = server_req_header(req, "x-amz-target");
    const struct op *op = op_find(target);
    if (op == NULL || strcmp(server_req_method(req), "POST") != 0) {
        /* every other operation of the model too: sfnd does not serve them yet */
        call_error(&c, "UnknownOperationException", "%s%s",
                   target != NULL ? "Unknown or unsupported operation: " : "Missing X-Amz-Target",
                   target != NULL ? target : "");
        return;
    }
    size_t len = 0;
    const char *body = server_req_body(req, &len);
    const char *bomb = len > 0 ? body_shape_check(body, len) : NULL;
    if (bomb != NULL) {
        call_error(&c, "SerializationException", "%s", bomb);
        return;
    }
    if (len == 0) {
        c.in = json_object();
    } else {
        json_error_t jerr;
        c.in = json_loadb(body, len, JSON_DECODE_ANY, &jerr);
        if (c.in == NULL || !json_is_object(c.in)) {
            json_decref(c.in);
            call_error(&c, "SerializationException", "%s",
                       c.in == NULL ? jerr.text : "the request body is not a JSON object");
            return;
        }
    }
    drop_nulls(c.in);
    if (check_members(&c, op->members) == 0)
        op->fn(&c);
    json_decref(c.in);
}

/* ---- lifecycle ---- */

static void on_execution_done(struct sfn_execution *ex, void *arg)
{
    struct api *api = arg;
    /* called after the commit of the execution's end; the store has its record now */
    smap_del(&api->running, sfn_execution_arn(ex));
    if (api->mock != NULL) /* sfnd --mock-config: its test case binding and counts */
        sfn_mock_forget(api->mock, sfn_execution_arn(ex));
    sfn_execution_free(ex);
}

struct sfn_execution_options api_execution_options(struct api *api)
{
    struct sfn_execution_options o = {NULL, NULL, on_execution_done, NULL, api};
    return o;
}

void api_track(struct sfn_execution *ex, void *arg)
{
    struct api *api = arg;
    smap_put(&api->running, sfn_execution_arn(ex), ex);
}

struct api *api_new(uv_loop_t *loop, struct sfn_engine *eng, struct sfn_store *st,
                    const char *region, const char *account)
{
    struct api *api = xcalloc(1, sizeof(*api));
    api->loop = loop;
    api->eng = eng;
    api->st = st;
    api->region = region;
    api->account = account;
    api->poll_ms = API_POLL_MS;
    smap_init(&api->machines);
    smap_init(&api->running);
    smap_init(&api->activities);
    smap_init(&api->tasks);
    smap_init(&api->callbacks);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    api->rng = ((uint64_t)ts.tv_sec * 1000000007ULL) ^ (uint64_t)ts.tv_nsec ^
               ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)api;
    if (api->rng == 0)
        api->rng = 0x9E3779B97F4A7C15ULL;
    return api;
}

static void on_running_definition(const char *text, size_t len, void *arg)
{
    api_task_register_callbacks(arg, text, len);
}

int api_start(struct api *api, struct err *err)
{
    /* activity tasks: every activity of this region and account */
    char *pattern = xasprintf("arn:aws:states:%s:%s:activity:*", api->region, api->account);
    int rc = sfn_engine_register_resource(api->eng, pattern, &api_activity_ops, api, err);
    free(pattern);
    if (rc != 0)
        return -1;
    /* .waitForTaskToken tasks the recovery is about to hand back */
    return api->st != NULL ? sfn_store_running_definitions(api->st, on_running_definition, api,
                                                           err)
                           : 0;
}

int api_recovered(struct api *api, struct err *err)
{
    return api_machine_finish_deletions(api, err);
}

void api_shutdown(struct api *api)
{
    api->shutting_down = true;
    api_activity_shutdown(api);
    api_test_state_shutdown(api); /* api_test_state.c */
}

void api_set_server(struct api *api, struct server *srv)
{
    api->srv = srv;
}

void api_free(struct api *api)
{
    if (api == NULL)
        return;
    smap_each(&api->machines, api_machine_drop, NULL);
    smap_release(&api->machines);
    smap_release(&api->running); /* the engine has freed or released the executions */
    api_activity_release(api);   /* the engine has cancelled or detached every task */
    smap_release(&api->activities);
    smap_release(&api->tasks);
    smap_release(&api->callbacks);
    api_machine_release(api);
    api_exec_release(api);
    buf_release(&api->reply);
    free(api);
}
