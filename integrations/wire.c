/* integrations/wire.c - what the integrations put on the wire and read back from it: member
 * names (PascalCase in ASL and results, camelCase on the wire of the REST-JSON services, map
 * keys untouched: integrations.md §1.2), timestamps (epoch milliseconds in results, §1.3),
 * requests of both protocols (§2.1-5.1), error names and causes (§1.7), and the idempotency
 * token of an attempt (§1.9). Pure functions; the transport is integrations/aws/. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asl/asl.h"
#include "integrations/integrations.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/xalloc.h"

bool integ_list_has(const char *const *list, const char *s)
{
    if (list == NULL || s == NULL)
        return false;
    for (; *list != NULL; list++) {
        if (strcmp(*list, s) == 0)
            return true;
    }
    return false;
}

json_t *integ_path_get(json_t *obj, const char *const *path)
{
    for (; path != NULL && *path != NULL && obj != NULL; path++)
        obj = json_object_get(obj, *path);
    return obj;
}

/* `key` with its first letter upper-cased (`upper`) or lower-cased. Returns a new string. */
static char *name_flip(const char *key, bool upper)
{
    char *s = xstrdup(key);
    if (s[0] != '\0')
        s[0] = (char)(upper ? toupper((unsigned char)s[0]) : tolower((unsigned char)s[0]));
    return s;
}

/* Converts `v` (borrowed) for the wire (`to_wire`) or for results. `is_map`: v is the value of
 * a map member, whose keys are user data. Returns a new reference. */
static json_t *convert(const struct integ_service *s, json_t *v, bool to_wire, bool is_map)
{
    if (json_is_array(v)) {
        json_t *out = json_array();
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) {
            json_array_append_new(out, convert(s, e, to_wire, false));
        }
        return out;
    }
    if (!json_is_object(v))
        return json_incref(v);
    json_t *out = json_object();
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val) {
        if (is_map) { /* a map's values are structures or scalars: convert inside only */
            json_object_set_new(out, key, convert(s, val, to_wire, false));
            continue;
        }
        char *wire = s->camel_case && to_wire ? name_flip(key, false) : xstrdup(key);
        json_t *conv;
        struct asl_time at;
        if (!to_wire && json_is_number(val) && integ_list_has(s->timestamps, wire)) {
            /* §1.3: epoch seconds (with a fraction) -> integer epoch milliseconds */
            conv = json_integer((json_int_t)llround(json_number_value(val) * 1000.0));
        } else if (!to_wire && json_is_string(val) && integ_list_has(s->timestamps, wire) &&
                   asl_time_parse(json_string_value(val), &at) == 0) {
            /* §1.3, EMR on EKS: ISO-8601 on the wire -> integer epoch milliseconds */
            conv = json_integer((json_int_t)(at.sec * 1000 + at.nsec / 1000000));
        } else {
            conv = convert(s, val, to_wire, integ_list_has(s->maps, wire));
        }
        if (s->camel_case && !to_wire) {
            char *name = name_flip(key, true);
            json_object_set_new(out, name, conv);
            free(name);
        } else {
            json_object_set_new(out, wire, conv);
        }
        free(wire);
    }
    return out;
}

json_t *integ_params_to_wire(const struct integ_service *s, json_t *params)
{
    return convert(s, params, true, false);
}

json_t *integ_reply_from_wire(const struct integ_service *s, json_t *reply)
{
    return convert(s, reply, false, false);
}

json_t *integ_op_wire(const struct integ_service *s, const struct integ_op *op, json_t *params,
                      const char *token, struct err *err)
{
    json_t *wire = integ_params_to_wire(s, params);
    if (op->token != NULL && json_object_get(wire, op->token) == NULL && token != NULL)
        json_object_set_new(wire, op->token, json_string(token));
    if (op->shape != NULL && op->shape(wire, token, err) != 0) {
        json_decref(wire);
        return NULL;
    }
    return wire;
}

/* The text of a URI or query member (`v` borrowed): a string as it is, a number or boolean as
 * JSON writes it. Returns a new string (free() it), or NULL for anything else. */
static char *member_text(json_t *v)
{
    if (json_is_string(v))
        return xstrdup(json_string_value(v));
    if (json_is_integer(v) || json_is_boolean(v) || json_is_real(v))
        return json_compact(v);
    return NULL;
}

