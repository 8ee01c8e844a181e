/* asl/path.c - JSONPath as Step Functions evaluates it (Jayway JsonPath semantics, asl.md
 * 4.2-4.4): the one path lexer, compilation into a step array, evaluation, ResultPath
 * assignment, and the normalised form Jayway prints in its messages.
 *
 * A path compiles once into `struct asl_path`: a root and an array of steps. Definite paths
 * (names and single indexes only) are walked by a loop that allocates nothing unless it
 * fails; indefinite ones (wildcards, unions, slices, deep scans, filters) go through a
 * recursive walker that gathers matches into a new array.
 *
 * Error texts follow Jayway (the library AWS runs), prefixed "Invalid path '<text>' : ":
 *   leaf property missing, or index out of range   No results for path: $['a'][5]
 *   intermediate property missing                  Missing property in path $['a']
 *   property step on a non-object                  Expected to find an object with property
 *       ['b'] in path $['a'] but found 'java.lang.String'. This is not a json object
 *       according to the JsonProvider: 'com.jayway.jsonpath.spi.json.JsonSmartJsonProvider'.
 *   index step on null                             The path $['a'] is null
 *   index/slice step on a non-array                Filter: [0]['b'] can only be applied to
 *                                                  arrays. Current context is: {"b":1}
 *   filter on a primitive                          Filter: [?] can not be applied to
 *                                                  primitives. Current context is: 5
 *   ['a','b'] before another step                  Multi properties can only be used as
 *                                                  path leafs: $['a', 'b']
 * The Java class names are those of Jayway's default provider (json-smart); which provider
 * AWS configures is not recorded. As in Jayway, the last four (and "Missing property") are
 * raised only while every step before the failing one is definite; below a wildcard, scan or
 * filter, a mismatch just drops that branch. */
#include "asl/internal.h"

#include <assert.h>
#include <ctype.h>
#include <limits.h>
#include <regex.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <threads.h>

#include "util/buf.h"
#include "util/json.h"
#include "util/xalloc.h"

/* ---------------------------------------------------------------------------------------
 * Compiled form
 */
enum step_kind {
    STEP_NAME,     /* .name, ['name'] */
    STEP_NAMES,    /* ['a','b']: a leaf merging the named members into one object */
    STEP_INDEX,    /* [0], [-1] */
    STEP_INDEXES,  /* [0,1] */
    STEP_SLICE,    /* [1:3], [:2], [-2:] */
    STEP_WILDCARD, /* .*, [*] */
    STEP_SCAN,     /* ..: applies the next step at every depth */
    STEP_FILTER,   /* [?(...)] */
};

struct fexpr;

/* 32 bytes: a state's paths are read once per visit, mostly from cold memory, so the fewer
 * cache lines they span the better. Only the members of the step's kind are valid. */
struct step {
    enum step_kind kind;
    bool has_from;       /* STEP_SLICE: a start was written */
    bool has_to;         /* STEP_SLICE: an end was written */
    size_t n;            /* STEP_NAMES, STEP_INDEXES: entries */
    union {
        struct {
            char *name;          /* STEP_NAME: owned, or in the path's block when packed */
            size_t name_len;     /* STEP_NAME: bytes in name */
        };
        long long index;         /* STEP_INDEX */
        char **names;            /* STEP_NAMES: owned array of owned strings */
        long long *indexes;      /* STEP_INDEXES: owned */
        struct {
            long long from;      /* STEP_SLICE: start, when has_from */
            long long to;        /* STEP_SLICE: end (exclusive), when has_to */
        };
        struct fexpr *filter;    /* STEP_FILTER: owned */
    };
};

struct asl_path {
    /* first what evaluation reads, in one cache line */
    enum asl_root root;   /* what the path starts from */
    bool relative;        /* an `@` path inside a filter */
    bool definite;        /* selects at most one node */
    bool packed;          /* steps and their names are in this path's own block */
    struct step *steps;   /* owned (in the block when packed) */
    size_t nsteps;        /* steps used */
    size_t first_indef;   /* index of the first indefinite step; nsteps when none */
    size_t assign_growth; /* asl_path_assign_growth() */
    char *text;           /* owned: the source text */
    char *var;            /* ASL_ROOT_VAR: owned variable name, without '$' */
    size_t cap;           /* steps allocated */
};

/* Filter expressions: [?(@.price > 10 && !@.sold)] */
enum fx_kind { FX_OR, FX_AND, FX_NOT, FX_EXISTS, FX_CMP };

enum fx_op {
    OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_REGEX, OP_IN, OP_NIN, OP_CONTAINS,
    OP_SUBSETOF, OP_ANYOF, OP_NONEOF, OP_SIZE, OP_EMPTY,
};

enum fv_kind { FV_PATH, FV_LITERAL, FV_REGEX };

struct fval {
    enum fv_kind kind;
    struct asl_path *path; /* FV_PATH: owned; `@` (relative) or `$` (the root document) */
    json_t *lit;           /* FV_LITERAL: owned reference */
    regex_t *re;           /* FV_REGEX: owned, compiled */
};

struct fexpr {
    enum fx_kind kind;
    struct fexpr *a;  /* FX_OR, FX_AND, FX_NOT: owned operand */
    struct fexpr *b;  /* FX_OR, FX_AND: owned operand */
    enum fx_op op;    /* FX_CMP */
    struct fval lhs;  /* FX_CMP; FX_EXISTS: the path */
    struct fval rhs;  /* FX_CMP */
};

static void fexpr_free(struct fexpr *x);

static bool step_is_definite(const struct asl_path *p, size_t i)
{
    switch (p->steps[i].kind) {
    case STEP_NAME:
    case STEP_INDEX:
        return true;
    case STEP_NAMES:
        return i + 1 == p->nsteps; /* Jayway: a merge is definite only as the leaf */
    default:
        return false;
    }
}

static struct step *path_push(struct asl_path *p, enum step_kind kind)
{
    if (p->nsteps == p->cap) {
        p->cap = p->cap != 0 ? p->cap * 2 : 4;
        p->steps = xrealloc(p->steps, p->cap * sizeof(*p->steps));
    }
    struct step *st = &p->steps[p->nsteps++];
    memset(st, 0, sizeof(*st));
    st->kind = kind;
    return st;
}

void asl_path_free(struct asl_path *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->nsteps; i++) {
        struct step *st = &p->steps[i];
        switch (st->kind) {
        case STEP_NAME:
            if (!p->packed)
                free(st->name);
            break;
        case STEP_NAMES:
            for (size_t j = 0; st->names != NULL && j < st->n; j++)
                free(st->names[j]);
            free(st->names);
            break;
        case STEP_INDEXES:
            free(st->indexes);
            break;
        case STEP_FILTER:
            fexpr_free(st->filter);
            break;
        default:
            break;
        }
    }
    if (!p->packed)
        free(p->steps);
    free(p->var);
    free(p->text);
    free(p);
}

/* Moves a compiled path, its steps and their names into one block, which evaluation then
 * reads in order (a state's paths are read once per visit, mostly from cold memory).
 * Returns the packed path; `p` is freed. */
