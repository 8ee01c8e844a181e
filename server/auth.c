/* server/auth.c - sfnd's --auth sigv4: each request's Authorization header checked as AWS
 * checks it (AWS4-HMAC-SHA256, credential scope DATE/REGION/states/aws4_request, host and
 * x-amz-date signed, the payload hashed, 15 minutes of clock skew). The expected signature is
 * computed by the transport's signer (integrations/aws/sigv4.c, aws_sigv4_sign) over a
 * request rebuilt from the headers the client says it signed, so that there is one SigV4
 * implementation. Errors follow AWS's JSON-protocol services (sfnd.conf(5), SECURITY of
 * sfnd(8)). Nothing here prints; secrets and signatures never enter a message. */
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "integrations/aws/aws.h"
#include "server/config.h"
#include "util/buf.h"
#include "util/xalloc.h"

#define SERVICE "states"  /* api.md 1.1: the signing name of Step Functions */
#define SKEW_MAX 900      /* AWS: a request dated more than 15 minutes off is refused */
#define ALGORITHM "AWS4-HMAC-SHA256"

struct auth {
    char *region;           /* owned */
    struct aws_creds *keys; /* owned: id and secret of each configured key */
    size_t n_keys;
};

struct auth *auth_new(const struct sfnd_config *c)
{
    struct auth *a = xcalloc(1, sizeof(*a));
    a->region = xstrdup(c->region);
    a->keys = xcalloc(c->n_keys + 1, sizeof(*a->keys));
    for (size_t i = 0; i < c->n_keys; i++) {
        a->keys[i].access_key_id = xstrdup(c->keys[i].id);
        a->keys[i].secret_access_key = xstrdup(c->keys[i].secret);
    }
    a->n_keys = c->n_keys;
    return a;
}

void auth_free(struct auth *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < a->n_keys; i++)
        aws_creds_release(&a->keys[i]);
    free(a->keys);
    free(a->region);
    free(a);
}

static int fail(struct auth_fail *out, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(struct auth_fail *out, int status, const char *code, const char *fmt, ...)
{
    out->status = status;
    out->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->message, sizeof(out->message), fmt, ap);
    va_end(ap);
    return -1;
}

/* The parts of "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...". */
struct authz {
    char *credential;     /* owned: AKID/DATE/REGION/SERVICE/aws4_request */
    char *signed_headers; /* owned: "host;x-amz-date" */
    char *signature;      /* owned: 64 hex digits */
};

static void authz_release(struct authz *z)
{
    free(z->credential);
    free(z->signed_headers);
    free(z->signature);
}

/* Splits the header's parameters (comma separated, spaces allowed around them). */
static int authz_parse(const char *v, struct authz *z, struct auth_fail *out)
{
    memset(z, 0, sizeof(*z));
    size_t alg = strlen(ALGORITHM);
    if (strncmp(v, ALGORITHM, alg) != 0 || (v[alg] != ' ' && v[alg] != '\0'))
        return fail(out, 400, "IncompleteSignatureException",
                    "Authorization header requires the algorithm '" ALGORITHM "'");
    const char *p = v + alg;
    while (*p != '\0') {
        while (*p == ' ' || *p == ',')
            p++;
        if (*p == '\0')
            break;
        const char *end = strchr(p, ',');
        if (end == NULL)
            end = p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        size_t vlen = 0;
        char **field = NULL;
        if (eq != NULL) {
            size_t klen = (size_t)(eq - p);
            if (klen == 10 && strncmp(p, "Credential", 10) == 0)
                field = &z->credential;
            else if (klen == 13 && strncmp(p, "SignedHeaders", 13) == 0)
                field = &z->signed_headers;
            else if (klen == 9 && strncmp(p, "Signature", 9) == 0)
                field = &z->signature;
            vlen = (size_t)(end - eq - 1);
            while (vlen > 0 && eq[vlen] == ' ')
                vlen--;
        }
        if (field != NULL && *field == NULL)
            *field = xstrndup(eq + 1, vlen);
        p = end;
    }
    /* AWS lists every missing parameter; so do we */
    if (z->credential == NULL || z->signed_headers == NULL || z->signature == NULL)
        return fail(out, 400, "IncompleteSignatureException", "%s%s%s",
                    z->credential == NULL ? "Authorization header requires 'Credential' "
                                            "parameter. " : "",
                    z->signed_headers == NULL ? "Authorization header requires "
                                                "'SignedHeaders' parameter. " : "",
                    z->signature == NULL ? "Authorization header requires 'Signature' "
                                           "parameter." : "");
    return 0;
}

