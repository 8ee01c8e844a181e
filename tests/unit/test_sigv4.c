/* tests/unit/test_sigv4.c - SigV4 signing checked stage by stage (integrations.md §7.5).
 *
 * 1. Every case folder of AWS's public test suite, read in place from ../shared/sigv4
 *    (relative to the repository root, where tests run; never copied into the repo), in both
 *    styles: header-* and query-* canonical request, string to sign, signature and signed
 *    request, byte for byte.
 * 2. Every folder of tests/sigv4/botocore (written by tests/sigv4/gen_botocore.py with
 *    botocore's own signer for EMR, Athena, EMR on EKS and EMR Serverless): creq.txt, sts.txt,
 *    signature.txt, authorization.txt; and the same request rebuilt with our AWS JSON 1.1 /
 *    REST-JSON builders from context.json's "build" must equal request.txt. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "integrations/aws/aws.h"
#include "tests/unit/testlib.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/xalloc.h"

#define SUITE_DIR "../shared/sigv4"
#define BOTOCORE_DIR "tests/sigv4/botocore"

static struct tl T;

static char *file_read(const char *dir, const char *name, size_t *len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return tl_read_file(path, len);
}

/* Parses a raw HTTP request as the suite writes it: request line, "Name:value" lines (a line
 * starting with whitespace continues the previous value, kept verbatim after a '\n'), a blank
 * line, the body. Returns 0 or -1. */
static int request_parse(struct aws_request *r, const char *text, size_t len)
{
    const char *end = text + len;
    const char *eol = memchr(text, '\n', len);
    if (eol == NULL)
        return -1;
    const char *sp1 = memchr(text, ' ', (size_t)(eol - text));
    const char *sp2 = eol;
    while (sp2 > text && sp2[-1] != ' ')
        sp2--;
    if (sp1 == NULL || sp2 <= sp1 + 1)
        return -1;
    char *method = xstrndup(text, (size_t)(sp1 - text));
    char *target = xstrndup(sp1 + 1, (size_t)(sp2 - 1 - (sp1 + 1)));
    char *q = strchr(target, '?');
    if (q != NULL)
        *q = '\0';
    aws_request_init(r, method, target);
    if (q != NULL)
        buf_puts(&r->query, q + 1);
    free(method);
    free(target);
    const char *p = eol + 1;
    while (p < end) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        if (e == NULL)
            e = end;
        if (e == p) {
            p = e + 1;
            break;
        }
        if ((*p == ' ' || *p == '\t') && r->nheaders > 0) {
            struct aws_header *h = &r->headers[r->nheaders - 1];
            char *v = xasprintf("%s\n%.*s", h->value, (int)(e - p), p);
            free(h->value);
            h->value = v;
        } else {
            const char *colon = memchr(p, ':', (size_t)(e - p));
            if (colon == NULL)
                return -1;
            char *name = xstrndup(p, (size_t)(colon - p));
            char *value = xstrndup(colon + 1, (size_t)(e - colon - 1));
            aws_request_header_add(r, name, value);
            free(name);
            free(value);
        }
        p = e + 1;
    }
    if (p < end)
        aws_request_body_set(r, p, (size_t)(end - p));
    return 0;
}

/* The request as the suite prints a signed one. */
static char *request_print(const struct aws_request *r)
{
    struct buf b = BUF_INIT;
    buf_printf(&b, "%s %s", r->method, r->path);
    if (r->query.len > 0)
        buf_printf(&b, "?%s", r->query.data);
    buf_puts(&b, " HTTP/1.1\n");
    for (size_t i = 0; i < r->nheaders; i++)
        buf_printf(&b, "%s:%s\n", r->headers[i].name, r->headers[i].value);
    buf_putc(&b, '\n');
    if (r->body.len > 0)
        buf_add(&b, r->body.data, r->body.len);
    buf_cstr(&b);
    return buf_detach(&b);
}

