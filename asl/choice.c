/* asl/choice.c - Choice rules (asl.md section 7): each JSONPath rule object is compiled once
 * into a predicate tree (And / Or / Not over data tests) whose literals are already in their
 * working form (numbers, parsed timestamps, StringMatches patterns split at their
 * wildcards); evaluation walks the tree against a scope and allocates nothing of its own
 * (path evaluation allocates only the cause of a missing path, which IsPresent discards).
 * The engine's Choice state and the validator both come through here. */
#include "asl/asl.h"

#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

/* What a data test checks; the operator table below maps names to these. */
enum op_family {
    FAM_STRING,       /* String{Equals,LessThan,...}[Path] */
    FAM_NUMERIC,      /* Numeric*[Path] */
    FAM_BOOLEAN,      /* BooleanEquals[Path] */
    FAM_TIMESTAMP,    /* Timestamp*[Path] */
    FAM_MATCHES,      /* StringMatches */
    FAM_IS_NULL,      /* IsNull */
    FAM_IS_PRESENT,   /* IsPresent: the only test that tolerates a missing Variable */
    FAM_IS_NUMERIC,   /* IsNumeric */
    FAM_IS_STRING,    /* IsString */
    FAM_IS_BOOLEAN,   /* IsBoolean */
    FAM_IS_TIMESTAMP, /* IsTimestamp */
};

enum op_cmp { CMP_EQ, CMP_LT, CMP_GT, CMP_LE, CMP_GE };

struct op_def {
    const char *name;    /* the rule field, e.g. "NumericLessThanPath" */
    enum op_family fam;  /* what is tested */
    enum op_cmp cmp;     /* the comparison (families with an ordering) */
    bool path;           /* the operand is a Reference Path into the input */
};

/* ASL 7.3: the 39 data-test operators. */
static const struct op_def ops[] = {
    {"StringEquals", FAM_STRING, CMP_EQ, false},
    {"StringLessThan", FAM_STRING, CMP_LT, false},
    {"StringGreaterThan", FAM_STRING, CMP_GT, false},
    {"StringLessThanEquals", FAM_STRING, CMP_LE, false},
    {"StringGreaterThanEquals", FAM_STRING, CMP_GE, false},
    {"StringEqualsPath", FAM_STRING, CMP_EQ, true},
    {"StringLessThanPath", FAM_STRING, CMP_LT, true},
    {"StringGreaterThanPath", FAM_STRING, CMP_GT, true},
    {"StringLessThanEqualsPath", FAM_STRING, CMP_LE, true},
    {"StringGreaterThanEqualsPath", FAM_STRING, CMP_GE, true},
    {"StringMatches", FAM_MATCHES, CMP_EQ, false},
    {"NumericEquals", FAM_NUMERIC, CMP_EQ, false},
    {"NumericLessThan", FAM_NUMERIC, CMP_LT, false},
    {"NumericGreaterThan", FAM_NUMERIC, CMP_GT, false},
    {"NumericLessThanEquals", FAM_NUMERIC, CMP_LE, false},
    {"NumericGreaterThanEquals", FAM_NUMERIC, CMP_GE, false},
    {"NumericEqualsPath", FAM_NUMERIC, CMP_EQ, true},
    {"NumericLessThanPath", FAM_NUMERIC, CMP_LT, true},
    {"NumericGreaterThanPath", FAM_NUMERIC, CMP_GT, true},
    {"NumericLessThanEqualsPath", FAM_NUMERIC, CMP_LE, true},
    {"NumericGreaterThanEqualsPath", FAM_NUMERIC, CMP_GE, true},
    {"BooleanEquals", FAM_BOOLEAN, CMP_EQ, false},
    {"BooleanEqualsPath", FAM_BOOLEAN, CMP_EQ, true},
    {"TimestampEquals", FAM_TIMESTAMP, CMP_EQ, false},
    {"TimestampLessThan", FAM_TIMESTAMP, CMP_LT, false},
    {"TimestampGreaterThan", FAM_TIMESTAMP, CMP_GT, false},
    {"TimestampLessThanEquals", FAM_TIMESTAMP, CMP_LE, false},
    {"TimestampGreaterThanEquals", FAM_TIMESTAMP, CMP_GE, false},
    {"TimestampEqualsPath", FAM_TIMESTAMP, CMP_EQ, true},
    {"TimestampLessThanPath", FAM_TIMESTAMP, CMP_LT, true},
    {"TimestampGreaterThanPath", FAM_TIMESTAMP, CMP_GT, true},
    {"TimestampLessThanEqualsPath", FAM_TIMESTAMP, CMP_LE, true},
    {"TimestampGreaterThanEqualsPath", FAM_TIMESTAMP, CMP_GE, true},
    {"IsNull", FAM_IS_NULL, CMP_EQ, false},
    {"IsPresent", FAM_IS_PRESENT, CMP_EQ, false},
    {"IsNumeric", FAM_IS_NUMERIC, CMP_EQ, false},
    {"IsString", FAM_IS_STRING, CMP_EQ, false},
    {"IsBoolean", FAM_IS_BOOLEAN, CMP_EQ, false},
    {"IsTimestamp", FAM_IS_TIMESTAMP, CMP_EQ, false},
};