/* "20150830T123600Z" to Unix seconds; -1 when malformed. */
static time_t amz_date_parse(const char *s)
{
    if (strlen(s) != 16 || s[8] != 'T' || s[15] != 'Z')
        return -1;
    int f[6];
    static const int at[6] = {0, 4, 6, 9, 11, 13};
    static const int len[6] = {4, 2, 2, 2, 2, 2};
    for (int i = 0; i < 6; i++) {
        int v = 0;
        for (int j = 0; j < len[i]; j++) {
            char ch = s[at[i] + j];
            if (ch < '0' || ch > '9')
                return -1;
            v = v * 10 + (ch - '0');
        }
        f[i] = v;
    }
    if (f[1] < 1 || f[1] > 12 || f[2] < 1 || f[2] > 31 || f[3] > 23 || f[4] > 59 || f[5] > 60)
        return -1;
    struct tm tm = {0};
    tm.tm_year = f[0] - 1900;
    tm.tm_mon = f[1] - 1;
    tm.tm_mday = f[2];
    tm.tm_hour = f[3];
    tm.tm_min = f[4];
    tm.tm_sec = f[5];
    return timegm(&tm);
}

static void amz_date_format(time_t t, char out[17])
{
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL)
        memset(&tm, 0, sizeof(tm));
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

/* Whether `name` (any case) is in the ';'-separated lower-case list. */
static bool in_list(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; *p != '\0';) {
        const char *end = strchr(p, ';');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        if (len == n && strncasecmp(p, name, n) == 0)
            return true;
        if (end == NULL)
            break;
        p = end + 1;
    }
    return false;
}

/* Checks the credential scope and the date; finds the key. */
static int check_scope(const struct auth *a, const struct server_req *req, const struct authz *z,
                       time_t now, const struct aws_creds **key, time_t *signed_at,
                       struct auth_fail *out)
{
    char *copy = xstrdup(z->credential);
    char *parts[5] = {0};
    int n = 0;
    for (char *p = copy; n < 5;) {
        parts[n++] = p;
        char *slash = strchr(p, '/');
        if (slash == NULL)
            break;
        *slash = '\0';
        p = slash + 1;
    }
    int rc = 0;
    if (n != 5 || strchr(parts[4], '/') != NULL || parts[0][0] == '\0' ||
        strcmp(parts[4], "aws4_request") != 0 || strlen(parts[1]) != 8) {
        rc = fail(out, 400, "IncompleteSignatureException",
                  "Credential must have exactly 5 slash-delimited elements, e.g. "
                  "keyid/date/region/service/aws4_request");
    } else if (strcmp(parts[3], SERVICE) != 0) {
        rc = fail(out, 403, "InvalidSignatureException",
                  "Credential should be scoped to correct service: '" SERVICE "'.");
    } else if (strcmp(parts[2], a->region) != 0) {
        rc = fail(out, 403, "InvalidSignatureException",
                  "Credential should be scoped to a valid region, not '%.64s'.", parts[2]);
    } else if (!in_list(z->signed_headers, "host")) {
        rc = fail(out, 400, "IncompleteSignatureException",
                  "'Host' must be a 'SignedHeader' in the AWS Authorization.");
    }
    const char *date = server_req_header(req, "x-amz-date");
    if (rc == 0 && (date == NULL || !in_list(z->signed_headers, "x-amz-date")))
        rc = fail(out, 400, "IncompleteSignatureException",
                  "Authorization header requires existence of a signed 'X-Amz-Date' header.");
    time_t t = rc == 0 ? amz_date_parse(date) : 0;
    if (rc == 0 && t == -1)
        rc = fail(out, 400, "IncompleteSignatureException",
                  "Date must be in ISO-8601 'basic format'. Got '%.32s'.", date);
    if (rc == 0 && strncmp(parts[1], date, 8) != 0)
        rc = fail(out, 403, "InvalidSignatureException",
                  "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of "
                  "date from HTTP: '%.8s' != '%.8s'", parts[1], date);
    if (rc == 0 && (t < now - SKEW_MAX || t > now + SKEW_MAX)) {
        char d_now[17], d_bound[17];
        amz_date_format(now, d_now);
        if (t < now) {
            amz_date_format(now - SKEW_MAX, d_bound);
            rc = fail(out, 403, "InvalidSignatureException",
                      "Signature expired: %.16s is now earlier than %s (%s - 15 min.)", date,
                      d_bound, d_now);
        } else {
            amz_date_format(now + SKEW_MAX, d_bound);
            rc = fail(out, 403, "InvalidSignatureException",
                      "Signature not yet current: %.16s is still later than %s (%s + 15 min.)",
                      date, d_bound, d_now);
        }
    }
    if (rc == 0) {
        *key = NULL;
        for (size_t i = 0; i < a->n_keys; i++) {
            if (strcmp(a->keys[i].access_key_id, parts[0]) == 0)
                *key = &a->keys[i];
        }
        /* no session tokens are configured: a request carrying one is not ours either */
        if (*key == NULL || server_req_header(req, "x-amz-security-token") != NULL)
            rc = fail(out, 403, "UnrecognizedClientException",
                      "The security token included in the request is invalid.");
    }
    *signed_at = t;
    free(copy);
    return rc;
}

