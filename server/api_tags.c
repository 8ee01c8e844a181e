/* server/api_tags.c - tags (api.md 9.3): TagResource, UntagResource, ListTagsForResource on
 * state machines and activities, and the check of a request's tag list that
 * CreateStateMachine and CreateActivity share. Tags live in the store's `tags` table; every
 * change is committed before its reply. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/internal.h"
#include "util/buf.h"
#include "util/xalloc.h"

static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s != '\0'; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

/* Adds a length clause (api.md 1.3) for `s` at `path` when it is outside lo..hi. */
static void length_clause(struct buf *clauses, int *n, const char *s, const char *path,
                          size_t lo, size_t hi)
{
    size_t len = utf8_chars(s);
    if (len >= lo && len <= hi)
        return;
    buf_printf(clauses, "%sValue '%.300s' at '%s' failed to satisfy constraint: Member must have "
               "length %s %zu", *n > 0 ? "; " : "", s, path,
               len < lo ? "greater than or equal to" : "less than or equal to",
               len < lo ? lo : hi);
    (*n)++;
}

/* Answers the ValidationException gathered in `clauses`, if any. 0, or -1 answered. */
static int clauses_answer(struct call *c, struct buf *clauses, int n)
{
    int rc = 0;
    if (n > 0)
        rc = call_error(c, "ValidationException", "%d validation error%s detected: %s", n,
                        n > 1 ? "s" : "", buf_cstr(clauses));
    buf_release(clauses);
    return rc;
}

int api_tags_check(struct call *c, json_t *tags, const char *resource)
{
    if (tags == NULL)
        return 0;
    struct buf clauses = BUF_INIT;
    int n = 0;
    size_t i;
    json_t *t;
    json_array_foreach(tags, i, t) {
        json_t *key = json_object_get(t, "key");
        json_t *value = json_object_get(t, "value");
        if (!json_is_object(t) || (key != NULL && !json_is_string(key)) ||
            (value != NULL && !json_is_string(value) && !json_is_null(value))) {
            buf_release(&clauses);
            return call_error(c, "SerializationException",
                              "cannot deserialize member 'tags': each tag is an object with "
                              "string members 'key' and 'value'");
        }
        char path[64];
        snprintf(path, sizeof(path), "tags.%zu.member.key", i + 1);
        if (key == NULL) {
            buf_printf(&clauses, "%sValue null at '%s' failed to satisfy constraint: Member "
                       "must not be null", n > 0 ? "; " : "", path);
            n++;
        } else {
            length_clause(&clauses, &n, json_string_value(key), path, 1, 128);
        }
        if (json_is_string(value)) {
            snprintf(path, sizeof(path), "tags.%zu.member.value", i + 1);
            length_clause(&clauses, &n, json_string_value(value), path, 0, 256);
        }
    }
    if (clauses_answer(c, &clauses, n) != 0)
        return -1;
    if (json_array_size(tags) > API_TAGS_MAX)
        return call_error_resource(c, "TooManyTags", resource,
                                   "Too many tags: a resource may have at most %d", API_TAGS_MAX);
    return 0;
}

/* Checks a taggable ARN (a state machine or an activity, api.md 9.3) and that it exists.
 * 0, or -1 answered (InvalidArn, ResourceNotFound). */
static int resource_find(struct call *c, const char *arn)
{
    char *scratch = NULL;
    char *parts[ARN_PARTS_MAX];
    int n = 0;
    if (api_arn_parse(c, arn, NULL, &scratch, parts, &n) != 0)
        return -1;
    bool machine = strcmp(parts[5], "stateMachine") == 0;
    bool activity = strcmp(parts[5], "activity") == 0;
    if (!machine && !activity) {
        call_error(c, "InvalidArn", "Invalid Arn: 'Resource type not valid in this context: %s'",
                   parts[5]);
        free(scratch);
        return -1;
    }
    free(scratch);
    struct err err = ERR_INIT;
    int rc = 1;
    if (n == 7) /* a version or an alias (8 parts) is not taggable */
        rc = machine ? sfn_store_get_machine(c->api->st, arn, NULL, NULL, &err)
                     : sfn_store_get_activity(c->api->st, arn, NULL, NULL, &err);
    if (rc < 0) {
        call_fail(c, &err);
        err_clear(&err);
        return -1;
    }
    if (rc == 1)
        return call_error_resource(c, "ResourceNotFound", arn, "Resource not found: '%s'", arn);
    return 0;
}

void op_tag_resource(struct call *c)
{
    const char *arn = call_str(c, "resourceArn");
    json_t *tags = json_object_get(c->in, "tags");
    if (api_tags_check(c, tags, arn) != 0 || resource_find(c, arn) != 0)
        return;
    struct err err = ERR_INIT;
    if (sfn_store_tag(c->api->st, arn, tags, API_TAGS_MAX, &err) != 0) {
        if (strcmp(err.name, "TooManyTags") == 0)
            call_error_resource(c, "TooManyTags", arn,
                                "Too many tags: a resource may have at most %d", API_TAGS_MAX);
        else
            call_fail(c, &err);
        err_clear(&err);
        return;
    }
    call_ok(c, json_object(), false); /* committed by the store */
}

void op_untag_resource(struct call *c)
{
    const char *arn = call_str(c, "resourceArn");
    json_t *keys = json_object_get(c->in, "tagKeys");
    struct buf clauses = BUF_INIT;
    int n = 0;
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k) {
        if (!json_is_string(k)) {
            buf_release(&clauses);
            call_error(c, "SerializationException",
                       "cannot deserialize member 'tagKeys': expected a list of strings");
            return;
        }
        char path[64];
        snprintf(path, sizeof(path), "tagKeys.%zu.member", i + 1);
        length_clause(&clauses, &n, json_string_value(k), path, 1, 128);
    }
    if (clauses_answer(c, &clauses, n) != 0 || resource_find(c, arn) != 0)
        return;
    struct err err = ERR_INIT;
    if (sfn_store_untag(c->api->st, arn, keys, &err) != 0) {
        call_fail(c, &err);
        err_clear(&err);
        return;
    }
    call_ok(c, json_object(), false);
}

static void on_tag(const char *key, const char *value, void *arg)
{
    json_array_append_new(arg, json_pack("{s:s,s:s}", "key", key, "value", value));
}

void op_list_tags_for_resource(struct call *c)
{
    const char *arn = call_str(c, "resourceArn");
    if (resource_find(c, arn) != 0)
        return;
    json_t *tags = json_array();
    struct err err = ERR_INIT;
    if (sfn_store_list_tags(c->api->st, arn, on_tag, tags, &err) < 0) {
        call_fail(c, &err);
        err_clear(&err);
        json_decref(tags);
        return;
    }
    json_t *o = json_object();
    json_object_set_new(o, "tags", tags);
    call_ok(c, o, false);
}