enum rule_kind { RULE_AND, RULE_OR, RULE_NOT, RULE_TEST };

/* A JSON number kept exactly: integers stay int64 so large ones compare exactly. */
struct num {
    bool is_int; /* i is the value; otherwise d is */
    int64_t i;   /* integer value */
    double d;    /* real value */
};

/* A StringMatches pattern split at its unescaped `*`s: nseg literal segments (escapes
 * already resolved) stored back to back in `lit`, with a wildcard between each two. */
struct pattern {
    char *lit;    /* owned: the segments' bytes, concatenated */
    size_t *seg;  /* owned: nseg segment lengths */
    size_t nseg;  /* number of `*` plus one */
};

struct asl_rule {
    enum rule_kind kind;        /* combinator or data test */
    struct asl_rule **kids;     /* owned: And/Or operands (nkids >= 1), Not's one operand */
    size_t nkids;               /* entries in kids */
    const struct op_def *op;    /* RULE_TEST: the operator */
    struct asl_path *var;       /* RULE_TEST: owned, the Variable */
    struct asl_path *rhs;       /* RULE_TEST with op->path: owned, the operand path */
    union {
        struct {
            char *s;            /* owned bytes (may hold NULs) */
            size_t len;         /* bytes in s */
        } str;                  /* String* literal */
        struct num num;         /* Numeric* literal */
        bool b;                 /* BooleanEquals literal; Is* expected answer */
        struct asl_time ts;     /* Timestamp* literal */
        struct pattern pat;     /* StringMatches */
    } lit;
};

/* ---------------------------------------------------------------------------------------
 * Comparisons.
 */

static bool cmp_holds(enum op_cmp cmp, int c)
{
    switch (cmp) {
    case CMP_EQ:
        return c == 0;
    case CMP_LT:
        return c < 0;
    case CMP_GT:
        return c > 0;
    case CMP_LE:
        return c <= 0;
    case CMP_GE:
        return c >= 0;
    }
    return false;
}

static struct num num_of(const json_t *v)
{
    struct num n = {false, 0, 0.0};
    if (json_is_integer(v)) {
        n.is_int = true;
        n.i = (int64_t)json_integer_value(v);
    } else {
        n.d = json_real_value(v);
    }
    return n;
}

/* Compares integer i with real d exactly (no rounding of i to double). */
static int cmp_int_real(int64_t i, double d)
{
    if (d != d)
        return 1; /* NaN: unordered; jansson never produces one */
    if (d >= 9223372036854775808.0)
        return -1;
    if (d < -9223372036854775808.0)
        return 1;
    int64_t t = (int64_t)d; /* truncated toward zero, in range */
    if (i != t)
        return i < t ? -1 : 1;
    double frac = d - (double)t; /* exact */
    return frac > 0 ? -1 : frac < 0 ? 1 : 0;
}

static int num_cmp(const struct num *a, const struct num *b)
{
    if (a->is_int && b->is_int)
        return a->i < b->i ? -1 : a->i > b->i ? 1 : 0;
    if (a->is_int)
        return cmp_int_real(a->i, b->d);
    if (b->is_int)
        return -cmp_int_real(b->i, a->d);
    return a->d < b->d ? -1 : a->d > b->d ? 1 : 0;
}