int auth_check(const struct auth *a, const struct server_req *req, time_t now,
               struct auth_fail *out)
{
    const char *hv = server_req_header(req, "authorization");
    if (hv == NULL)
        return fail(out, 403, "MissingAuthenticationTokenException",
                    "Missing Authentication Token");
    struct authz z;
    if (authz_parse(hv, &z, out) != 0) {
        authz_release(&z);
        return -1;
    }
    const struct aws_creds *key = NULL;
    time_t signed_at = 0;
    if (check_scope(a, req, &z, now, &key, &signed_at, out) != 0) {
        authz_release(&z);
        return -1;
    }
    /* the request as the client signed it: only the headers it lists; the signer adds
     * X-Amz-Date (from signed_at) and x-amz-content-sha256 (from the body) itself */
    const char *url = server_req_url(req);
    const char *q = strchr(url, '?');
    char *path = q != NULL ? xstrndup(url, (size_t)(q - url)) : xstrdup(url);
    struct aws_request r;
    aws_request_init(&r, server_req_method(req), path);
    free(path);
    if (q != NULL)
        buf_puts(&r.query, q + 1);
    size_t pos = 0;
    const char *value = NULL;
    bool content_sha = false;
    for (const char *name; (name = server_req_header_each(req, &pos, &value)) != NULL;) {
        if (!in_list(z.signed_headers, name))
            continue;
        if (strcasecmp(name, "x-amz-date") == 0)
            continue;
        if (strcasecmp(name, "x-amz-content-sha256") == 0) {
            content_sha = true;
            continue;
        }
        aws_request_header_add(&r, name, value);
    }
    size_t blen = 0;
    const char *body = server_req_body(req, &blen);
    aws_request_body_set(&r, body, blen);
    struct aws_sigv4_params p = {
        .creds = key,
        .region = a->region,
        .service = SERVICE,
        .now = signed_at,
        .style = AWS_SIGV4_HEADER,
        .normalize_path = true,
        .content_sha256 = content_sha,
    };
    struct aws_sigv4_out o;
    struct err err = ERR_INIT;
    int rc = aws_sigv4_sign(&r, &p, &o, &err);
    bool match = rc == 0 && strlen(z.signature) == 64 &&
                 strcmp(o.signed_headers, z.signed_headers) == 0 &&
                 CRYPTO_memcmp(o.signature, z.signature, 64) == 0;
    if (content_sha && match) { /* the hash the client sent is the body's */
        const char *sent = server_req_header(req, "x-amz-content-sha256");
        const char *ours = aws_request_header_get(&r, "x-amz-content-sha256");
        match = sent != NULL && ours != NULL && strcmp(sent, ours) == 0;
    }
    aws_sigv4_out_release(&o);
    aws_request_release(&r);
    err_clear(&err);
    authz_release(&z);
    if (!match)
        return fail(out, 403, "InvalidSignatureException",
                    "The request signature we calculated does not match the signature you "
                    "provided. Check your AWS Secret Access Key and signing method. Consult "
                    "the service documentation for details.");
    return 0;
}