static time_t timestamp_parse(const char *s)
{
    /* "2015-08-30T12:36:00Z" */
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (strlen(s) != 20)
        return (time_t)-1;
    tm.tm_year = (int)strtol(s, NULL, 10) - 1900;
    tm.tm_mon = (int)strtol(s + 5, NULL, 10) - 1;
    tm.tm_mday = (int)strtol(s + 8, NULL, 10);
    tm.tm_hour = (int)strtol(s + 11, NULL, 10);
    tm.tm_min = (int)strtol(s + 14, NULL, 10);
    tm.tm_sec = (int)strtol(s + 17, NULL, 10);
    return timegm(&tm);
}

struct ctx {
    json_t *doc;           /* context.json */
    struct aws_creds creds; /* borrowed strings from doc */
    struct aws_sigv4_params p;
};

static int ctx_load(struct ctx *c, const char *dir, const char *where)
{
    memset(c, 0, sizeof(*c));
    size_t len;
    char *text = file_read(dir, "context.json", &len);
    if (text == NULL) {
        tl_check(&T, false, where, "cannot read context.json");
        return -1;
    }
    struct err err = ERR_INIT;
    c->doc = json_parse(text, len, true, &err);
    free(text);
    if (c->doc == NULL) {
        tl_check(&T, false, where, "context.json: %s", err.cause);
        err_clear(&err);
        return -1;
    }
    json_t *cr = json_object_get(c->doc, "credentials");
    c->creds.access_key_id = (char *)json_string_value(json_object_get(cr, "access_key_id"));
    c->creds.secret_access_key =
        (char *)json_string_value(json_object_get(cr, "secret_access_key"));
    c->creds.session_token = (char *)json_string_value(json_object_get(cr, "token"));
    c->p.creds = &c->creds;
    c->p.region = json_string_value(json_object_get(c->doc, "region"));
    c->p.service = json_string_value(json_object_get(c->doc, "service"));
    c->p.now = timestamp_parse(json_string_value(json_object_get(c->doc, "timestamp")));
    c->p.normalize_path = json_is_true(json_object_get(c->doc, "normalize"));
    c->p.content_sha256 = json_is_true(json_object_get(c->doc, "sign_body"));
    c->p.omit_session_token = json_is_true(json_object_get(c->doc, "omit_session_token"));
    json_t *exp = json_object_get(c->doc, "expiration_in_seconds");
    c->p.expires = json_is_integer(exp) ? (unsigned)json_integer_value(exp) : 3600;
    return 0;
}

static void expect_file(const char *dir, const char *name, const char *got, const char *where)
{
    char *want = file_read(dir, name, NULL);
    char w[512];
    snprintf(w, sizeof(w), "%s/%s", where, name);
    if (want == NULL) {
        tl_check(&T, false, w, "cannot read expected file");
        return;
    }
    bool ok = got != NULL && strcmp(got, want) == 0;
    tl_check(&T, ok, w, "\n--- want\n%s\n--- got\n%s\n---", want, got != NULL ? got : "(null)");
    free(want);
}

static int request_load(struct aws_request *r, const char *dir, const char *where)
{
    size_t len;
    char *text = file_read(dir, "request.txt", &len);
    int rc = text != NULL ? request_parse(r, text, len) : -1;
    free(text);
    if (rc != 0)
        tl_check(&T, false, where, "cannot parse request.txt");
    return rc;
}