/* Decodes the UTF-8 character at s (n bytes available) into a key whose order is the
 * order of the character's first UTF-16 code unit, then of the rest: code points in
 * U+E000..U+FFFF sort after supplementary ones, whose high surrogate is D800..DBFF. */
static uint32_t utf16_key(const unsigned char *s, size_t n)
{
    uint32_t cp = s[0];
    size_t len = 1;
    if (cp >= 0xF0) {
        cp &= 0x07;
        len = 4;
    } else if (cp >= 0xE0) {
        cp &= 0x0F;
        len = 3;
    } else if (cp >= 0xC0) {
        cp &= 0x1F;
        len = 2;
    }
    for (size_t k = 1; k < len && k < n; k++)
        cp = (cp << 6) | (s[k] & 0x3F);
    if (cp >= 0xE000 && cp <= 0xFFFF)
        cp += 0x110000;
    return cp;
}

/* Java String.compareTo order (UTF-16 code units) on UTF-8 bytes, without converting. */
static int str_cmp(const char *a, size_t an, const char *b, size_t bn)
{
    const unsigned char *ua = (const unsigned char *)a;
    const unsigned char *ub = (const unsigned char *)b;
    size_t n = an < bn ? an : bn;
    size_t i = 0;
    while (i < n && ua[i] == ub[i])
        i++;
    if (i == n)
        return an < bn ? -1 : an > bn ? 1 : 0;
    /* back to the start of the character both strings differ in */
    while (i > 0 && ((ua[i] & 0xC0) == 0x80 || (ub[i] & 0xC0) == 0x80))
        i--;
    uint32_t ka = utf16_key(ua + i, an - i);
    uint32_t kb = utf16_key(ub + i, bn - i);
    if (ka != kb)
        return ka < kb ? -1 : 1;
    return memcmp(ua + i, ub + i, n - i) < 0 ? -1 : 1; /* malformed UTF-8 only */
}

/* Parses a JSON string as a timestamp. Embedded NULs make it invalid. */
static bool time_of(const json_t *v, struct asl_time *t)
{
    if (!json_is_string(v))
        return false;
    const char *s = json_string_value(v);
    return asl_time_parse(s, t) == 0 && strlen(s) == json_string_length(v);
}

/* Finds `needle` in s[from, to). Returns its offset or (size_t)-1. */
static size_t find(const char *s, size_t from, size_t to, const char *needle, size_t n)
{
    if (n == 0)
        return from;
    for (size_t i = from; i + n <= to; i++) {
        if (s[i] == needle[0] && memcmp(s + i, needle, n) == 0)
            return i;
    }
    return (size_t)-1;
}

/* ASL StringMatches: the whole string matches, `*` standing for any run of characters.
 * Byte matching is character matching here since both sides are valid UTF-8. */
static bool pattern_match(const struct pattern *pt, const char *s, size_t n)
{
    const char *lit = pt->lit;
    size_t first = pt->seg[0];
    if (pt->nseg == 1)
        return n == first && memcmp(s, lit, n) == 0;
    if (n < first || memcmp(s, lit, first) != 0)
        return false;
    size_t pos = first;
    lit += first;
    size_t last = pt->seg[pt->nseg - 1];
    if (n - pos < last)
        return false;
    size_t end = n - last;
    for (size_t k = 1; k + 1 < pt->nseg; k++) {
        size_t len = pt->seg[k];
        size_t at = find(s, pos, end, lit, len);
        if (at == (size_t)-1)
            return false;
        pos = at + len;
        lit += len;
    }
    return memcmp(s + end, lit, last) == 0;
}

/* ---------------------------------------------------------------------------------------
 * Evaluation.
 */

/* IsPresent: a Variable that cannot be resolved is "not present", not an error. The path
 * module's cause for it is built and dropped: a borrowed lookup without err would avoid it. */
static bool present(const struct asl_rule *r, const struct asl_scope *s)
{
    struct err e = ERR_INIT;
    json_t *v = asl_path_eval(r->var, s, &e);
    if (v == NULL) {
        err_clear(&e);
        return false;
    }
    json_decref(v);
    return true;
}

