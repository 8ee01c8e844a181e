/* tests/unit/test_integrations.c - the pure half of the service integrations
 * (integrations/wire.c), from the data files of tests/integrations/wire/: member naming and
 * timestamps both ways (naming.test), requests of both protocols (request.test), error names
 * and causes (errors.test); and the idempotency token of an attempt. The end-to-end cases of
 * tests/integrations/<service>/ run in the integrations suite. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asl/asl.h"
#include "integrations/integrations.h"
#include "tests/unit/testlib.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/xalloc.h"

#define DIR "tests/integrations/wire"

static struct tl T;

static const struct integ_service *service_named(const char *name)
{
    if (strcmp(name, "athena") == 0)
        return &integ_athena;
    if (strcmp(name, "emr-serverless") == 0)
        return &integ_emr_serverless;
    if (strcmp(name, "elasticmapreduce") == 0)
        return &integ_emr;
    if (strcmp(name, "emr-containers") == 0)
        return &integ_emr_containers;
    return NULL;
}

/* An operation of `s` by its API name, from the actions' calls, polls and cancels. */
static const struct integ_op *op_named(const struct integ_service *s, const char *name)
{
    for (size_t i = 0; i < s->n_actions; i++) {
        const struct integ_action *a = &s->actions[i];
        const struct integ_op *ops[] = {
            a->op,
            a->poll,
            a->cancel,
            a->resolve != NULL ? a->resolve->op : NULL,
            a->reconcile != NULL ? a->reconcile->op : NULL,
            a->reconcile != NULL ? a->reconcile->check_op : NULL,
        };
        for (size_t k = 0; k < ARRAY_LEN(ops); k++) {
            if (ops[k] != NULL && strcmp(ops[k]->name, name) == 0)
                return ops[k];
        }
    }
    return NULL;
}

/* Splits the first `n` space-separated words of `line` into w[].
 * Returns the rest of the line after them, or NULL when there are fewer words. */
static const char *words(const char *line, char w[][128], size_t n)
{
    const char *p = line;
    for (size_t i = 0; i < n; i++) {
        while (*p == ' ')
            p++;
        size_t len = strcspn(p, " ");
        if (len == 0 || len >= 128)
            return NULL;
        memcpy(w[i], p, len);
        w[i][len] = '\0';
        p += len;
    }
    while (*p == ' ')
        p++;
    return p;
}

/* "file:line" of a block, in a static buffer. */
static const char *where(const struct tl_block *b)
{
    static char w[512];
    snprintf(w, sizeof(w), "%s:%d", b->file, b->line);
    return w;
}

static json_t *parse(const char *text)
{
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL); /* new reference */
    if (v == NULL) {
        fprintf(stderr, "test_integrations: not JSON: %s\n", text);
        abort();
    }
    return v;
}

static void check_json(const struct tl_block *b, json_t *got, const char *want_text)
{
    json_t *want = parse(want_text);
    char *g = json_compact(got);
    tl_check(&T, json_equal(got, want), where(b), "expected %s, got %s", want_text, g);
    free(g);
    json_decref(want);
}

static void naming_block(const struct tl_block *b, void *arg)
{
    (void)arg;
    char w[2][128];
    if (b->n != 3 || words(b->lines[0], w, 2) == NULL || service_named(w[1]) == NULL) {
        tl_check(&T, false, where(b), "malformed block");
        return;
    }
    json_t *in = parse(b->lines[1]);
    const struct integ_service *s = service_named(w[1]);
    json_t *out = strcmp(w[0], "to_wire") == 0 ? integ_params_to_wire(s, in)
                                               : integ_reply_from_wire(s, in);
    check_json(b, out, b->lines[2]);
    json_decref(out);
    json_decref(in);
}

/* "METHOD PATH[?QUERY]" of a built request. */
static void request_line(struct buf *out, struct aws_request *r)
{
    buf_printf(out, "%s %s", r->method, r->path);
    if (r->query.len > 0)
        buf_printf(out, "?%s", buf_cstr(&r->query));
}

static void request_block(const struct tl_block *b, void *arg)
{
    (void)arg;
    char w[4][128];
    const char *rest = b->n >= 3 ? words(b->lines[0], w, 3) : NULL;
    if (rest == NULL || service_named(w[1]) == NULL ||
        op_named(service_named(w[1]), w[2]) == NULL) {
        tl_check(&T, false, where(b), "malformed block");
        return;
    }
    const struct integ_service *s = service_named(w[1]);
    const struct integ_op *op = op_named(s, w[2]);
    /* the parameters as the call gets them (with the token of the header, if any), shaped
     * for the op, then built */
    json_t *params = parse(b->lines[1]);
    struct err err = ERR_INIT;
    json_t *wire = integ_op_wire(s, op, params, rest[0] != '\0' ? rest : NULL, &err);
    json_decref(params);
    struct aws_request r;
    int rc = wire != NULL ? integ_request_build(s, op, wire, "example.com", &r, &err) : -1;
    json_decref(wire);
    if (b->fail) {
        tl_check(&T, rc != 0 && strcmp(err.name, b->lines[2]) == 0, where(b),
                 "expected error %s, got %s", b->lines[2], rc != 0 ? err.name : "success");
        err_clear(&err);
        if (rc == 0)
            aws_request_release(&r);
        return;
    }
    if (rc != 0 || b->n != 5) {
        tl_check(&T, false, where(b), "failed: %s: %s", err.name, err.cause);
        err_clear(&err);
        return;
    }
    struct buf line = BUF_INIT;
    request_line(&line, &r);
    tl_check(&T, strcmp(buf_cstr(&line), b->lines[2]) == 0, where(b), "request line '%s'",
             buf_cstr(&line));
    const char *target = aws_request_header_get(&r, "X-Amz-Target");
    const char *want_target = strcmp(b->lines[3], "-") == 0 ? NULL : b->lines[3];
    tl_check(&T,
             (target == NULL && want_target == NULL) ||
                 (target != NULL && want_target != NULL && strcmp(target, want_target) == 0),
             where(b), "X-Amz-Target '%s'", target != NULL ? target : "(none)");
    if (strcmp(b->lines[4], "-") == 0) {
        tl_check(&T, r.body.len == 0, where(b), "unexpected body '%s'", buf_cstr(&r.body));
        tl_check(&T, aws_request_header_get(&r, "Content-Type") == NULL, where(b),
                 "Content-Type without a body");
    } else {
        json_t *body = parse(buf_cstr(&r.body));
        check_json(b, body, b->lines[4]);
        json_decref(body);
    }
    buf_release(&line);
    aws_request_release(&r);
}

