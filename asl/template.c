/* asl/template.c - payload templates (Parameters, ItemSelector, ResultSelector; asl.md 4.3):
 * a JSON value copied literally, except that object keys ending in ".$" are evaluated (a
 * Path or an intrinsic call) and renamed without the suffix.
 *
 * Compilation turns the template into a tree whose leaves are either constants (any subtree
 * without a ".$" key, shared by reference at evaluation) or compiled paths and intrinsics.
 * Evaluation builds new containers only along the dynamic parts, keeping key order. */
#include <stdlib.h>
#include <string.h>

#include "asl/asl.h"
#include "util/json.h"
#include "util/xalloc.h"

enum tnode_kind {
    T_CONST,     /* a subtree without any ".$" key */
    T_OBJECT,    /* an object with at least one dynamic member somewhere below */
    T_ARRAY,     /* an array with at least one dynamic element somewhere below */
    T_PATH,      /* the value of a "key.$" member that is a Path */
    T_INTRINSIC, /* the value of a "key.$" member that is an intrinsic call */
};

struct tnode;

struct tfield {
    char *key;           /* owned: the output key (".$" stripped) */
    size_t key_len;      /* bytes in key */
    struct tnode *value; /* owned */
};

struct tnode {
    enum tnode_kind kind;
    json_t *value;          /* T_CONST: owned reference */
    struct tfield *fields;  /* T_OBJECT: owned, in template order */
    struct tnode **items;   /* T_ARRAY: owned */
    size_t n;               /* T_OBJECT fields / T_ARRAY items */
    struct asl_path *path;  /* T_PATH: owned */
    struct asl_intrinsic *fn; /* T_INTRINSIC: owned */
    char *field;            /* T_PATH, T_INTRINSIC: owned, the template key with ".$" */
};

struct asl_tmpl {
    struct tnode *root; /* owned */
};

static void tnode_free(struct tnode *t)
{
    if (t == NULL)
        return;
    if (t->value != NULL)
        json_decref(t->value);
    for (size_t i = 0; t->fields != NULL && i < t->n; i++) {
        free(t->fields[i].key);
        tnode_free(t->fields[i].value);
    }
    free(t->fields);
    for (size_t i = 0; t->items != NULL && i < t->n; i++)
        tnode_free(t->items[i]);
    free(t->items);
    asl_path_free(t->path);
    if (t->fn != NULL)
        asl_intrinsic_free(t->fn);
    free(t->field);
    free(t);
}