/* The data test proper: `v` is the Variable's value, `o` the …Path operand's (or NULL). */
static bool test_value(const struct asl_rule *r, const json_t *v, const json_t *o)
{
    const struct op_def *op = r->op;
    switch (op->fam) {
    case FAM_STRING:
        if (!json_is_string(v))
            return false;
        if (o != NULL) {
            if (!json_is_string(o))
                return false;
            return cmp_holds(op->cmp, str_cmp(json_string_value(v), json_string_length(v),
                                              json_string_value(o), json_string_length(o)));
        }
        if (op->cmp == CMP_EQ)
            return json_string_length(v) == r->lit.str.len &&
                   memcmp(json_string_value(v), r->lit.str.s, r->lit.str.len) == 0;
        return cmp_holds(op->cmp, str_cmp(json_string_value(v), json_string_length(v),
                                          r->lit.str.s, r->lit.str.len));
    case FAM_MATCHES:
        return json_is_string(v) &&
               pattern_match(&r->lit.pat, json_string_value(v), json_string_length(v));
    case FAM_NUMERIC: {
        if (!json_is_number(v))
            return false;
        struct num a = num_of(v);
        if (o != NULL) {
            if (!json_is_number(o))
                return false;
            struct num b = num_of(o);
            return cmp_holds(op->cmp, num_cmp(&a, &b));
        }
        return cmp_holds(op->cmp, num_cmp(&a, &r->lit.num));
    }
    case FAM_BOOLEAN:
        if (!json_is_boolean(v))
            return false;
        if (o != NULL)
            return json_is_boolean(o) && json_is_true(v) == json_is_true(o);
        return json_is_true(v) == r->lit.b;
    case FAM_TIMESTAMP: {
        struct asl_time a;
        if (!time_of(v, &a))
            return false;
        if (o != NULL) {
            struct asl_time b;
            if (!time_of(o, &b))
                return false;
            return cmp_holds(op->cmp, asl_time_cmp(&a, &b));
        }
        return cmp_holds(op->cmp, asl_time_cmp(&a, &r->lit.ts));
    }
    case FAM_IS_NULL:
        return json_is_null(v) == r->lit.b;
    case FAM_IS_NUMERIC:
        return json_is_number(v) == r->lit.b;
    case FAM_IS_STRING:
        return json_is_string(v) == r->lit.b;
    case FAM_IS_BOOLEAN:
        return json_is_boolean(v) == r->lit.b;
    case FAM_IS_TIMESTAMP: {
        struct asl_time t;
        return time_of(v, &t) == r->lit.b;
    }
    case FAM_IS_PRESENT:
        break; /* handled before the Variable is evaluated */
    }
    return false;
}

static int test_eval(const struct asl_rule *r, const struct asl_scope *s, bool *result,
                     struct err *err)
{
    if (r->op->fam == FAM_IS_PRESENT) {
        *result = present(r, s) == r->lit.b;
        return 0;
    }
    json_t *v = asl_path_eval(r->var, s, err);
    if (v == NULL)
        return -1;
    json_t *o = NULL;
    if (r->rhs != NULL) {
        o = asl_path_eval(r->rhs, s, err);
        if (o == NULL) {
            json_decref(v);
            return -1;
        }
    }
    *result = test_value(r, v, o);
    json_decref(o);
    json_decref(v);
    return 0;
}

static int rule_eval(const struct asl_rule *r, const struct asl_scope *s, bool *result,
                     struct err *err)
{
    bool v = false;
    switch (r->kind) {
    case RULE_AND:
    case RULE_OR: {
        /* ASL 7.2: short-circuit in order */
        bool stop_on = r->kind == RULE_OR;
        for (size_t i = 0; i < r->nkids; i++) {
            if (rule_eval(r->kids[i], s, &v, err) < 0)
                return -1;
            if (v == stop_on)
                break;
        }
        *result = v;
        return 0;
    }
    case RULE_NOT:
        if (rule_eval(r->kids[0], s, &v, err) < 0)
            return -1;
        *result = !v;
        return 0;
    case RULE_TEST:
        return test_eval(r, s, result, err);
    }
    return -1;
}