/* Fails with AWS's validation message for a URI member `wire` that is absent (`v` NULL) or
 * not a string (`v` borrowed). Returns -1. */
static int missing_member(const struct integ_service *s, const char *wire, json_t *v,
                          struct err *err)
{
    char name[ERR_NAME_MAX];
    snprintf(name, sizeof(name), "%s.ValidationException", s->error_prefix);
    /* AWS's wording for a constraint on a member */
    return err_set(err, name,
                   "1 validation error detected: Value %s at '%s' failed to satisfy constraint: "
                   "Member must %s",
                   v == NULL ? "null" : "of the wrong type", wire,
                   v == NULL ? "not be null" : "be a string");
}

int integ_request_build(const struct integ_service *s, const struct integ_op *op, json_t *wire,
                        const char *host, struct aws_request *r, struct err *err)
{
    if (s->aws->protocol == AWS_PROTO_JSON) {
        char target[128];
        snprintf(target, sizeof(target), "%s.%s", s->aws->target_prefix, op->name);
        char *text = json_compact(wire);
        aws_request_init_json11(r, host, target, text, strlen(text));
        free(text);
        return 0;
    }
    /* REST-JSON: labels into the path, query members into the query, the rest is the body */
    json_t *rest = json_copy(wire); /* shallow: only top-level members are removed */
    struct buf path = BUF_INIT;
    const char *p = op->uri;
    while (*p != '\0') {
        const char *open = strchr(p, '{');
        if (open == NULL) {
            buf_puts(&path, p);
            break;
        }
        buf_add(&path, p, (size_t)(open - p));
        const char *close = strchr(open, '}');
        char *label = xstrndup(open + 1, (size_t)(close - open - 1));
        json_t *v = json_object_get(rest, label);
        char *text = member_text(v);
        if (text == NULL || text[0] == '\0') {
            missing_member(s, label, json_is_string(v) ? NULL : v, err);
            free(text);
            free(label);
            buf_release(&path);
            json_decref(rest);
            return -1;
        }
        aws_uri_encode(&path, text, strlen(text), false);
        json_object_del(rest, label);
        free(text);
        free(label);
        p = close + 1;
    }
    json_t *query = json_object(); /* the query members, taken out of the body */
    for (const char *const *q = op->query; q != NULL && *q != NULL; q++) {
        json_t *v = json_object_get(rest, *q);
        if (v != NULL) {
            json_object_set(query, *q, v);
            json_object_del(rest, *q);
        }
    }
    char *text = json_object_size(rest) > 0 ? json_compact(rest) : NULL;
    aws_request_init_rest_json(r, op->method, host, buf_cstr(&path), text,
                               text != NULL ? strlen(text) : 0);
    const char *qname;
    json_t *qval;
    json_object_foreach(query, qname, qval) {
        char *qtext = member_text(qval);
        if (qtext != NULL)
            aws_request_query_add(r, qname, qtext);
        free(qtext);
    }
    json_decref(query);
    free(text);
    buf_release(&path);
    json_decref(rest);
    return 0;
}

void integ_error_from_result(const struct integ_service *s, const struct aws_http_result *res,
                             struct err *err)
{
    char name[ERR_NAME_MAX];
    if (res->error_code != NULL) {
        /* §1.7: a declared code keeps its name, any other is the SDK's base class */
        const char *code = res->error_code;
        snprintf(name, sizeof(name), "%s.%s", s->error_prefix,
                 integ_list_has(s->errors, code) ? code : s->base_exception);
        err_set(err, name,
                "%s (Service: %s; Status Code: %ld; Error Code: %s; Request ID: %s; Proxy: null)",
                res->error_message != NULL ? res->error_message : "", s->java_name, res->status,
                code, res->request_id != NULL ? res->request_id : "");
        return;
    }
    snprintf(name, sizeof(name), "%s.%s", s->error_prefix, AWS_ERR_CLIENT);
    const struct err *e = res->err;
    err_set(err, name, "Unable to execute HTTP request: %s",
            e != NULL && e->cause != NULL ? e->cause : "no answer");
}

void integ_token(const char *execution_arn, const char *task_token, char out[65])
{
    struct buf b = BUF_INIT;
    buf_printf(&b, "%s\n%s", execution_arn, task_token);
    aws_sha256_hex(b.data, b.len, out);
    buf_release(&b);
}