/* One case of AWS's suite in one style: the four files <style>-*.txt. */
static void suite_case_style(const char *dir, const char *name, enum aws_sigv4_style style)
{
    const char *pre = style == AWS_SIGV4_HEADER ? "header" : "query";
    char where[512];
    snprintf(where, sizeof(where), "%s/%s", name, pre);
    struct ctx c;
    if (ctx_load(&c, dir, where) != 0)
        return;
    c.p.style = style;
    struct aws_request r;
    if (request_load(&r, dir, where) != 0) {
        json_decref(c.doc);
        return;
    }
    struct aws_sigv4_out out;
    struct err err = ERR_INIT;
    int rc = aws_sigv4_sign(&r, &c.p, &out, &err);
    tl_check(&T, rc == 0, where, "sign failed: %s", err.cause != NULL ? err.cause : "");
    if (rc == 0) {
        char file[64];
        snprintf(file, sizeof(file), "%s-canonical-request.txt", pre);
        expect_file(dir, file, out.canonical_request, where);
        snprintf(file, sizeof(file), "%s-string-to-sign.txt", pre);
        expect_file(dir, file, out.string_to_sign, where);
        snprintf(file, sizeof(file), "%s-signature.txt", pre);
        expect_file(dir, file, out.signature, where);
        snprintf(file, sizeof(file), "%s-signed-request.txt", pre);
        char *signed_req = request_print(&r);
        expect_file(dir, file, signed_req, where);
        free(signed_req);
    }
    err_clear(&err);
    aws_sigv4_out_release(&out);
    aws_request_release(&r);
    json_decref(c.doc);
}

/* Our builders must produce the request botocore signed (User-Agent aside: we send our own,
 * and it is never signed). */
static void botocore_build_check(const char *dir, const char *name, struct ctx *c,
                                 const struct aws_request *want)
{
    char where[512];
    snprintf(where, sizeof(where), "%s/build", name);
    json_t *b = json_object_get(c->doc, "build");
    const char *proto = json_string_value(json_object_get(b, "protocol"));
    const char *host = aws_request_header_get(want, "Host");
    if (proto == NULL || host == NULL) {
        tl_check(&T, false, where, "context.json has no build.protocol or request no Host");
        return;
    }
    struct aws_request r;
    if (strcmp(proto, "json") == 0) {
        const char *target = json_string_value(json_object_get(b, "target"));
        aws_request_init_json11(&r, host, target != NULL ? target : "", want->body.data,
                                want->body.len);
    } else {
        const char *method = json_string_value(json_object_get(b, "method"));
        const char *path = json_string_value(json_object_get(b, "path"));
        aws_request_init_rest_json(&r, method != NULL ? method : "", host,
                                   path != NULL ? path : "", want->body.data, want->body.len);
        size_t i;
        json_t *pair;
        json_array_foreach(json_object_get(b, "query"), i, pair)
        {
            aws_request_query_add(&r, json_string_value(json_array_get(pair, 0)),
                                  json_string_value(json_array_get(pair, 1)));
        }
    }
    struct aws_request w2;
    aws_request_init(&w2, want->method, want->path);
    buf_add(&w2.query, want->query.data != NULL ? want->query.data : "", want->query.len);
    for (size_t i = 0; i < want->nheaders; i++) {
        if (strcasecmp(want->headers[i].name, "User-Agent") != 0)
            aws_request_header_add(&w2, want->headers[i].name, want->headers[i].value);
    }
    aws_request_body_set(&w2, want->body.data, want->body.len);
    char *got_text = request_print(&r);
    char *want_text = request_print(&w2);
    tl_check(&T, strcmp(got_text, want_text) == 0, where, "\n--- want\n%s\n--- got\n%s\n---",
             want_text, got_text);
    free(got_text);
    free(want_text);

    /* ... and sign to the same signature. */
    struct aws_sigv4_out out;
    struct err err = ERR_INIT;
    c->p.style = AWS_SIGV4_HEADER;
    if (aws_sigv4_sign(&r, &c->p, &out, &err) == 0)
        expect_file(dir, "signature.txt", out.signature, where);
    else
        tl_check(&T, false, where, "sign failed: %s", err.cause);
    err_clear(&err);
    aws_sigv4_out_release(&out);
    aws_request_release(&w2);
    aws_request_release(&r);
}