/* Whether v holds a ".$" key at any depth. */
static bool has_dynamic(json_t *v)
{
    if (json_is_object(v)) {
        const char *key;
        size_t klen;
        json_t *m;
        json_object_keylen_foreach(v, key, klen, m) {
            if (klen >= 2 && memcmp(key + klen - 2, ".$", 2) == 0)
                return true;
            if (has_dynamic(m))
                return true;
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *m;
        json_array_foreach(v, i, m) {
            if (has_dynamic(m))
                return true;
        }
    }
    return false;
}

static struct tnode *tnode_new(enum tnode_kind kind)
{
    struct tnode *t = xcalloc(1, sizeof(*t));
    t->kind = kind;
    return t;
}

/* The value of a "key.$" member. */
static struct tnode *compile_dynamic(const char *key, json_t *v, struct err *err)
{
    const char *text = json_string_value(v);
    struct tnode *t = NULL;
    struct err sub = ERR_INIT;
    if (text != NULL && text[0] == '$') {
        struct asl_path *p = asl_path_compile(text, 0, &sub);
        if (p != NULL) {
            t = tnode_new(T_PATH);
            t->path = p;
        }
    } else if (text != NULL && asl_intrinsic_is_call(text)) {
        struct asl_intrinsic *fn = asl_intrinsic_parse(text, &sub);
        if (fn != NULL) {
            t = tnode_new(T_INTRINSIC);
            t->fn = fn;
        }
    }
    err_clear(&sub);
    if (t == NULL) {
        /* asl.md 4.3: AWS's text; the validator appends " at /States/..." */
        err_set(err, NULL, "The value for the field '%s' must be a valid JSONPath or a valid "
                "intrinsic function call", key);
        return NULL;
    }
    t->field = xstrdup(key);
    return t;
}

static struct tnode *compile_node(json_t *v, struct err *err);

static struct tnode *compile_object(json_t *v, struct err *err)
{
    struct tnode *t = tnode_new(T_OBJECT);
    t->fields = xcalloc(json_object_size(v) + 1, sizeof(*t->fields));
    const char *key;
    size_t klen;
    json_t *m;
    json_object_keylen_foreach(v, key, klen, m) {
        bool dyn = klen >= 2 && memcmp(key + klen - 2, ".$", 2) == 0;
        size_t out_len = dyn ? klen - 2 : klen;
        /* asl.md 4.3: "a" and "a.$" cannot both appear */
        for (size_t i = 0; i < t->n; i++) {
            if (t->fields[i].key_len == out_len && memcmp(t->fields[i].key, key, out_len) == 0) {
                err_set(err, NULL, "The field '%.*s' is duplicated", (int)out_len, key);
                goto fail;
            }
        }
        struct tnode *c = dyn ? compile_dynamic(key, m, err) : compile_node(m, err);
        if (c == NULL)
            goto fail;
        struct tfield *f = &t->fields[t->n++];
        f->key = xstrndup(key, out_len);
        f->key_len = out_len;
        f->value = c;
    }
    return t;
fail:
    tnode_free(t);
    return NULL;
}

static struct tnode *compile_node(json_t *v, struct err *err)
{
    if (!has_dynamic(v)) {
        struct tnode *t = tnode_new(T_CONST);
        t->value = json_incref(v);
        return t;
    }
    if (json_is_object(v))
        return compile_object(v, err);
    struct tnode *t = tnode_new(T_ARRAY);
    t->items = xcalloc(json_array_size(v) + 1, sizeof(*t->items));
    size_t i;
    json_t *m;
    json_array_foreach(v, i, m) {
        struct tnode *c = compile_node(m, err);
        if (c == NULL) {
            tnode_free(t);
            return NULL;
        }
        t->items[t->n++] = c;
    }
    return t;
}

struct asl_tmpl *asl_tmpl_compile(json_t *tmpl, struct err *err)
{
    struct tnode *root = compile_node(tmpl, err);
    if (root == NULL)
        return NULL;
    struct asl_tmpl *t = xmalloc(sizeof(*t));
    t->root = root;
    return t;
}

void asl_tmpl_free(struct asl_tmpl *t)
{
    if (t == NULL)
        return;
    tnode_free(t->root);
    free(t);
}

static json_t *eval_node(const struct tnode *t, const struct asl_scope *s, struct err *err)
{
    switch (t->kind) {
    case T_CONST:
        return json_incref(t->value);
    case T_OBJECT: {
        json_t *o = json_object();
        for (size_t i = 0; i < t->n; i++) {
            json_t *v = eval_node(t->fields[i].value, s, err);
            if (v == NULL) {
                json_decref(o);
                return NULL;
            }
            json_object_setn_new_nocheck(o, t->fields[i].key, t->fields[i].key_len, v);
        }
        return o;
    }
    case T_ARRAY: {
        json_t *a = json_array();
        for (size_t i = 0; i < t->n; i++) {
            json_t *v = eval_node(t->items[i], s, err);
            if (v == NULL) {
                json_decref(a);
                return NULL;
            }
            json_array_append_new(a, v);
        }
        return a;
    }
    case T_PATH: {
        if (asl_path_root(t->path) == ASL_ROOT_VAR)
            return asl_path_eval(t->path, s, err); /* "not supported yet", unchanged */
        struct err sub = ERR_INIT;
        json_t *v = asl_path_eval(t->path, s, &sub);
        err_clear(&sub);
        if (v == NULL) {
            /* asl.md 4.3: the observed text (the engine prefixes the state) */
            char *input = json_compact(s->input != NULL ? s->input : json_null());
            err_set(err, ASL_ERR_RUNTIME, "The JSONPath '%s' specified for the field '%s' could "
                    "not be found in the input '%s'", asl_path_text(t->path), t->field, input);
            free(input);
        }
        return v;
    }
    case T_INTRINSIC:
    default:
        return asl_intrinsic_eval(t->fn, s, err); /* its err passes through unchanged */
    }
}

json_t *asl_tmpl_eval(const struct asl_tmpl *t, const struct asl_scope *s, struct err *err)
{
    return eval_node(t->root, s, err);
}