static void error_block(const struct tl_block *b, void *arg)
{
    (void)arg;
    char w[4][128];
    const char *message = b->n == 3 ? words(b->lines[0], w, 4) : NULL;
    if (message == NULL || service_named(w[1]) == NULL) {
        tl_check(&T, false, where(b), "malformed block");
        return;
    }
    const char *svc = w[1];
    long status = strtol(w[2], NULL, 10);
    const char *code = w[3];
    struct err cerr = ERR_INIT;
    struct aws_http_result res;
    memset(&res, 0, sizeof(res));
    res.status = status;
    res.request_id = "rid-1";
    if (strcmp(code, "-") == 0) {
        err_set(&cerr, AWS_ERR_CLIENT, "%s", message);
    } else {
        res.error_code = code;
        res.error_message = message;
        err_set(&cerr, code, "%s", message);
    }
    res.err = &cerr;
    struct err err = ERR_INIT;
    integ_error_from_result(service_named(svc), &res, &err);
    tl_check(&T, strcmp(err.name, b->lines[1]) == 0, where(b), "name '%s'", err.name);
    tl_check(&T, err.cause != NULL && strcmp(err.cause, b->lines[2]) == 0, where(b),
             "cause '%s'", err.cause != NULL ? err.cause : "(none)");
    err_clear(&err);
    err_clear(&cerr);
}

/* §1.9: one token per attempt, the same after a restart, valid for Athena (32..128) and EMR
 * Serverless (1..64 of [A-Za-z0-9._-]). */
static void token_checks(void)
{
    char a[65], b[65], c[65];
    integ_token("arn:aws:states:us-east-1:123456789012:execution:m:e1", "00ff-3-0", a);
    integ_token("arn:aws:states:us-east-1:123456789012:execution:m:e1", "00ff-3-0", b);
    integ_token("arn:aws:states:us-east-1:123456789012:execution:m:e1", "00ff-3-1", c);
    tl_check(&T, strcmp(a, b) == 0, "token", "not stable: %s %s", a, b);
    tl_check(&T, strcmp(a, c) != 0, "token", "two attempts share %s", a);
    tl_check(&T, strlen(a) == 64 && strspn(a, "0123456789abcdef") == 64, "token",
             "not 64 hex characters: %s", a);
}

/* integrations.md §1.1: the validator's table of optimized actions (asl/validate.c) and the
 * integrations' own tables name the same actions and patterns. */
static void table_checks(void)
{
    const struct integ_service *services[] = {&integ_athena, &integ_emr, &integ_emr_containers,
                                              &integ_emr_serverless};
    size_t seen = 0;
    for (size_t i = 0; i < ARRAY_LEN(services); i++) {
        const struct integ_service *s = services[i];
        for (size_t k = 0; k < s->n_actions; k++) {
            const struct integ_action *a = &s->actions[k];
            const struct asl_known_action *known = NULL;
            for (size_t j = 0; j < asl_n_known_actions; j++) {
                if (strcmp(asl_known_actions[j].service, s->name) == 0 &&
                    strcmp(asl_known_actions[j].action, a->name) == 0)
                    known = &asl_known_actions[j];
            }
            tl_check(&T, known != NULL, "tables", "%s:%s is not in asl_known_actions", s->name,
                     a->name);
            if (known == NULL)
                continue;
            seen++;
            tl_check(&T, (a->patterns & INTEG_RR) != 0, "tables", "%s:%s lacks request-response",
                     s->name, a->name);
            tl_check(&T, known->sync == ((a->patterns & INTEG_SYNC) != 0), "tables",
                     "%s:%s: .sync differs", s->name, a->name);
            tl_check(&T, !(a->patterns & INTEG_SYNC) || (a->poll != NULL && a->job != NULL &&
                                                          a->state_path != NULL),
                     "tables", "%s:%s: .sync without poll, job or state", s->name, a->name);
        }
    }
    tl_check(&T, seen == asl_n_known_actions, "tables",
             "asl_known_actions has %zu rows, the integrations %zu actions", asl_n_known_actions,
             seen);
}

int main(void)
{
    xalloc_install_jansson();
    const char *files[] = {DIR "/naming.test", DIR "/request.test", DIR "/errors.test"};
    void (*fns[])(const struct tl_block *, void *) = {naming_block, request_block,
                                                      error_block};
    for (size_t i = 0; i < ARRAY_LEN(files); i++) {
        if (tl_each_block(files[i], fns[i], NULL) != 0)
            tl_check(&T, false, files[i], "cannot read");
    }
    token_checks();
    table_checks();
    return tl_finish(&T);
}