static void botocore_case(const char *dir, const char *name)
{
    struct ctx c;
    if (ctx_load(&c, dir, name) != 0)
        return;
    c.p.style = AWS_SIGV4_HEADER;
    struct aws_request r;
    if (request_load(&r, dir, name) != 0) {
        json_decref(c.doc);
        return;
    }
    botocore_build_check(dir, name, &c, &r);
    struct aws_sigv4_out out;
    struct err err = ERR_INIT;
    int rc = aws_sigv4_sign(&r, &c.p, &out, &err);
    tl_check(&T, rc == 0, name, "sign failed: %s", err.cause != NULL ? err.cause : "");
    if (rc == 0) {
        expect_file(dir, "creq.txt", out.canonical_request, name);
        expect_file(dir, "sts.txt", out.string_to_sign, name);
        expect_file(dir, "signature.txt", out.signature, name);
        expect_file(dir, "authorization.txt", out.authorization, name);
        /* The request carries what was computed. */
        const char *auth = aws_request_header_get(&r, "Authorization");
        tl_check(&T, auth != NULL && strcmp(auth, out.authorization) == 0, name,
                 "Authorization header not set");
        const char *tok = aws_request_header_get(&r, "X-Amz-Security-Token");
        bool tok_ok = c.creds.session_token == NULL
                          ? tok == NULL
                          : tok != NULL && strcmp(tok, c.creds.session_token) == 0;
        tl_check(&T, tok_ok, name, "X-Amz-Security-Token header wrong");
    }
    /* Signing again (a retry) replaces the earlier signature headers. */
    size_t nheaders = r.nheaders;
    struct aws_sigv4_out again;
    rc = aws_sigv4_sign(&r, &c.p, &again, &err);
    tl_check(&T, rc == 0 && r.nheaders == nheaders && out.signature[0] != '\0' &&
                     strcmp(again.signature, out.signature) == 0,
             name, "re-signing changed the request");
    err_clear(&err);
    aws_sigv4_out_release(&again);
    aws_sigv4_out_release(&out);
    aws_request_release(&r);
    json_decref(c.doc);
}

/* Calls fn(dir, name) for each sub-directory of `root`, in name order. Returns the count. */
static int each_case(const char *root, void (*fn)(const char *dir, const char *name, void *),
                     void *arg)
{
    struct dirent **names;
    int n = scandir(root, &names, NULL, alphasort);
    if (n < 0)
        return -1;
    int count = 0;
    for (int i = 0; i < n; i++) {
        char dir[4096];
        snprintf(dir, sizeof(dir), "%s/%s", root, names[i]->d_name);
        struct stat st;
        if (names[i]->d_name[0] != '.' && stat(dir, &st) == 0 && S_ISDIR(st.st_mode)) {
            fn(dir, names[i]->d_name, arg);
            count++;
        }
        free(names[i]);
    }
    free(names);
    return count;
}

static void on_suite_case(const char *dir, const char *name, void *arg)
{
    (void)arg;
    suite_case_style(dir, name, AWS_SIGV4_HEADER);
    suite_case_style(dir, name, AWS_SIGV4_QUERY);
}

static void on_botocore_case(const char *dir, const char *name, void *arg)
{
    (void)arg;
    botocore_case(dir, name);
}

