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

/* Evaluation reads the whole tree at every visit of its state, mostly from cold memory, so
 * the tree takes few blocks: an object's members are one block holding their nodes and then
 * their keys, an array's elements one array of nodes. */
struct tfield;

struct tnode {
    enum tnode_kind kind;
    size_t n;                     /* T_OBJECT members / T_ARRAY elements */
    size_t size;                  /* compact bytes of the node without its dynamic values:
                                     all of T_CONST; T_OBJECT's braces, commas, keys and
                                     colons; T_ARRAY's brackets and commas; 0 otherwise */
    union {
        json_t *value;            /* T_CONST: owned reference */
        struct tfield *fields;    /* T_OBJECT: owned block (members, then their keys) */
        struct tnode *items;      /* T_ARRAY: owned array of n */
        struct asl_path *path;    /* T_PATH: owned */
        struct asl_intrinsic *fn; /* T_INTRINSIC: owned */
    } u;
};

struct tfield {
    const char *key;    /* in the fields block: the template key (with ".$" when dynamic) */
    size_t key_len;     /* bytes of the output key: key without ".$" */
    struct tnode value;
};

struct asl_tmpl {
    struct tnode root;
};

static void tnode_release(struct tnode *t)
{
    switch (t->kind) {
    case T_CONST:
        json_decref(t->u.value);
        break;
    case T_OBJECT:
        for (size_t i = 0; t->u.fields != NULL && i < t->n; i++)
            tnode_release(&t->u.fields[i].value);
        free(t->u.fields);
        break;
    case T_ARRAY:
        for (size_t i = 0; t->u.items != NULL && i < t->n; i++)
            tnode_release(&t->u.items[i]);
        free(t->u.items);
        break;
    case T_PATH:
        asl_path_free(t->u.path);
        break;
    case T_INTRINSIC:
        asl_intrinsic_free(t->u.fn);
        break;
    }
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

/* The value of a "key.$" member, compiled into t. 0, or -1 with err set. */
static int compile_dynamic(const char *key, json_t *v, struct tnode *t, struct err *err)
{
    const char *text = json_string_value(v);
    struct err sub = ERR_INIT;
    if (text != NULL && text[0] == '$') {
        t->u.path = asl_path_compile(text, 0, &sub);
        if (t->u.path != NULL)
            t->kind = T_PATH;
    } else if (text != NULL && asl_intrinsic_is_call(text)) {
        t->u.fn = asl_intrinsic_parse(text, &sub);
        if (t->u.fn != NULL)
            t->kind = T_INTRINSIC;
    }
    err_clear(&sub);
    if (t->kind == T_CONST) {
        /* asl.md 4.3: AWS's text; the validator appends " at /States/..." */
        return err_set(err, NULL, "The value for the field '%s' must be a valid JSONPath or a "
                       "valid intrinsic function call", key);
    }
    return 0;
}

static int compile_node(json_t *v, struct tnode *t, struct err *err);

static int compile_object(json_t *v, struct tnode *t, struct err *err)
{
    size_t n = json_object_size(v);
    size_t keys = 0;
    const char *key;
    size_t klen;
    json_t *m;
    json_object_keylen_foreach(v, key, klen, m) {
        keys += klen + 1;
    }
    t->kind = T_OBJECT;
    t->u.fields = xcalloc(1, n * sizeof(struct tfield) + keys);
    char *kp = (char *)(t->u.fields + n);
    json_object_keylen_foreach(v, key, klen, m) {
        bool dyn = klen >= 2 && memcmp(key + klen - 2, ".$", 2) == 0;
        size_t out_len = dyn ? klen - 2 : klen;
        /* asl.md 4.3: "a" and "a.$" cannot both appear */
        for (size_t i = 0; i < t->n; i++) {
            if (t->u.fields[i].key_len == out_len &&
                memcmp(t->u.fields[i].key, key, out_len) == 0)
                return err_set(err, NULL, "The field '%.*s' is duplicated", (int)out_len, key);
        }
        struct tfield *f = &t->u.fields[t->n++];
        memcpy(kp, key, klen + 1);
        f->key = kp;
        f->key_len = out_len;
        kp += klen + 1;
        if ((dyn ? compile_dynamic(key, m, &f->value, err) : compile_node(m, &f->value, err)) != 0)
            return -1;
        t->size += (t->n > 1 ? 1 : 0) + json_string_compact_size(key, out_len) + 1;
    }
    t->size += 2;
    return 0;
}

/* Compiles v into t (zeroed: a T_CONST without value). 0, or -1 with err set and t holding
 * what was compiled so far (tnode_release frees it). */
static int compile_node(json_t *v, struct tnode *t, struct err *err)
{
    if (!has_dynamic(v)) {
        t->kind = T_CONST;
        /* a scalar is copied: evaluation increments its count, and the copy sits with the
         * values compiled just before and after it instead of somewhere in the definition */
        t->u.value = json_is_object(v) || json_is_array(v) ? json_incref(v) : json_copy(v);
        t->size = json_compact_size(v, SIZE_MAX);
        return 0;
    }
    if (json_is_object(v))
        return compile_object(v, t, err);
    t->kind = T_ARRAY;
    t->u.items = xcalloc(json_array_size(v) + 1, sizeof(*t->u.items));
    size_t i;
    json_t *m;
    json_array_foreach(v, i, m) {
        if (compile_node(m, &t->u.items[t->n++], err) != 0)
            return -1;
    }
    t->size = 2 + (t->n > 0 ? t->n - 1 : 0);
    return 0;
}

struct asl_tmpl *asl_tmpl_compile(json_t *tmpl, struct err *err)
{
    struct asl_tmpl *t = xcalloc(1, sizeof(*t));
    if (compile_node(tmpl, &t->root, err) != 0) {
        asl_tmpl_free(t);
        return NULL;
    }
    return t;
}

void asl_tmpl_free(struct asl_tmpl *t)
{
    if (t == NULL)
        return;
    tnode_release(&t->root);
    free(t);
}

/* Evaluates t; adds an upper bound of the result's compact size to *size (saturating at
 * SIZE_MAX), `in_max` bounding the size of s->input. `field`: the template key of a
 * T_PATH or T_INTRINSIC node (with ".$"), for messages. */
static json_t *eval_node(const struct tnode *t, const struct asl_scope *s, size_t in_max,
                         size_t *size, const char *field, struct err *err)
{
    *size = json_size_add(*size, t->size);
    switch (t->kind) {
    case T_CONST:
        return json_incref(t->u.value);
    case T_OBJECT: {
        json_t *o = json_object();
        for (size_t i = 0; i < t->n; i++) {
            const struct tfield *f = &t->u.fields[i];
            json_t *v = eval_node(&f->value, s, in_max, size, f->key, err);
            if (v == NULL) {
                json_decref(o);
                return NULL;
            }
            json_object_setn_new_nocheck(o, f->key, f->key_len, v);
        }
        return o;
    }
    case T_ARRAY: {
        json_t *a = json_array();
        for (size_t i = 0; i < t->n; i++) {
            json_t *v = eval_node(&t->u.items[i], s, in_max, size, NULL, err);
            if (v == NULL) {
                json_decref(a);
                return NULL;
            }
            json_array_append_new(a, v);
        }
        return a;
    }
    case T_PATH: {
        if (asl_path_root(t->u.path) == ASL_ROOT_VAR)
            return asl_path_eval(t->u.path, s, err); /* "not supported yet", unchanged */
        struct err sub;
        err_init(&sub);
        json_t *v = asl_path_eval(t->u.path, s, &sub);
        if (sub.set)
            err_clear(&sub);
        if (v != NULL)
            *size = json_size_add(*size, asl_path_value_size_max(t->u.path, v, in_max));
        if (v == NULL) {
            /* asl.md 4.3: the observed text (the engine prefixes the state) */
            char *input = json_compact(s->input != NULL ? s->input : json_null());
            err_set(err, ASL_ERR_RUNTIME, "The JSONPath '%s' specified for the field '%s' could "
                    "not be found in the input '%s'", asl_path_text(t->u.path), field, input);
            free(input);
        }
        return v;
    }
    case T_INTRINSIC:
    default: {
        json_t *v = asl_intrinsic_eval(t->u.fn, s, err); /* its err passes through unchanged */
        if (v != NULL)
            *size = json_size_add(*size, json_compact_size_max(v));
        return v;
    }
    }
}

json_t *asl_tmpl_eval(const struct asl_tmpl *t, const struct asl_scope *s, struct err *err)
{
    size_t size = 0;
    return eval_node(&t->root, s, SIZE_MAX, &size, NULL, err);
}

json_t *asl_tmpl_eval_sized(const struct asl_tmpl *t, const struct asl_scope *s, size_t in_max,
                            size_t *size_max, struct err *err)
{
    *size_max = 0;
    return eval_node(&t->root, s, in_max, size_max, NULL, err);
}