int asl_rule_eval(const struct asl_rule *r, const struct asl_scope *s, bool *result,
                  struct err *err)
{
    return rule_eval(r, s, result, err);
}

/* ---------------------------------------------------------------------------------------
 * Compilation.
 */

void asl_rule_free(struct asl_rule *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->nkids; i++)
        asl_rule_free(r->kids[i]);
    free(r->kids);
    asl_path_free(r->var);
    asl_path_free(r->rhs);
    if (r->kind == RULE_TEST && r->op->fam == FAM_STRING && !r->op->path)
        free(r->lit.str.s);
    if (r->kind == RULE_TEST && r->op->fam == FAM_MATCHES) {
        free(r->lit.pat.lit);
        free(r->lit.pat.seg);
    }
    free(r);
}

static const struct op_def *op_find(const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(ops); i++) {
        if (strcmp(ops[i].name, name) == 0)
            return &ops[i];
    }
    return NULL;
}

/* Compiles a Reference Path field (Variable, …Path). Returns NULL with err set. */
static struct asl_path *ref_compile(const char *field, json_t *v, struct err *err)
{
    if (!json_is_string(v)) {
        err_set(err, NULL, "The value for the field '%s' must be a valid JSONPath", field);
        return NULL;
    }
    struct err e = ERR_INIT;
    struct asl_path *p = asl_path_compile(json_string_value(v), ASL_PATH_REFERENCE, &e);
    if (p == NULL) {
        err_set(err, NULL, "The value for the field '%s' must be a valid JSONPath (%s)", field,
                e.cause != NULL ? e.cause : "invalid path");
        err_clear(&e);
    }
    return p;
}

/* StringMatches: splits the pattern at unescaped `*`, resolving `\*` and `\\`. A backslash
 * escapes any following character; a trailing one is an error. */
static int pattern_compile(struct pattern *pt, const char *text, size_t len, struct err *err)
{
    pt->lit = xmalloc(len + 1);
    pt->seg = xcalloc(len + 1, sizeof(size_t));
    pt->nseg = 1;
    size_t out = 0;
    size_t seg_start = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (c == '*') {
            pt->seg[pt->nseg - 1] = out - seg_start;
            pt->nseg++;
            seg_start = out;
            continue;
        }
        if (c == '\\') {
            if (i + 1 == len)
                return err_set(err, NULL, "The value for the field 'StringMatches' ends with "
                                          "a dangling escape character '\\'");
            c = text[++i];
        }
        pt->lit[out++] = c;
    }
    pt->seg[pt->nseg - 1] = out - seg_start;
    return 0;
}

/* Compiles the operand of data test `op` into r. */
static int operand_compile(struct asl_rule *r, json_t *v, struct err *err)
{
    const struct op_def *op = r->op;
    if (op->path) {
        r->rhs = ref_compile(op->name, v, err);
        return r->rhs == NULL ? -1 : 0;
    }
    switch (op->fam) {
    case FAM_STRING:
        if (!json_is_string(v))
            break;
        r->lit.str.len = json_string_length(v);
        r->lit.str.s = xmalloc(r->lit.str.len + 1);
        memcpy(r->lit.str.s, json_string_value(v), r->lit.str.len + 1);
        return 0;
    case FAM_MATCHES:
        if (!json_is_string(v))
            break;
        return pattern_compile(&r->lit.pat, json_string_value(v), json_string_length(v), err);
    case FAM_NUMERIC:
        if (!json_is_number(v))
            return err_set(err, NULL, "The value for the field '%s' must be a number",
                           op->name);
        r->lit.num = num_of(v);
        return 0;
    case FAM_TIMESTAMP:
        if (!json_is_string(v))
            break;
        if (!time_of(v, &r->lit.ts))
            return err_set(err, NULL, "String does not match RFC3339 timestamp");
        return 0;
    case FAM_BOOLEAN:
    case FAM_IS_NULL:
    case FAM_IS_PRESENT:
    case FAM_IS_NUMERIC:
    case FAM_IS_STRING:
    case FAM_IS_BOOLEAN:
    case FAM_IS_TIMESTAMP:
        if (!json_is_boolean(v))
            return err_set(err, NULL, "The value for the field '%s' must be a boolean",
                           op->name);
        r->lit.b = json_is_true(v);
        return 0;
    }
    return err_set(err, NULL, "The value for the field '%s' must be a string", op->name);
}