/* Small tables for the pieces the suites reach only indirectly. */
static void test_pieces(void)
{
    static const struct {
        const char *path;
        bool normalize;
        const char *want;
    } uris[] = {
        {"", true, "/"},
        {"/", true, "/"},
        {"/a/b/../c/./d/", true, "/a/c/d/"},
        {"/a/..", true, "/"},
        {"/..", true, "/"},
        {"/a%2Fb", true, "/a%252Fb"},       /* non-S3 double encoding */
        {"/a%2Fb", false, "/a%252Fb"},
        {"/a b", false, "/a%20b"},
        {"/a/./b", false, "/a/./b"},
        {"/~user/x=y", true, "/~user/x%3Dy"},
    };
    for (size_t i = 0; i < ARRAY_LEN(uris); i++) {
        struct buf b = BUF_INIT;
        aws_sigv4_canonical_uri(&b, uris[i].path, uris[i].normalize);
        tl_check(&T, strcmp(buf_cstr(&b), uris[i].want) == 0, "canonical_uri",
                 "'%s' (%d): want '%s' got '%s'", uris[i].path, uris[i].normalize, uris[i].want,
                 b.data);
        buf_release(&b);
    }
    static const struct {
        const char *query;
        const char *want;
    } queries[] = {
        {"", ""},
        {"b=2&a=1", "a=1&b=2"},
        {"a=2&a=1&a=10", "a=1&a=10&a=2"},
        {"flag&x=", "flag=&x="},
        {"a=%7e%2f+", "a=~%2F%2B"},     /* decoded then encoded; '+' is not a space */
        {"a=%zz&&b", "a=%25zz&b="},     /* a broken escape is a literal '%' */
        {"%41=b%20c", "A=b%20c"},
    };
    for (size_t i = 0; i < ARRAY_LEN(queries); i++) {
        struct buf b = BUF_INIT;
        aws_sigv4_canonical_query(&b, queries[i].query, strlen(queries[i].query));
        tl_check(&T, strcmp(buf_cstr(&b), queries[i].want) == 0, "canonical_query",
                 "'%s': want '%s' got '%s'", queries[i].query, queries[i].want, b.data);
        buf_release(&b);
    }
    /* The signing key of AWS's documentation example (General Reference, "Examples of how to
     * derive a signing key for Signature Version 4"). */
    unsigned char key[32];
    aws_sigv4_signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1",
                          "iam", key);
    char hex[65];
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = digits[key[i] >> 4];
        hex[2 * i + 1] = digits[key[i] & 15];
    }
    hex[64] = '\0';
    tl_check(&T,
             strcmp(hex, "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d") == 0,
             "signing_key", "got %s", hex);

    /* Refusals: no Host, no credentials. */
    struct aws_request r;
    aws_request_init(&r, "GET", "/");
    char akid[] = "AKID";
    char secret[] = "SECRETKEY";
    struct aws_creds cr = {akid, secret, NULL, 0, NULL};
    struct aws_sigv4_params p = {&cr, "us-east-1", "athena", 0, AWS_SIGV4_HEADER, true,
                                 false, false, 0};
    struct err err = ERR_INIT;
    struct aws_sigv4_out out;
    tl_check(&T, aws_sigv4_sign(&r, &p, &out, &err) == -1 &&
                     strcmp(err.name, AWS_ERR_CLIENT) == 0,
             "sign without host", "expected %s", AWS_ERR_CLIENT);
    aws_sigv4_out_release(&out);
    err_clear(&err);
    aws_request_header_add(&r, "Host", "example.com");
    cr.secret_access_key = NULL;
    tl_check(&T, aws_sigv4_sign(&r, &p, NULL, &err) == -1, "sign without secret",
             "expected failure");
    err_clear(&err);
    cr.secret_access_key = secret;
    p.style = AWS_SIGV4_QUERY;
    p.expires = 604801; /* SigV4 presigned URLs live at most 7 days */
    tl_check(&T, aws_sigv4_sign(&r, &p, NULL, &err) == -1 && r.query.len == 0,
             "presign beyond 7 days", "expected failure, query untouched");
    err_clear(&err);
    aws_request_release(&r);
}

int main(void)
{
    xalloc_install_jansson();
    test_pieces();
    const char *suite = getenv("SFN_SIGV4_SUITE");
    if (suite == NULL)
        suite = SUITE_DIR;
    int n = each_case(suite, on_suite_case, NULL);
    tl_check(&T, n >= 30, "suite", "expected AWS's SigV4 suite (30+ cases) in %s, found %d",
             suite, n);
    n = each_case(BOTOCORE_DIR, on_botocore_case, NULL);
    tl_check(&T, n >= 10, "botocore", "expected botocore cases in %s, found %d", BOTOCORE_DIR,
             n);
    return tl_finish(&T);
}