static struct asl_path *path_pack(struct asl_path *p)
{
    size_t names = 0;
    for (size_t i = 0; i < p->nsteps; i++) {
        if (p->steps[i].kind == STEP_NAME)
            names += p->steps[i].name_len + 1;
    }
    size_t head = (sizeof(*p) + _Alignof(struct step) - 1) / _Alignof(struct step) *
                  _Alignof(struct step);
    char *block = xmalloc(head + p->nsteps * sizeof(struct step) + names);
    struct asl_path *q = (struct asl_path *)(void *)block;
    *q = *p;
    q->packed = true;
    q->steps = (struct step *)(void *)(block + head);
    q->cap = p->nsteps;
    char *np = block + head + p->nsteps * sizeof(struct step);
    for (size_t i = 0; i < p->nsteps; i++) {
        q->steps[i] = p->steps[i];
        if (p->steps[i].kind == STEP_NAME) {
            memcpy(np, p->steps[i].name, p->steps[i].name_len + 1);
            q->steps[i].name = np;
            np += p->steps[i].name_len + 1;
            free(p->steps[i].name);
        }
    }
    free(p->steps);
    free(p);
    return q;
}

static void fval_release(struct fval *v)
{
    asl_path_free(v->path);
    if (v->lit != NULL)
        json_decref(v->lit);
    if (v->re != NULL) {
        regfree(v->re);
        free(v->re);
    }
}

static void fexpr_free(struct fexpr *x)
{
    if (x == NULL)
        return;
    fexpr_free(x->a);
    fexpr_free(x->b);
    fval_release(&x->lhs);
    fval_release(&x->rhs);
    free(x);
}

/* ---------------------------------------------------------------------------------------
 * Normalised rendering: $['a']['b'][0]
 */
static void render_step(struct buf *b, const struct step *st, const char *sep)
{
    switch (st->kind) {
    case STEP_NAME:
        buf_puts(b, "['");
        buf_add(b, st->name, st->name_len);
        buf_puts(b, "']");
        break;
    case STEP_NAMES:
        buf_putc(b, '[');
        for (size_t j = 0; j < st->n; j++) {
            if (j > 0)
                buf_puts(b, sep);
            buf_printf(b, "'%s'", st->names[j]);
        }
        buf_putc(b, ']');
        break;
    case STEP_INDEX:
        buf_printf(b, "[%lld]", st->index);
        break;
    case STEP_INDEXES:
        buf_putc(b, '[');
        for (size_t j = 0; j < st->n; j++)
            buf_printf(b, "%s%lld", j > 0 ? "," : "", st->indexes[j]);
        buf_putc(b, ']');
        break;
    case STEP_SLICE:
        buf_putc(b, '[');
        if (st->has_from)
            buf_printf(b, "%lld", st->from);
        buf_putc(b, ':');
        if (st->has_to)
            buf_printf(b, "%lld", st->to);
        buf_putc(b, ']');
        break;
    case STEP_WILDCARD:
        buf_puts(b, "[*]");
        break;
    case STEP_SCAN:
        buf_puts(b, "..");
        break;
    case STEP_FILTER:
        buf_puts(b, "[?]");
        break;
    }
}

static void render_root(struct buf *b, const struct asl_path *p)
{
    if (p->relative)
        buf_putc(b, '@');
    else if (p->root == ASL_ROOT_VAR)
        buf_printf(b, "$%s", p->var);
    else
        buf_putc(b, '$'); /* `$$` paths are Jayway paths on the context: "$['Execution']" */
}

/* Steps [from, to) of p, without the root. Returns a new string. */
static char *render_steps(const struct asl_path *p, size_t from, size_t to)
{
    struct buf b = BUF_INIT;
    for (size_t i = from; i < to; i++)
        render_step(&b, &p->steps[i], ",");
    return buf_detach(&b);
}

/* The root and steps [0, to). Returns a new string. */
static char *render_prefix(const struct asl_path *p, size_t to)
{
    struct buf b = BUF_INIT;
    render_root(&b, p);
    for (size_t i = 0; i < to; i++)
        render_step(&b, &p->steps[i], ",");
    return buf_detach(&b);
}

char *asl_path_normalized(const struct asl_path *p)
{
    return render_prefix(p, p->nsteps);
}

/* ---------------------------------------------------------------------------------------
 * The lexer and parser
 */
enum pmode {
    MODE_TOP,    /* a whole string: everything must be consumed */
    MODE_PREFIX, /* an intrinsic argument: stops before whitespace, ',' or ')' */
    MODE_FILTER, /* a path inside a filter: also stops before operators */
};

struct parser {
    const char *text; /* the whole text being compiled (for messages) */
    size_t len;       /* bytes in text */
    size_t pos;       /* next byte to read */
    struct err *err;  /* receives the first failure */
};