static struct asl_rule *rule_compile(json_t *rule, bool nested, struct err *err);

/* And / Or: a non-empty array of nested rules. */
static int list_compile(struct asl_rule *r, const char *field, json_t *v, struct err *err)
{
    if (!json_is_array(v))
        return err_set(err, NULL, "The value for the field '%s' must be an array", field);
    if (json_array_size(v) == 0)
        return err_set(err, NULL, "The value for the field '%s' cannot be empty", field);
    r->kids = xcalloc(json_array_size(v), sizeof(*r->kids));
    size_t i;
    json_t *kid;
    json_array_foreach(v, i, kid) {
        r->kids[i] = rule_compile(kid, true, err);
        if (r->kids[i] == NULL)
            return -1;
        r->nkids = i + 1;
    }
    return 0;
}

/* Compiles one rule. Top-level rules may carry Next, Comment and Assign (read by the
 * machine compiler); nested ones only Comment. */
static struct asl_rule *rule_compile(json_t *rule, bool nested, struct err *err)
{
    if (!json_is_object(rule)) {
        err_set(err, NULL, "Each Choice Rule must be an object");
        return NULL;
    }
    const char *opname = NULL; /* the one operator field */
    json_t *operand = NULL;    /* borrowed: its value */
    json_t *variable = NULL;   /* borrowed */
    const char *key;
    json_t *v;
    json_object_foreach(rule, key, v) {
        if (strcmp(key, "Variable") == 0) {
            variable = v;
        } else if (strcmp(key, "Comment") == 0) {
            continue;
        } else if (strcmp(key, "Next") == 0 || strcmp(key, "Assign") == 0) {
            if (nested) {
                err_set(err, NULL, "Nested Choice Rules cannot have '%s'", key);
                return NULL;
            }
        } else if (strcmp(key, "And") == 0 || strcmp(key, "Or") == 0 ||
                   strcmp(key, "Not") == 0 || op_find(key) != NULL) {
            if (opname != NULL) {
                err_set(err, NULL, "Each Choice Rule can only have one comparison operator.");
                return NULL;
            }
            opname = key;
            operand = v;
        } else {
            err_set(err, NULL, "Field '%s' is not supported in a Choice Rule", key);
            return NULL;
        }
    }
    if (opname == NULL) {
        err_set(err, NULL, "Each Choice Rule must have a comparison operator (or And, Or, Not)");
        return NULL;
    }

    struct asl_rule *r = xcalloc(1, sizeof(*r));
    const struct op_def *op = op_find(opname);
    if (op == NULL) {
        r->kind = opname[0] == 'A' ? RULE_AND : opname[0] == 'O' ? RULE_OR : RULE_NOT;
        if (variable != NULL) {
            err_set(err, NULL, "Field 'Variable' is not supported with '%s'", opname);
            goto fail;
        }
        if (r->kind != RULE_NOT) {
            if (list_compile(r, opname, operand, err) < 0)
                goto fail;
            return r;
        }
        if (!json_is_object(operand)) {
            err_set(err, NULL, "The value for the field 'Not' must be an object");
            goto fail;
        }
        r->kids = xcalloc(1, sizeof(*r->kids));
        r->kids[0] = rule_compile(operand, true, err);
        if (r->kids[0] == NULL)
            goto fail;
        r->nkids = 1;
        return r;
    }

    r->kind = RULE_TEST;
    r->op = op;
    if (variable == NULL) {
        err_set(err, NULL, "The field 'Variable' is required but was missing");
        goto fail;
    }
    r->var = ref_compile("Variable", variable, err);
    if (r->var == NULL)
        goto fail;
    if (operand_compile(r, operand, err) < 0)
        goto fail;
    return r;

fail:
    asl_rule_free(r);
    return NULL;
}

struct asl_rule *asl_rule_compile(json_t *rule, struct err *err)
{
    return rule_compile(rule, false, err);
}