static int parse_fail(struct parser *P, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int parse_fail(struct parser *P, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    err_set(P->err, NULL, "cannot parse Path '%s': %s", P->text, msg);
    free(msg);
    return -1;
}

static int peek(const struct parser *P)
{
    return P->pos < P->len ? (unsigned char)P->text[P->pos] : -1;
}

static int peek_at(const struct parser *P, size_t off)
{
    return P->pos + off < P->len ? (unsigned char)P->text[P->pos + off] : -1;
}

static bool is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static void skip_spaces(struct parser *P)
{
    while (is_space(peek(P)))
        P->pos++;
}

static bool is_word(int c)
{
    return c >= 0 && (isalnum(c) || c == '_');
}

/* Whether a dot-notation name stops before c in this mode. */
static bool name_stops(int c, enum pmode mode)
{
    if (c < 0 || c == '.' || c == '[' || c == '(' || is_space(c))
        return true;
    if (mode == MODE_PREFIX)
        return c == ',' || c == ')';
    if (mode == MODE_FILTER)
        return strchr(")<>=~!&|,]", c) != NULL;
    return false;
}

static void utf8_put(struct buf *b, uint32_t cp)
{
    char tmp[4];
    size_t n;
    if (cp < 0x80) {
        tmp[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        tmp[0] = (char)(0xc0 | (cp >> 6));
        tmp[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        tmp[0] = (char)(0xe0 | (cp >> 12));
        tmp[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        tmp[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        tmp[0] = (char)(0xf0 | (cp >> 18));
        tmp[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        tmp[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        tmp[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    buf_add(b, tmp, n);
}

static int hex4(const struct parser *P, size_t at, uint32_t *out)
{
    uint32_t v = 0;
    for (size_t k = 0; k < 4; k++) {
        if (at + k >= P->len || !isxdigit((unsigned char)P->text[at + k]))
            return -1;
        char c = P->text[at + k];
        v = v * 16 + (uint32_t)(isdigit((unsigned char)c) ? c - '0' : (tolower(c) - 'a' + 10));
    }
    *out = v;
    return 0;
}

/* Reads a quoted string ('..' or "..") with Java escapes into b. At the opening quote. */
static int parse_quoted(struct parser *P, struct buf *b)
{
    int q = peek(P);
    size_t start = P->pos;
    P->pos++;
    buf_reset(b);
    for (;;) {
        int c = peek(P);
        if (c < 0)
            return parse_fail(P, "unterminated string at position %zu", start);
        P->pos++;
        if (c == q)
            break;
        if (c != '\\') {
            buf_putc(b, (char)c);
            continue;
        }
        int e = peek(P);
        if (e < 0)
            return parse_fail(P, "unterminated string at position %zu", start);
        P->pos++;
        uint32_t cp;
        switch (e) {
        case 'b':
            buf_putc(b, '\b');
            break;
        case 'f':
            buf_putc(b, '\f');
            break;
        case 'n':
            buf_putc(b, '\n');
            break;
        case 'r':
            buf_putc(b, '\r');
            break;
        case 't':
            buf_putc(b, '\t');
            break;
        case 'u':
            if (hex4(P, P->pos, &cp) < 0)
                return parse_fail(P, "invalid \\u escape at position %zu", P->pos - 2);
            P->pos += 4;
            if (cp >= 0xd800 && cp < 0xdc00 && peek(P) == '\\' && peek_at(P, 1) == 'u') {
                uint32_t lo;
                if (hex4(P, P->pos + 2, &lo) == 0 && lo >= 0xdc00 && lo < 0xe000) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    P->pos += 6;
                }
            }
            utf8_put(b, cp);
            break;
        default: /* \' \" \\ \/ and anything else: the character itself */
            buf_putc(b, (char)e);
            break;
        }
    }
    buf_cstr(b);
    return 0;
}

/* Reads an optionally negative integer. */
static int parse_int(struct parser *P, long long *out)
{
    size_t start = P->pos;
    bool neg = false;
    if (peek(P) == '-') {
        neg = true;
        P->pos++;
    }
    if (!isdigit(peek(P)))
        return parse_fail(P, "expected an integer at position %zu", start);
    long long v = 0;
    while (isdigit(peek(P))) {
        if (v > 100000000000000000LL) /* 1e17: no JSON array is that long */
            return parse_fail(P, "integer too large at position %zu", start);
        v = v * 10 + (peek(P) - '0');
        P->pos++;
    }
    *out = neg ? -v : v;
    return 0;
}

static struct asl_path *parse_path(struct parser *P, enum pmode mode);
static struct fexpr *parse_or(struct parser *P);

/* At '[': one bracket step. */
static int parse_bracket(struct parser *P, struct asl_path *p)
{
    size_t open = P->pos;
    P->pos++;
    skip_spaces(P);
    int c = peek(P);
    if (c == '?') {
        P->pos++;
        skip_spaces(P);
        struct fexpr *x = parse_or(P);
        if (x == NULL)
            return -1;
        path_push(p, STEP_FILTER)->filter = x;
    } else if (c == '*') {
        P->pos++;
        path_push(p, STEP_WILDCARD);
    } else if (c == '\'' || c == '"') {
        struct buf b = BUF_INIT;
        char **names = NULL;
        size_t n = 0;
        for (;;) {
            if (peek(P) != '\'' && peek(P) != '"') {
                parse_fail(P, "expected a quoted name at position %zu", P->pos);
                goto names_fail;
            }
            if (parse_quoted(P, &b) < 0)
                goto names_fail;
            names = xrealloc(names, (n + 1) * sizeof(*names));
            names[n++] = xstrndup(buf_cstr(&b), b.len);
            skip_spaces(P);
            if (peek(P) != ',')
                break;
            P->pos++;
            skip_spaces(P);
        }
        if (n == 1) {
            struct step *st = path_push(p, STEP_NAME);
            st->name_len = b.len;
            st->name = names[0];
            free(names);
        } else {
            struct step *st = path_push(p, STEP_NAMES);
            st->names = names;
            st->n = n;
        }
        buf_release(&b);
        goto close;
    names_fail:
        for (size_t j = 0; j < n; j++)
            free(names[j]);
        free(names);
        buf_release(&b);
        return -1;
    } else if (c == '-' || c == ':' || isdigit(c)) {
        long long first = 0;
        bool has_first = c != ':';
        if (has_first && parse_int(P, &first) < 0)
            return -1;
        skip_spaces(P);
        if (peek(P) == ':') {
            struct step *st = path_push(p, STEP_SLICE);
            st->has_from = has_first;
            st->from = first;
            P->pos++;
            skip_spaces(P);
            if (peek(P) == '-' || isdigit(peek(P))) {
                if (parse_int(P, &st->to) < 0)
                    return -1;
                st->has_to = true;
                skip_spaces(P);
            }
            if (peek(P) == ':')
                return parse_fail(P, "slice steps ('[a:b:c]') are not supported");
            if (!st->has_from && !st->has_to)
                return parse_fail(P, "empty slice '[:]' at position %zu", open);
        } else if (peek(P) == ',') {
            struct step *st = path_push(p, STEP_INDEXES);
            st->indexes = xmalloc(sizeof(long long));
            st->indexes[0] = first;
            st->n = 1;
            while (peek(P) == ',') {
                P->pos++;
                skip_spaces(P);
                long long v;
                if (parse_int(P, &v) < 0)
                    return -1;
                st->indexes = xrealloc(st->indexes, (st->n + 1) * sizeof(long long));
                st->indexes[st->n++] = v;
                skip_spaces(P);
            }
        } else {
            path_push(p, STEP_INDEX)->index = first;
        }
    } else {
        if (c < 0)
            return parse_fail(P, "unterminated '[' at position %zu", open);
        return parse_fail(P, "unexpected '%c' after '[' at position %zu", c, P->pos);
    }
close:
    skip_spaces(P);
    if (peek(P) != ']') {
        if (peek(P) < 0)
            return parse_fail(P, "unterminated '[' at position %zu", open);
        return parse_fail(P, "expected ']' at position %zu", P->pos);
    }
    P->pos++;
    return 0;
}

/* After '.' or '..': a name, or '*'. */
static int parse_dot_name(struct parser *P, struct asl_path *p, enum pmode mode)
{
    if (peek(P) == '*') {
        P->pos++;
        path_push(p, STEP_WILDCARD);
        return 0;
    }
    size_t start = P->pos;
    while (!name_stops(peek(P), mode))
        P->pos++;
    if (P->pos == start) {
        if (peek(P) < 0 || (mode != MODE_TOP && name_stops(peek(P), mode)))
            return parse_fail(P, "a path must not end with '.' or '..'");
        if (is_space(peek(P)))
            return parse_fail(P, "use bracket notation ['my prop'] if a property contains "
                                 "blank characters (position %zu)", P->pos);
        return parse_fail(P, "unexpected '%c' at position %zu", peek(P), P->pos);
    }
    if (peek(P) == '(')
        return parse_fail(P, "functions such as '%.*s()' are not supported", (int)(P->pos - start),
                          P->text + start);
    struct step *st = path_push(p, STEP_NAME);
    st->name = xstrndup(P->text + start, P->pos - start);
    st->name_len = P->pos - start;
    return 0;
}

static void path_finish(struct asl_path *p)
{
    p->first_indef = p->nsteps;
    for (size_t i = 0; i < p->nsteps; i++) {
        if (!step_is_definite(p, i)) {
            p->first_indef = i;
            break;
        }
    }
    p->definite = p->first_indef == p->nsteps;
    /* ResultPath: a name step may add `,"name":` to an object, or create `{"name":}`; an
     * index step only replaces an element */
    p->assign_growth = 0;
    for (size_t i = 0; i < p->nsteps; i++) {
        if (p->steps[i].kind == STEP_NAME)
            p->assign_growth = json_size_add(
                p->assign_growth,
                json_size_add(json_string_compact_size(p->steps[i].name, p->steps[i].name_len),
                              3));
    }
}

/* At '$' (or '@' in a filter): a whole path. */
static struct asl_path *parse_path(struct parser *P, enum pmode mode)
{
    size_t start = P->pos;
    struct asl_path *p = xcalloc(1, sizeof(*p));
    p->root = ASL_ROOT_INPUT;
    if (peek(P) == '@') {
        assert(mode == MODE_FILTER);
        p->relative = true;
        P->pos++;
    } else if (peek(P) != '$') {
        parse_fail(P, "a path must start with '$'");
        goto fail;
    } else {
        P->pos++;
        if (mode != MODE_FILTER && peek(P) == '$') {
            p->root = ASL_ROOT_CONTEXT;
            P->pos++;
        } else if (mode != MODE_FILTER && (peek(P) == '_' || (peek(P) >= 0 && isalpha(peek(P))))) {
            size_t vs = P->pos;
            while (is_word(peek(P)))
                P->pos++;
            p->root = ASL_ROOT_VAR;
            p->var = xstrndup(P->text + vs, P->pos - vs);
        }
    }
    for (;;) {
        int c = peek(P);
        if (c < 0)
            break;
        if (c == '.') {
            P->pos++;
            if (peek(P) == '.') {
                P->pos++;
                path_push(p, STEP_SCAN);
                if (peek(P) == '[') {
                    if (parse_bracket(P, p) < 0)
                        goto fail;
                    continue;
                }
            }
            if (parse_dot_name(P, p, mode) < 0)
                goto fail;
        } else if (c == '[') {
            if (parse_bracket(P, p) < 0)
                goto fail;
        } else if (mode != MODE_TOP) {
            break; /* the caller decides what may follow */
        } else if (is_space(c)) {
            size_t k = P->pos;
            while (k < P->len && is_space((unsigned char)P->text[k]))
                k++;
            if (k == P->len)
                parse_fail(P, "trailing whitespace is not allowed");
            else
                parse_fail(P, "unexpected whitespace at position %zu", P->pos);
            goto fail;
        } else {
            parse_fail(P, "unexpected '%c' at position %zu", c, P->pos);
            goto fail;
        }
    }
    path_finish(p);
    p->text = xstrndup(P->text + start, P->pos - start);
    return p;
fail:
    asl_path_free(p);
    return NULL;
}

/* ---------------------------------------------------------------------------------------
 * Filter expressions
 */

/* A literal: '..', "..", a number, true, false, null, or a JSON-like array or object whose
 * strings may use either quote. Returns a new reference or NULL with the error set. */
static json_t *parse_literal(struct parser *P)
{
    int c = peek(P);
    if (c == '\'' || c == '"') {
        struct buf b = BUF_INIT;
        if (parse_quoted(P, &b) < 0) {
            buf_release(&b);
            return NULL;
        }
        json_t *s = json_stringn_nocheck(buf_cstr(&b), b.len);
        buf_release(&b);
        return s;
    }
    if (c == '-' || (c >= 0 && isdigit(c))) {
        size_t start = P->pos;
        bool real = false;
        if (c == '-')
            P->pos++;
        if (!isdigit(peek(P))) {
            parse_fail(P, "invalid number at position %zu", start);
            return NULL;
        }
        while (isdigit(peek(P)))
            P->pos++;
        if (peek(P) == '.' && isdigit(peek_at(P, 1))) {
            real = true;
            P->pos++;
            while (isdigit(peek(P)))
                P->pos++;
        }
        if (peek(P) == 'e' || peek(P) == 'E') {
            size_t save = P->pos;
            P->pos++;
            if (peek(P) == '+' || peek(P) == '-')
                P->pos++;
            if (isdigit(peek(P))) {
                real = true;
                while (isdigit(peek(P)))
                    P->pos++;
            } else {
                P->pos = save;
            }
        }
        char tmp[64];
        size_t n = P->pos - start;
        if (n >= sizeof(tmp)) {
            parse_fail(P, "number too long at position %zu", start);
            return NULL;
        }
        memcpy(tmp, P->text + start, n);
        tmp[n] = '\0';
        if (!real) {
            char *end;
            long long v = strtoll(tmp, &end, 10);
            if (v != LLONG_MAX && v != LLONG_MIN)
                return json_integer(v);
        }
        return json_real(strtod(tmp, NULL));
    }
    static const struct {
        const char *word;
        size_t len;
    } words[] = {{"true", 4}, {"false", 5}, {"null", 4}};
    for (size_t k = 0; k < ARRAY_LEN(words); k++) {
        if (P->len - P->pos >= words[k].len &&
            memcmp(P->text + P->pos, words[k].word, words[k].len) == 0 &&
            !is_word(peek_at(P, words[k].len))) {
            P->pos += words[k].len;
            return k == 0 ? json_true() : k == 1 ? json_false() : json_null();
        }
    }
    if (c == '[' || c == '{') {
        int close = c == '[' ? ']' : '}';
        json_t *v = c == '[' ? json_array() : json_object();
        P->pos++;
        skip_spaces(P);
        if (peek(P) == close) {
            P->pos++;
            return v;
        }
        for (;;) {
            struct buf key = BUF_INIT;
            if (close == '}') {
                if ((peek(P) != '\'' && peek(P) != '"') || parse_quoted(P, &key) < 0) {
                    parse_fail(P, "expected a quoted key at position %zu", P->pos);
                    goto lit_fail;
                }
                skip_spaces(P);
                if (peek(P) != ':') {
                    parse_fail(P, "expected ':' at position %zu", P->pos);
                    goto lit_fail;
                }
                P->pos++;
                skip_spaces(P);
            }
            json_t *item = parse_literal(P);
            if (item == NULL)
                goto lit_fail;
            if (close == ']')
                json_array_append_new(v, item);
            else
                json_object_setn_new_nocheck(v, buf_cstr(&key), key.len, item);
            buf_release(&key);
            skip_spaces(P);
            if (peek(P) == close) {
                P->pos++;
                return v;
            }
            if (peek(P) != ',') {
                parse_fail(P, "expected ',' or '%c' at position %zu", close, P->pos);
                json_decref(v);
                return NULL;
            }
            P->pos++;
            skip_spaces(P);
            continue;
        lit_fail:
            buf_release(&key);
            json_decref(v);
            return NULL;
        }
    }
    if (c < 0)
        parse_fail(P, "unexpected end of filter");
    else
        parse_fail(P, "unexpected '%c' in filter at position %zu", c, P->pos);
    return NULL;
}

/* At '/': /pattern/flags, matched like Java's Matcher.matches() (the whole string). Java
 * syntax is translated where POSIX ERE differs in common use (\d, \D); flag 'i' ignores case,
 * the other Java flags are accepted and ignored. */
static int parse_regex(struct parser *P, struct fval *out)
{
    size_t start = P->pos;
    P->pos++;
    struct buf b = BUF_INIT;
    buf_puts(&b, "^(");
    bool in_class = false;
    for (;;) {
        int c = peek(P);
        if (c < 0) {
            buf_release(&b);
            return parse_fail(P, "unterminated regular expression at position %zu", start);
        }
        P->pos++;
        if (c == '/' && !in_class)
            break;
        if (c == '[' && !in_class) {
            in_class = true;
            buf_putc(&b, '[');
            if (peek(P) == '^') {
                buf_putc(&b, '^');
                P->pos++;
            }
            if (peek(P) == ']') {
                buf_putc(&b, ']');
                P->pos++;
            }
            continue;
        }
        if (c == ']' && in_class)
            in_class = false;
        if (c == '\\' && peek(P) >= 0) {
            int e = peek(P);
            P->pos++;
            if (e == '/')
                buf_putc(&b, '/');
            else if (e == 'd')
                buf_puts(&b, in_class ? "0-9" : "[0-9]");
            else if (e == 'D' && !in_class)
                buf_puts(&b, "[^0-9]");
            else {
                buf_putc(&b, '\\');
                buf_putc(&b, (char)e);
            }
            continue;
        }
        buf_putc(&b, (char)c);
    }
    buf_puts(&b, ")$");
    int cflags = REG_EXTENDED | REG_NOSUB;
    while (peek(P) >= 0 && isalpha(peek(P))) {
        int f = peek(P);
        if (f == 'i')
            cflags |= REG_ICASE;
        else if (strchr("msxuUd", f) == NULL) {
            buf_release(&b);
            return parse_fail(P, "unknown regular expression flag '%c'", f);
        }
        P->pos++;
    }
    out->kind = FV_REGEX;
    out->re = xmalloc(sizeof(regex_t));
    if (regcomp(out->re, buf_cstr(&b), cflags) != 0) {
        free(out->re);
        out->re = NULL;
        buf_release(&b);
        return parse_fail(P, "invalid regular expression at position %zu", start);
    }
    buf_release(&b);
    return 0;
}

static int parse_value(struct parser *P, struct fval *out)
{
    int c = peek(P);
    if (c == '@' || c == '$') {
        out->kind = FV_PATH;
        out->path = parse_path(P, MODE_FILTER);
        return out->path != NULL ? 0 : -1;
    }
    if (c == '/')
        return parse_regex(P, out);
    out->kind = FV_LITERAL;
    out->lit = parse_literal(P);
    return out->lit != NULL ? 0 : -1;
}

static bool parse_op(struct parser *P, enum fx_op *op)
{
    static const struct {
        const char *text;
        enum fx_op op;
        bool word;
    } ops[] = {
        {"==", OP_EQ, false},  {"!=", OP_NE, false},     {"<=", OP_LE, false},
        {">=", OP_GE, false},  {"=~", OP_REGEX, false},  {"<", OP_LT, false},
        {">", OP_GT, false},   {"nin", OP_NIN, true},    {"in", OP_IN, true},
        {"contains", OP_CONTAINS, true},                 {"subsetof", OP_SUBSETOF, true},
        {"anyof", OP_ANYOF, true},                       {"noneof", OP_NONEOF, true},
        {"size", OP_SIZE, true},                         {"empty", OP_EMPTY, true},
    };
    for (size_t k = 0; k < ARRAY_LEN(ops); k++) {
        size_t n = strlen(ops[k].text);
        if (P->len - P->pos < n || memcmp(P->text + P->pos, ops[k].text, n) != 0)
            continue;
        if (ops[k].word && is_word(peek_at(P, n)))
            continue;
        P->pos += n;
        *op = ops[k].op;
        return true;
    }
    return false;
}

static struct fexpr *fexpr_new(enum fx_kind kind)
{
    struct fexpr *x = xcalloc(1, sizeof(*x));
    x->kind = kind;
    return x;
}

static struct fexpr *parse_unary(struct parser *P)
{
    skip_spaces(P);
    if (peek(P) == '!' && peek_at(P, 1) != '=') {
        P->pos++;
        struct fexpr *a = parse_unary(P);
        if (a == NULL)
            return NULL;
        struct fexpr *x = fexpr_new(FX_NOT);
        x->a = a;
        return x;
    }
    if (peek(P) == '(') {
        size_t open = P->pos;
        P->pos++;
        struct fexpr *x = parse_or(P);
        if (x == NULL)
            return NULL;
        skip_spaces(P);
        if (peek(P) != ')') {
            fexpr_free(x);
            parse_fail(P, "unbalanced '(' at position %zu", open);
            return NULL;
        }
        P->pos++;
        return x;
    }
    struct fexpr *x = fexpr_new(FX_CMP);
    if (parse_value(P, &x->lhs) < 0)
        goto fail;
    skip_spaces(P);
    if (!parse_op(P, &x->op)) {
        if (x->lhs.kind != FV_PATH) {
            parse_fail(P, "expected a comparison operator at position %zu", P->pos);
            goto fail;
        }
        x->kind = FX_EXISTS;
        return x;
    }
    skip_spaces(P);
    if (parse_value(P, &x->rhs) < 0)
        goto fail;
    if (x->lhs.kind == FV_REGEX && x->rhs.kind == FV_REGEX) {
        parse_fail(P, "a filter cannot compare two regular expressions");
        goto fail;
    }
    if ((x->lhs.kind == FV_REGEX || x->rhs.kind == FV_REGEX) && x->op != OP_REGEX) {
        parse_fail(P, "a regular expression needs the '=~' operator");
        goto fail;
    }
    return x;
fail:
    fexpr_free(x);
    return NULL;
}

static struct fexpr *parse_and(struct parser *P)
{
    struct fexpr *x = parse_unary(P);
    while (x != NULL) {
        skip_spaces(P);
        if (peek(P) != '&' || peek_at(P, 1) != '&')
            break;
        P->pos += 2;
        struct fexpr *b = parse_unary(P);
        if (b == NULL) {
            fexpr_free(x);
            return NULL;
        }
        struct fexpr *and = fexpr_new(FX_AND);
        and->a = x;
        and->b = b;
        x = and;
    }
    return x;
}

static struct fexpr *parse_or(struct parser *P)
{
    struct fexpr *x = parse_and(P);
    while (x != NULL) {
        skip_spaces(P);
        if (peek(P) != '|' || peek_at(P, 1) != '|')
            break;
        P->pos += 2;
        struct fexpr *b = parse_and(P);
        if (b == NULL) {
            fexpr_free(x);
            return NULL;
        }
        struct fexpr *or = fexpr_new(FX_OR);
        or->a = x;
        or->b = b;
        x = or;
    }
    return x;
}

/* ---------------------------------------------------------------------------------------
 * Compilation entry points
 */
static struct asl_path *compile(const char *text, size_t *len, enum pmode mode, unsigned flags,
                                struct err *err)
{
    struct parser P = {text, strlen(text), 0, err};
    if (mode == MODE_PREFIX && peek(&P) != '$') {
        parse_fail(&P, "a path must start with '$'");
        return NULL;
    }
    if (P.len == 0) {
        parse_fail(&P, "a path must start with '$'");
        return NULL;
    }
    struct asl_path *p = parse_path(&P, mode);
    if (p == NULL)
        return NULL;
    if (len != NULL)
        *len = P.pos;
    if ((flags & ASL_PATH_NO_CONTEXT) && p->root == ASL_ROOT_CONTEXT) {
        err_set(err, NULL, "'%s' cannot refer to the context object ('$$')", p->text);
        asl_path_free(p);
        return NULL;
    }
    if (flags & ASL_PATH_REFERENCE) {
        for (size_t i = 0; i < p->nsteps; i++) {
            if (p->steps[i].kind != STEP_NAME && p->steps[i].kind != STEP_INDEX) {
                err_set(err, NULL, "'%s' is not a valid reference path", p->text);
                asl_path_free(p);
                return NULL;
            }
        }
    }
    return path_pack(p);
}

struct asl_path *asl_path_compile(const char *text, unsigned flags, struct err *err)
{
    return compile(text, NULL, MODE_TOP, flags, err);
}

struct asl_path *asl__path_compile_prefix(const char *text, size_t *len, unsigned flags,
                                          struct err *err)
{
    return compile(text, len, MODE_PREFIX, flags, err);
}

const char *asl_path_text(const struct asl_path *p)
{
    return p->text;
}

enum asl_root asl_path_root(const struct asl_path *p)
{
    return p->root;
}

bool asl_path_is_definite(const struct asl_path *p)
{
    return p->definite;
}

bool asl_path_is_root(const struct asl_path *p)
{
    return p->nsteps == 0 && p->root == ASL_ROOT_INPUT;
}

/* ---------------------------------------------------------------------------------------
 * The context object
 */
static json_t *empty_context;        /* `$$` when the scope has none: {}, never modified */
static once_flag empty_context_once = ONCE_FLAG_INIT;

static void on_empty_context_init(void)
{
    empty_context = json_object();
}

json_t *asl_scope_context(const struct asl_scope *s)
{
    json_t *ctx = s->context != NULL ? s->context(s->context_arg) : NULL;
    if (ctx != NULL)
        return ctx;
    call_once(&empty_context_once, on_empty_context_init);
    return empty_context;
}

/* ---------------------------------------------------------------------------------------
 * Evaluation
 */

/* Jayway's json-smart class names, used in its "Expected to find an object" message. */
static const char *java_class(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        return "java.lang.String";
    case JSON_INTEGER: {
        json_int_t i = json_integer_value(v);
        return i >= INT32_MIN && i <= INT32_MAX ? "java.lang.Integer" : "java.lang.Long";
    }
    case JSON_REAL:
        return "java.lang.Double";
    case JSON_TRUE:
    case JSON_FALSE:
        return "java.lang.Boolean";
    case JSON_ARRAY:
        return "net.minidev.json.JSONArray";
    case JSON_OBJECT:
        return "net.minidev.json.JSONObject";
    case JSON_NULL:
    default:
        return "null";
    }
}

/* Java's toString() of a json-smart value: strings raw, the rest as compact JSON. */
static char *context_text(const json_t *v)
{
    if (json_is_string(v))
        return xstrdup(json_string_value(v));
    return json_compact(v);
}

/* Sets err to "Invalid path '<text>' : <message>" (unless err is NULL: silent evaluation
 * inside filters). Returns -1. */
static int eval_fail(struct err *err, const struct asl_path *p, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int eval_fail(struct err *err, const struct asl_path *p, const char *fmt, ...)
{
    if (err == NULL || err->set)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    err_set(err, ASL_ERR_RUNTIME, "Invalid path '%s' : %s", p->text, msg);
    free(msg);
    return -1;
}

static int fail_not_object(struct err *err, const struct asl_path *p, size_t i, const json_t *v)
{
    if (err == NULL)
        return -1;
    char *at = render_prefix(p, i);
    struct buf frag = BUF_INIT;
    render_step(&frag, &p->steps[i], ",");
    eval_fail(err, p,
              "Expected to find an object with property %s in path %s but found '%s'. This is "
              "not a json object according to the JsonProvider: "
              "'com.jayway.jsonpath.spi.json.JsonSmartJsonProvider'.",
              buf_cstr(&frag), at, java_class(v));
    buf_release(&frag);
    free(at);
    return -1;
}

/* An index or slice step on something that is not an array. */
static int fail_not_array(struct err *err, const struct asl_path *p, size_t i, const json_t *v)
{
    if (err == NULL)
        return -1;
    char *at = render_prefix(p, i);
    if (json_is_null(v)) {
        eval_fail(err, p, "The path %s is null", at);
    } else {
        char *rest = render_steps(p, i, p->nsteps);
        char *ctx = context_text(v);
        eval_fail(err, p, "Filter: %s can only be applied to arrays. Current context is: %s",
                  rest, ctx);
        free(ctx);
        free(rest);
    }
    free(at);
    return -1;
}

static int fail_no_results(struct err *err, const struct asl_path *p)
{
    if (err == NULL)
        return -1;
    char *all = render_prefix(p, p->nsteps);
    eval_fail(err, p, "No results for path: %s", all);
    free(all);
    return -1;
}

static int fail_missing(struct err *err, const struct asl_path *p, size_t i)
{
    if (err == NULL)
        return -1;
    char *at = render_prefix(p, i + 1);
    eval_fail(err, p, "Missing property in path %s", at);
    free(at);
    return -1;
}

static json_t *merge_names(const struct step *st, json_t *obj)
{
    json_t *m = json_object();
    for (size_t j = 0; j < st->n; j++) {
        json_t *v = json_object_get(obj, st->names[j]);
        if (v != NULL)
            json_object_set_nocheck(m, st->names[j], v);
    }
    return m;
}

/* Walks a definite path from doc. Returns a new reference, or NULL with err set (err may be
 * NULL: silent). Allocates nothing on success unless the leaf is a ['a','b'] merge. */
static json_t *eval_definite(const struct asl_path *p, json_t *doc, struct err *err)
{
    json_t *cur = doc;
    for (size_t i = 0; i < p->nsteps; i++) {
        const struct step *st = &p->steps[i];
        if (st->kind == STEP_NAME) {
            if (!json_is_object(cur)) {
                fail_not_object(err, p, i, cur);
                return NULL;
            }
            json_t *next = json_object_getn(cur, st->name, st->name_len);
            if (next == NULL) {
                if (i + 1 == p->nsteps)
                    fail_no_results(err, p);
                else
                    fail_missing(err, p, i);
                return NULL;
            }
            cur = next;
        } else if (st->kind == STEP_INDEX) {
            if (!json_is_array(cur)) {
                fail_not_array(err, p, i, cur);
                return NULL;
            }
            long long n = (long long)json_array_size(cur);
            long long k = st->index < 0 ? n + st->index : st->index;
            if (k < 0 || k >= n) {
                fail_no_results(err, p);
                return NULL;
            }
            cur = json_array_get(cur, (size_t)k);
        } else {
            assert(st->kind == STEP_NAMES && i + 1 == p->nsteps);
            if (!json_is_object(cur)) {
                fail_not_object(err, p, i, cur);
                return NULL;
            }
            return merge_names(st, cur);
        }
    }
    return json_incref(cur);
}

struct ev {
    const struct asl_path *p; /* the path being walked */
    json_t *root;             /* what `$` means inside filters */
    json_t *out;              /* the matches gathered so far */
    struct err *err;          /* NULL: silent (inside a filter) */
};

static int ev_step(struct ev *e, size_t i, json_t *node);
static bool filter_accept(const struct fexpr *x, json_t *item, json_t *root);

/* Whether steps before i are all definite: Jayway's isUpstreamDefinite(). */
static bool upstream_definite(const struct ev *e, size_t i)
{
    /* Recorded on AWS (conformance base/base "wildcard_or_slice_with_no_input"): an
     * indefinite path never fails, a missing or mismatched node upstream of its first
     * wildcard, slice, scan or filter yields no match, e.g. $.items[*].x on {} -> []. */
    (void)e;
    (void)i;
    return false;
}

static int ev_index(struct ev *e, size_t i, json_t *arr, long long idx)
{
    long long n = (long long)json_array_size(arr);
    long long k = idx < 0 ? n + idx : idx;
    if (k < 0 || k >= n)
        return 0;
    return ev_step(e, i + 1, json_array_get(arr, (size_t)k));
}

/* Jayway's ArraySliceToken, including its unadjusted negative start in [a:b]. */
static int ev_slice(struct ev *e, size_t i, const struct step *st, json_t *arr)
{
    long long n = (long long)json_array_size(arr);
    long long from = 0;
    long long to = n;
    if (st->has_from && !st->has_to) {
        from = st->from < 0 ? st->from + n : st->from;
        if (from < 0)
            from = 0;
    } else if (!st->has_from) {
        to = st->to < 0 ? st->to + n : st->to;
        if (to > n)
            to = n;
    } else {
        from = st->from;
        to = st->to < n ? st->to : n;
    }
    for (long long k = from; k < to; k++) {
        if (ev_index(e, i, arr, k) < 0)
            return -1;
    }
    return 0;
}

/* Whether a deep scan applies step t to node (Jayway's ScanPathToken predicates). */
static bool scan_matches(const struct ev *e, const struct step *t, json_t *node)
{
    switch (t->kind) {
    case STEP_NAME:
        return json_is_object(node) && json_object_getn(node, t->name, t->name_len) != NULL;
    case STEP_NAMES:
        if (!json_is_object(node))
            return false;
        for (size_t j = 0; j < t->n; j++) {
            if (json_object_get(node, t->names[j]) == NULL)
                return false;
        }
        return true;
    case STEP_INDEX:
    case STEP_INDEXES:
    case STEP_SLICE:
        return json_is_array(node);
    case STEP_WILDCARD:
        return true;
    case STEP_FILTER:
        return filter_accept(t->filter, node, e->root);
    case STEP_SCAN:
    default:
        return false;
    }
}

/* Walks every container under node (node first, then its members in order), applying the
 * scan's target step t where it matches. */
static int ev_scan(struct ev *e, size_t t, json_t *node)
{
    if (!json_is_object(node) && !json_is_array(node))
        return 0;
    if (scan_matches(e, &e->p->steps[t], node) && ev_step(e, t, node) < 0)
        return -1;
    if (json_is_object(node)) {
        const char *key;
        json_t *v;
        json_object_foreach(node, key, v) {
            if (ev_scan(e, t, v) < 0)
                return -1;
        }
    } else {
        size_t k;
        json_t *v;
        json_array_foreach(node, k, v) {
            if (ev_scan(e, t, v) < 0)
                return -1;
        }
    }
    return 0;
}

static int ev_step(struct ev *e, size_t i, json_t *node)
{
    const struct asl_path *p = e->p;
    if (i == p->nsteps) {
        json_array_append(e->out, node);
        return 0;
    }
    const struct step *st = &p->steps[i];
    switch (st->kind) {
    case STEP_NAME: {
        if (!json_is_object(node))
            return upstream_definite(e, i) ? fail_not_object(e->err, p, i, node) : 0;
        json_t *v = json_object_getn(node, st->name, st->name_len);
        if (v == NULL) {
            if (i + 1 < p->nsteps && upstream_definite(e, i))
                return fail_missing(e->err, p, i);
            return 0;
        }
        return ev_step(e, i + 1, v);
    }
    case STEP_NAMES: {
        if (!json_is_object(node))
            return upstream_definite(e, i) ? fail_not_object(e->err, p, i, node) : 0;
        if (i + 1 < p->nsteps) {
            if (e->err != NULL) {
                char *at = render_prefix(p, i);
                struct buf frag = BUF_INIT;
                render_step(&frag, st, ", ");
                eval_fail(e->err, p, "Multi properties can only be used as path leafs: %s%s", at,
                          buf_cstr(&frag));
                buf_release(&frag);
                free(at);
            }
            return -1;
        }
        json_t *m = merge_names(st, node);
        json_array_append_new(e->out, m);
        return 0;
    }
    case STEP_INDEX:
    case STEP_INDEXES:
    case STEP_SLICE:
        if (!json_is_array(node))
            return upstream_definite(e, i) ? fail_not_array(e->err, p, i, node) : 0;
        if (st->kind == STEP_INDEX)
            return ev_index(e, i, node, st->index);
        if (st->kind == STEP_SLICE)
            return ev_slice(e, i, st, node);
        for (size_t j = 0; j < st->n; j++) {
            if (ev_index(e, i, node, st->indexes[j]) < 0)
                return -1;
        }
        return 0;
    case STEP_WILDCARD:
        if (json_is_object(node)) {
            const char *key;
            json_t *v;
            json_object_foreach(node, key, v) {
                if (ev_step(e, i + 1, v) < 0)
                    return -1;
            }
        } else if (json_is_array(node)) {
            size_t k;
            json_t *v;
            json_array_foreach(node, k, v) {
                if (ev_step(e, i + 1, v) < 0)
                    return -1;
            }
        }
        return 0;
    case STEP_SCAN:
        assert(i + 1 < p->nsteps);
        return ev_scan(e, i + 1, node);
    case STEP_FILTER:
        if (json_is_object(node)) {
            if (filter_accept(st->filter, node, e->root))
                return ev_step(e, i + 1, node);
            return 0;
        }
        if (json_is_array(node)) {
            size_t k;
            json_t *v;
            json_array_foreach(node, k, v) {
                if (filter_accept(st->filter, v, e->root) && ev_step(e, i + 1, v) < 0)
                    return -1;
            }
            return 0;
        }
        if (upstream_definite(e, i) && e->err != NULL) {
            char *rest = render_steps(p, i, p->nsteps);
            char *ctx = context_text(node);
            eval_fail(e->err, p, "Filter: %s can not be applied to primitives. Current context "
                                 "is: %s", rest, ctx);
            free(ctx);
            free(rest);
            return -1;
        }
        return upstream_definite(e, i) ? -1 : 0;
    }
    return 0;
}

/* Evaluates p from doc (root: what `$` means in filters). New reference, or NULL with err
 * set (err NULL: silent). */
static json_t *eval_from(const struct asl_path *p, json_t *doc, json_t *root, struct err *err)
{
    if (p->nsteps == 0)
        return json_incref(doc);
    if (p->definite)
        return eval_definite(p, doc, err);
    struct ev e = {p, root, json_array(), err};
    if (ev_step(&e, 0, doc) < 0) {
        json_decref(e.out);
        return NULL;
    }
    return e.out;
}

json_t *asl_path_eval(const struct asl_path *p, const struct asl_scope *s, struct err *err)
{
    json_t *doc;
    switch (p->root) {
    case ASL_ROOT_CONTEXT:
        doc = asl_scope_context(s);
        break;
    case ASL_ROOT_VAR:
        err_set(err, ASL_ERR_RUNTIME, "variables are not supported yet ('$%s')", p->var);
        return NULL;
    case ASL_ROOT_INPUT:
    default:
        doc = s->input != NULL ? s->input : json_null();
        break;
    }
    return eval_from(p, doc, doc, err);
}

/* ---------------------------------------------------------------------------------------
 * Filter evaluation (Jayway's evaluators: a path that does not resolve is "undefined")
 */

/* The value of v for item: borrowed or *owned (decref it), NULL when undefined. */
static json_t *fval_get(const struct fval *v, json_t *item, json_t *root, json_t **owned)
{
    *owned = NULL;
    if (v->kind == FV_LITERAL)
        return v->lit;
    if (v->kind != FV_PATH)
        return NULL;
    json_t *r = eval_from(v->path, v->path->relative ? item : root, root, NULL);
    *owned = r;
    return r;
}

/* Parses a string as a JSON number (Jayway converts between its string and number nodes). */
static bool string_number(const json_t *s, double *out)
{
    const char *t = json_string_value(s);
    if (*t == '\0' || is_space((unsigned char)*t))
        return false;
    char *end;
    *out = strtod(t, &end);
    return *end == '\0';
}

static bool value_eq(const json_t *a, const json_t *b)
{
    if (a == NULL || b == NULL)
        return false;
    double d;
    if (json_is_number(a) && json_is_string(b))
        return string_number(b, &d) && d == json_number(a);
    if (json_is_string(a) && json_is_number(b))
        return string_number(a, &d) && d == json_number(b);
    return json_value_equal(a, b);
}

static bool array_has(const json_t *arr, const json_t *v)
{
    size_t k;
    json_t *x;
    json_array_foreach((json_t *)arr, k, x) {
        if (value_eq(v, x))
            return true;
    }
    return false;
}

/* Length as Java counts it: UTF-16 code units. */
static size_t utf16_length(const json_t *s)
{
    const unsigned char *t = (const unsigned char *)json_string_value(s);
    size_t n = json_string_length(s);
    size_t units = 0;
    for (size_t k = 0; k < n; k++) {
        if ((t[k] & 0xc0) != 0x80)
            units += (t[k] >= 0xf0) ? 2 : 1;
    }
    return units;
}

static bool regex_match(const regex_t *re, const json_t *v)
{
    char *owned = NULL;
    const char *input = "";
    if (json_is_string(v))
        input = json_string_value(v);
    else if (v != NULL && (json_is_number(v) || json_is_boolean(v)))
        input = owned = json_compact(v);
    bool ok = regexec(re, input, 0, NULL, 0) == 0;
    free(owned);
    return ok;
}

static bool compare(enum fx_op op, const json_t *l, const json_t *r)
{
    switch (op) {
    case OP_EQ:
        return value_eq(l, r);
    case OP_NE:
        return !value_eq(l, r);
    case OP_LT:
    case OP_LE:
    case OP_GT:
    case OP_GE: {
        int c;
        if (json_is_number(l) && json_is_number(r)) {
            double a = json_number(l);
            double b = json_number(r);
            c = a < b ? -1 : a > b ? 1 : 0;
        } else if (json_is_string(l) && json_is_string(r)) {
            c = strcmp(json_string_value(l), json_string_value(r));
        } else {
            return false;
        }
        return op == OP_LT ? c < 0 : op == OP_LE ? c <= 0 : op == OP_GT ? c > 0 : c >= 0;
    }
    case OP_IN:
        return json_is_array(r) && array_has(r, l);
    case OP_NIN:
        return !(json_is_array(r) && array_has(r, l));
    case OP_CONTAINS:
        if (json_is_string(l) && json_is_string(r))
            return strstr(json_string_value(l), json_string_value(r)) != NULL;
        return json_is_array(l) && array_has(l, r);
    case OP_SUBSETOF:
    case OP_ANYOF:
    case OP_NONEOF: {
        if (!json_is_array(l) || !json_is_array(r))
            return false;
        size_t k;
        json_t *x;
        json_array_foreach((json_t *)l, k, x) {
            bool in = array_has(r, x);
            if (op == OP_SUBSETOF && !in)
                return false;
            if (op == OP_ANYOF && in)
                return true;
            if (op == OP_NONEOF && in)
                return false;
        }
        return op != OP_ANYOF;
    }
    case OP_SIZE: {
        if (!json_is_number(r))
            return false;
        long long want = (long long)json_number(r);
        if (json_is_string(l))
            return (long long)utf16_length(l) == want;
        if (json_is_array(l))
            return (long long)json_array_size(l) == want;
        if (json_is_object(l))
            return (long long)json_object_size(l) == want;
        return false;
    }
    case OP_EMPTY: {
        if (!json_is_boolean(r))
            return false;
        bool want = json_is_true(r);
        if (json_is_string(l))
            return (json_string_length(l) == 0) == want;
        if (json_is_array(l))
            return (json_array_size(l) == 0) == want;
        if (json_is_object(l))
            return (json_object_size(l) == 0) == want;
        return false;
    }
    case OP_REGEX:
    default:
        return false;
    }
}

static bool filter_accept(const struct fexpr *x, json_t *item, json_t *root)
{
    switch (x->kind) {
    case FX_OR:
        return filter_accept(x->a, item, root) || filter_accept(x->b, item, root);
    case FX_AND:
        return filter_accept(x->a, item, root) && filter_accept(x->b, item, root);
    case FX_NOT:
        return !filter_accept(x->a, item, root);
    case FX_EXISTS: {
        json_t *owned;
        json_t *v = fval_get(&x->lhs, item, root, &owned);
        bool ok = v != NULL && (x->lhs.path->definite || json_array_size(v) > 0);
        if (owned != NULL)
            json_decref(owned);
        return ok;
    }
    case FX_CMP:
    default: {
        json_t *lo;
        json_t *ro;
        json_t *l = fval_get(&x->lhs, item, root, &lo);
        json_t *r = fval_get(&x->rhs, item, root, &ro);
        bool ok;
        if (x->op == OP_REGEX)
            ok = x->lhs.kind == FV_REGEX ? regex_match(x->lhs.re, r) : regex_match(x->rhs.re, l);
        else
            ok = compare(x->op, l, r);
        if (lo != NULL)
            json_decref(lo);
        if (ro != NULL)
            json_decref(ro);
        return ok;
    }
    }
}

size_t asl_path_value_size_max(const struct asl_path *p, const json_t *v, size_t doc_max)
{
    size_t max = json_compact_size_max(v);
    /* a definite path selects one node of the input (or, ['a','b'], some members of one
     * object), whose text is part of the input's */
    if (max == SIZE_MAX && p->root == ASL_ROOT_INPUT && p->definite && !p->relative)
        max = doc_max;
    return max;
}

/* ---------------------------------------------------------------------------------------
 * ResultPath assignment
 */
size_t asl_path_assign_growth(const struct asl_path *p)
{
    return p->assign_growth;
}

/* A copy of object `obj` (borrowed) with member `name` set to `value_new` (stolen): in
 * place if present, else last, as json_object_set on a shallow copy would do. New
 * reference. */
static json_t *object_copy_set(json_t *obj, const char *name, size_t name_len,
                               json_t *value_new)
{
    json_t *copy = json_object();
    bool placed = false;
    const char *key;
    size_t klen;
    json_t *m;
    json_object_keylen_foreach(obj, key, klen, m) {
        if (!placed && klen == name_len && memcmp(key, name, klen) == 0) {
            json_object_setn_new_nocheck(copy, key, klen, value_new);
            placed = true;
        } else {
            json_object_setn_nocheck(copy, key, klen, m);
        }
    }
    if (!placed)
        json_object_setn_new_nocheck(copy, name, name_len, value_new);
    return copy;
}

static json_t *assign_at(const struct asl_path *p, size_t i, json_t *node, json_t *value,
                         struct err *err)
{
    if (i == p->nsteps)
        return json_incref(value);
    const struct step *st = &p->steps[i];
    if (st->kind == STEP_NAME) {
        json_t *child = NULL;
        if (node == NULL) {
            /* a missing intermediate object is created */
        } else if (json_is_object(node)) {
            if (i + 1 < p->nsteps) /* the last step replaces the member whatever it was */
                child = json_object_getn(node, st->name, st->name_len);
        } else {
            if (i == 0) {
                eval_fail(err, p, "unable to set '%s' on a non-object input", st->name);
            } else {
                char *at = render_prefix(p, i);
                eval_fail(err, p, "unable to set '%s' on a non-object value at %s", st->name, at);
                free(at);
            }
            return NULL;
        }
        json_t *v = assign_at(p, i + 1, child, value, err);
        if (v == NULL)
            return NULL;
        if (node == NULL) {
            json_t *o = json_object();
            json_object_setn_new_nocheck(o, st->name, st->name_len, v);
            return o;
        }
        return object_copy_set(node, st->name, st->name_len, v);
    }
    assert(st->kind == STEP_INDEX);
    char *at = render_prefix(p, i);
    long long n = json_is_array(node) ? (long long)json_array_size(node) : 0;
    long long k = st->index < 0 ? n + st->index : st->index;
    if (node == NULL) {
        eval_fail(err, p, "unable to set [%lld]: no array at %s", st->index, at);
    } else if (!json_is_array(node)) {
        eval_fail(err, p, "unable to set [%lld] on a non-array value at %s", st->index, at);
    } else if (k < 0 || k >= n) {
        eval_fail(err, p, "unable to set [%lld]: index out of range for the array at %s",
                  st->index, at);
    } else {
        free(at);
        json_t *v = assign_at(p, i + 1, json_array_get(node, (size_t)k), value, err);
        if (v == NULL)
            return NULL;
        json_t *copy = json_shallow_copy(node);
        json_array_set_new(copy, (size_t)k, v);
        return copy;
    }
    free(at);
    return NULL;
}

json_t *asl_path_assign(const struct asl_path *p, json_t *doc, json_t *value, struct err *err)
{
    if (p->root != ASL_ROOT_INPUT) {
        err_set(err, ASL_ERR_RUNTIME, "Invalid path '%s' : only paths on the input ('$') can be "
                "assigned", p->text);
        return NULL;
    }
    for (size_t i = 0; i < p->nsteps; i++) {
        if (p->steps[i].kind != STEP_NAME && p->steps[i].kind != STEP_INDEX) {
            err_set(err, ASL_ERR_RUNTIME, "Invalid path '%s' : '%s' is not a valid reference "
                    "path", p->text, p->text);
            return NULL;
        }
    }
    return assign_at(p, 0, doc, value, err);
}
