/* integrations/aws/sigv4.c - AWS requests as they go on the wire and their Signature Version 4
 * (integrations.md §7.5): canonical request, string to sign, signing key, signature, in the
 * Authorization-header and the presigned-query styles. Checked byte for byte against AWS's
 * public test suite (../shared/sigv4) and botocore's signer (tests/sigv4/botocore). */
#include "integrations/aws/aws.h"

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "util/xalloc.h"

#define SIGV4_ALGORITHM "AWS4-HMAC-SHA256"

/* ---- Requests -------------------------------------------------------------------------------- */

void aws_request_init(struct aws_request *r, const char *method, const char *path)
{
    memset(r, 0, sizeof(*r));
    r->method = xstrdup(method);
    r->path = xstrdup(path);
    buf_init(&r->query);
    buf_init(&r->body);
}

void aws_request_release(struct aws_request *r)
{
    free(r->method);
    free(r->path);
    buf_release(&r->query);
    for (size_t i = 0; i < r->nheaders; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    free(r->headers);
    buf_release(&r->body);
    memset(r, 0, sizeof(*r));
}

void aws_request_header_add(struct aws_request *r, const char *name, const char *value)
{
    if (r->nheaders == r->capheaders) {
        r->capheaders = r->capheaders ? r->capheaders * 2 : 8;
        r->headers = xrealloc(r->headers, r->capheaders * sizeof(*r->headers));
    }
    r->headers[r->nheaders].name = xstrdup(name);
    r->headers[r->nheaders].value = xstrdup(value);
    r->nheaders++;
}

void aws_request_header_del(struct aws_request *r, const char *name)
{
    size_t out = 0;
    for (size_t i = 0; i < r->nheaders; i++) {
        if (strcasecmp(r->headers[i].name, name) == 0) {
            free(r->headers[i].name);
            free(r->headers[i].value);
            continue;
        }
        r->headers[out++] = r->headers[i];
    }
    r->nheaders = out;
}

void aws_request_header_set(struct aws_request *r, const char *name, const char *value)
{
    aws_request_header_del(r, name);
    aws_request_header_add(r, name, value);
}

const char *aws_request_header_get(const struct aws_request *r, const char *name)
{
    for (size_t i = 0; i < r->nheaders; i++) {
        if (strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    }
    return NULL;
}

void aws_request_query_add(struct aws_request *r, const char *name, const char *value)
{
    if (r->query.len > 0)
        buf_putc(&r->query, '&');
    aws_uri_encode(&r->query, name, strlen(name), false);
    buf_putc(&r->query, '=');
    aws_uri_encode(&r->query, value, strlen(value), false);
}

void aws_request_body_set(struct aws_request *r, const void *data, size_t len)
{
    buf_reset(&r->body);
    if (len > 0)
        buf_add(&r->body, data, len);
}

void aws_request_init_json11(struct aws_request *r, const char *host, const char *target,
                             const char *body, size_t len)
{
    aws_request_init(r, "POST", "/");
    aws_request_header_add(r, "Host", host);
    aws_request_header_add(r, "X-Amz-Target", target);
    aws_request_header_add(r, "Content-Type", "application/x-amz-json-1.1");
    aws_request_body_set(r, body, len);
}

void aws_request_init_rest_json(struct aws_request *r, const char *method, const char *host,
                                const char *path, const char *body, size_t len)
{
    aws_request_init(r, method, path);
    aws_request_header_add(r, "Host", host);
    if (len > 0)
        aws_request_header_add(r, "Content-Type", "application/json");
    aws_request_body_set(r, body, len);
}

/* ---- Encoding -------------------------------------------------------------------------------- */

static bool is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~';
}

void aws_uri_encode(struct buf *b, const char *s, size_t n, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_unreserved(c) || (keep_slash && c == '/')) {
            buf_putc(b, (char)c);
            continue;
        }
        char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
        buf_add(b, esc, 3);
    }
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Appends s[0..n) with %XX sequences decoded; a '%' not followed by two hex digits is kept. */
static void uri_decode(struct buf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n) {
            int hi = hex_value(s[i + 1]);
            int lo = hex_value(s[i + 2]);
            if (hi >= 0 && lo >= 0) {
                buf_putc(b, (char)(hi * 16 + lo));
                i += 2;
                continue;
            }
        }
        buf_putc(b, s[i]);
    }
}

static void hex_encode(const unsigned char *d, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[2 * n] = '\0';
}

/* ---- Hashes (OpenSSL) ------------------------------------------------------------------------ */

void aws_sha256_hex(const void *data, size_t n, char hex[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    /* EVP_Digest fails only when out of memory or with a broken provider: both fatal. */
    int ok = EVP_Digest(data, n, md, &mdlen, EVP_sha256(), NULL);
    if (ok != 1 || mdlen != 32)
        abort();
    hex_encode(md, 32, hex);
}

static void hmac_sha256(const void *key, size_t keylen, const void *msg, size_t n,
                        unsigned char out[32])
{
    unsigned int len = 0;
    unsigned char *r = HMAC(EVP_sha256(), key, (int)keylen, msg, n, out, &len);
    if (r == NULL || len != 32)
        abort();
}

void aws_sigv4_signing_key(const char *secret, const char *date, const char *region,
                           const char *service, unsigned char key[32])
{
    struct buf k = BUF_INIT;
    buf_puts(&k, "AWS4");
    buf_puts(&k, secret);
    unsigned char a[32];
    unsigned char b[32];
    hmac_sha256(k.data, k.len, date, strlen(date), a);
    hmac_sha256(a, 32, region, strlen(region), b);
    hmac_sha256(b, 32, service, strlen(service), a);
    hmac_sha256(a, 32, "aws4_request", strlen("aws4_request"), key);
    memset(k.data, 0, k.len);
    memset(a, 0, sizeof(a));
    memset(b, 0, sizeof(b));
    buf_release(&k);
}

/* ---- Canonical URI --------------------------------------------------------------------------- */

/* botocore's remove_dot_segments (RFC 3986 §5.2.4, plus repeated '/' collapsed as AWS
 * requires): segments "" and "." dropped, ".." drops the previous one; the leading '/' is
 * kept, and the trailing one when something is left. */
static void path_normalize(struct buf *out, const char *path)
{
    size_t n = strlen(path);
    size_t cap = n / 2 + 2;
    const char **seg = xmalloc(cap * sizeof(*seg));
    size_t *seglen = xmalloc(cap * sizeof(*seglen));
    size_t nseg = 0;
    const char *p = path;
    const char *end = path + n;
    while (p <= end) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        const char *e = slash != NULL ? slash : end;
        size_t l = (size_t)(e - p);
        if (l == 2 && p[0] == '.' && p[1] == '.') {
            if (nseg > 0)
                nseg--;
        } else if (l > 0 && !(l == 1 && p[0] == '.')) {
            assert(nseg < cap);
            seg[nseg] = p;
            seglen[nseg] = l;
            nseg++;
        }
        p = e + 1;
    }
    if (n > 0 && path[0] == '/')
        buf_putc(out, '/');
    for (size_t i = 0; i < nseg; i++) {
        if (i > 0)
            buf_putc(out, '/');
        buf_add(out, seg[i], seglen[i]);
    }
    if (n > 0 && path[n - 1] == '/' && nseg > 0)
        buf_putc(out, '/');
    free(seg);
    free(seglen);
}

void aws_sigv4_canonical_uri(struct buf *b, const char *path, bool normalize)
{
    if (path == NULL || path[0] == '\0') {
        buf_putc(b, '/');
        return;
    }
    if (!normalize) {
        aws_uri_encode(b, path, strlen(path), true);
        return;
    }
    struct buf norm = BUF_INIT;
    path_normalize(&norm, path);
    if (norm.len == 0)
        buf_putc(b, '/');
    else
        aws_uri_encode(b, norm.data, norm.len, true);
    buf_release(&norm);
}

/* ---- Canonical query ------------------------------------------------------------------------- */

struct qparam {
    char *name;  /* encoded canonically */
    char *value; /* encoded canonically */
};

static int qparam_cmp(const void *a, const void *b)
{
    const struct qparam *x = a;
    const struct qparam *y = b;
    int c = strcmp(x->name, y->name);
    return c != 0 ? c : strcmp(x->value, y->value);
}

static char *canonical_component(const char *s, size_t n)
{
    struct buf dec = BUF_INIT;
    struct buf enc = BUF_INIT;
    uri_decode(&dec, s, n);
    aws_uri_encode(&enc, dec.data != NULL ? dec.data : "", dec.len, false);
    buf_release(&dec);
    buf_cstr(&enc);
    return buf_detach(&enc);
}

void aws_sigv4_canonical_query(struct buf *b, const char *query, size_t len)
{
    size_t cap = 1;
    for (size_t i = 0; i < len; i++)
        cap += query[i] == '&';
    struct qparam *qp = xmalloc(cap * sizeof(*qp));
    size_t n = 0;
    const char *p = query;
    const char *end = query + len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *e = amp != NULL ? amp : end;
        if (e > p) {
            const char *eq = memchr(p, '=', (size_t)(e - p));
            const char *ne = eq != NULL ? eq : e;
            qp[n].name = canonical_component(p, (size_t)(ne - p));
            qp[n].value = eq != NULL ? canonical_component(eq + 1, (size_t)(e - eq - 1))
                                     : xstrdup("");
            n++;
        }
        p = e + 1;
    }
    qsort(qp, n, sizeof(*qp), qparam_cmp);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            buf_putc(b, '&');
        buf_puts(b, qp[i].name);
        buf_putc(b, '=');
        buf_puts(b, qp[i].value);
        free(qp[i].name);
        free(qp[i].value);
    }
    free(qp);
}

/* ---- Canonical headers ----------------------------------------------------------------------- */

/* Headers botocore never signs: hop-by-hop ones a proxy may rewrite, and the tracing and
 * agent headers (botocore auth.py SIGNED_HEADERS_BLACKLIST, integrations.md §7.5). */
static const char *const unsigned_headers[] = {
    "connection",          "expect",  "keep-alive", "proxy-authenticate",
    "proxy-authorization", "te",      "trailer",    "transfer-encoding",
    "upgrade",             "user-agent", "x-amzn-trace-id", "authorization",
};

static bool header_is_signed(const char *lname)
{
    for (size_t i = 0; i < ARRAY_LEN(unsigned_headers); i++) {
        if (strcmp(lname, unsigned_headers[i]) == 0)
            return false;
    }
    return true;
}

struct sheader {
    char *lname;  /* owned, lower-case */
    char *value;  /* owned, trimmed, whitespace runs collapsed */
    size_t order; /* position in the request, so equal names keep their order */
};

static int sheader_cmp(const void *a, const void *b)
{
    const struct sheader *x = a;
    const struct sheader *y = b;
    int c = strcmp(x->lname, y->lname);
    if (c != 0)
        return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Trims the value and turns each run of whitespace (folded lines included) into one space. */
static char *header_value_canonical(const char *v)
{
    struct buf b = BUF_INIT;
    bool pending = false;
    for (const char *p = v; *p != '\0'; p++) {
        if (is_space(*p)) {
            pending = b.len > 0;
            continue;
        }
        if (pending)
            buf_putc(&b, ' ');
        pending = false;
        buf_putc(&b, *p);
    }
    buf_cstr(&b);
    return buf_detach(&b);
}

/* Appends the canonical headers block (each "name:value\n", repeated names joined by ',') to
 * `ch` and the signed-headers list to `sh`. */
static void canonical_headers(const struct aws_request *r, struct buf *ch, struct buf *sh)
{
    struct sheader *h = xmalloc((r->nheaders + 1) * sizeof(*h));
    size_t n = 0;
    for (size_t i = 0; i < r->nheaders; i++) {
        char *lname = xstrdup(r->headers[i].name);
        for (char *p = lname; *p != '\0'; p++) {
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        }
        if (!header_is_signed(lname)) {
            free(lname);
            continue;
        }
        h[n].lname = lname;
        h[n].value = header_value_canonical(r->headers[i].value);
        h[n].order = i;
        n++;
    }
    qsort(h, n, sizeof(*h), sheader_cmp);
    for (size_t i = 0; i < n; i++) {
        bool same = i > 0 && strcmp(h[i].lname, h[i - 1].lname) == 0;
        if (same) {
            buf_putc(ch, ',');
        } else {
            if (i > 0) {
                buf_putc(ch, '\n');
                buf_putc(sh, ';');
            }
            buf_puts(ch, h[i].lname);
            buf_putc(ch, ':');
            buf_puts(sh, h[i].lname);
        }
        buf_puts(ch, h[i].value);
    }
    if (n > 0)
        buf_putc(ch, '\n');
    for (size_t i = 0; i < n; i++) {
        free(h[i].lname);
        free(h[i].value);
    }
    free(h);
}

/* ---- Signing --------------------------------------------------------------------------------- */

static void amz_date_format(time_t t, char out[17], char date[9])
{
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL)
        memset(&tm, 0, sizeof(tm));
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
    memcpy(date, out, 8);
    date[8] = '\0';
}

void aws_sigv4_out_release(struct aws_sigv4_out *out)
{
    if (out == NULL)
        return;
    free(out->canonical_request);
    free(out->string_to_sign);
    free(out->signed_headers);
    free(out->authorization);
    memset(out, 0, sizeof(*out));
}

int aws_sigv4_sign(struct aws_request *r, const struct aws_sigv4_params *p,
                   struct aws_sigv4_out *out, struct err *err)
{
    struct aws_sigv4_out local;
    if (out == NULL)
        out = &local;
    memset(out, 0, sizeof(*out));
    const struct aws_creds *c = p->creds;
    if (c == NULL || c->access_key_id == NULL || c->access_key_id[0] == '\0' ||
        c->secret_access_key == NULL || c->secret_access_key[0] == '\0')
        return err_set(err, AWS_ERR_CLIENT, "cannot sign a request without credentials");
    if (aws_request_header_get(r, "Host") == NULL)
        return err_set(err, AWS_ERR_CLIENT, "cannot sign a request without a Host header");
    if (p->region == NULL || p->region[0] == '\0' || p->service == NULL || p->service[0] == '\0')
        return err_set(err, AWS_ERR_CLIENT, "cannot sign a request without region and service");
    /* SigV4 presigned URLs live at most 7 days. */
    if (p->style == AWS_SIGV4_QUERY && (p->expires < 1 || p->expires > 604800))
        return err_set(err, AWS_ERR_CLIENT, "presigned URL expiry %u s is not in 1..604800",
                       p->expires);

    char date[9];
    amz_date_format(p->now, out->amz_date, date);
    struct buf scope = BUF_INIT;
    buf_printf(&scope, "%s/%s/%s/aws4_request", date, p->region, p->service);
    const char *token = c->session_token != NULL && c->session_token[0] != '\0'
                            ? c->session_token
                            : NULL;
    char payload[65];
    aws_sha256_hex(r->body.data != NULL ? r->body.data : "", r->body.len, payload);

    struct buf ch = BUF_INIT;
    struct buf sh = BUF_INIT;
    if (p->style == AWS_SIGV4_HEADER) {
        aws_request_header_del(r, "Authorization");
        aws_request_header_del(r, "X-Amz-Date");
        aws_request_header_del(r, "X-Amz-Security-Token");
        aws_request_header_del(r, "x-amz-content-sha256");
        if (token != NULL && !p->omit_session_token)
            aws_request_header_add(r, "X-Amz-Security-Token", token);
        aws_request_header_add(r, "X-Amz-Date", out->amz_date);
        if (p->content_sha256)
            aws_request_header_add(r, "x-amz-content-sha256", payload);
        canonical_headers(r, &ch, &sh);
    } else {
        canonical_headers(r, &ch, &sh);
        struct buf cred = BUF_INIT;
        buf_printf(&cred, "%s/%s", c->access_key_id, scope.data);
        char expires[24];
        snprintf(expires, sizeof(expires), "%u", p->expires);
        aws_request_query_add(r, "X-Amz-Algorithm", SIGV4_ALGORITHM);
        aws_request_query_add(r, "X-Amz-Credential", cred.data);
        aws_request_query_add(r, "X-Amz-Date", out->amz_date);
        aws_request_query_add(r, "X-Amz-SignedHeaders", buf_cstr(&sh));
        aws_request_query_add(r, "X-Amz-Expires", expires);
        if (token != NULL && !p->omit_session_token)
            aws_request_query_add(r, "X-Amz-Security-Token", token);
        buf_release(&cred);
    }

    struct buf creq = BUF_INIT;
    buf_puts(&creq, r->method);
    buf_putc(&creq, '\n');
    aws_sigv4_canonical_uri(&creq, r->path, p->normalize_path);
    buf_putc(&creq, '\n');
    aws_sigv4_canonical_query(&creq, r->query.data != NULL ? r->query.data : "", r->query.len);
    buf_putc(&creq, '\n');
    buf_add(&creq, ch.data != NULL ? ch.data : "", ch.len);
    buf_putc(&creq, '\n');
    buf_add(&creq, sh.data != NULL ? sh.data : "", sh.len);
    buf_putc(&creq, '\n');
    buf_puts(&creq, payload);
    buf_release(&ch);

    char creq_hash[65];
    aws_sha256_hex(creq.data, creq.len, creq_hash);
    struct buf sts = BUF_INIT;
    buf_printf(&sts, SIGV4_ALGORITHM "\n%s\n%s\n%s", out->amz_date, scope.data, creq_hash);

    unsigned char key[32];
    unsigned char sig[32];
    aws_sigv4_signing_key(c->secret_access_key, date, p->region, p->service, key);
    hmac_sha256(key, 32, sts.data, sts.len, sig);
    memset(key, 0, sizeof(key));
    hex_encode(sig, 32, out->signature);

    if (p->style == AWS_SIGV4_HEADER) {
        if (token != NULL && p->omit_session_token) {
            /* Added after signing but sent before X-Amz-Date, as the suite's
             * post-sts-header-after shows. */
            aws_request_header_add(r, "X-Amz-Security-Token", token);
            size_t last = r->nheaders - 1;
            size_t at = last;
            for (size_t i = 0; i < last; i++) {
                if (strcasecmp(r->headers[i].name, "X-Amz-Date") == 0) {
                    at = i;
                    break;
                }
            }
            struct aws_header tok = r->headers[last];
            memmove(&r->headers[at + 1], &r->headers[at], (last - at) * sizeof(*r->headers));
            r->headers[at] = tok;
        }
        out->authorization = xasprintf(SIGV4_ALGORITHM " Credential=%s/%s, SignedHeaders=%s, "
                                                       "Signature=%s",
                                       c->access_key_id, scope.data, buf_cstr(&sh),
                                       out->signature);
        aws_request_header_add(r, "Authorization", out->authorization);
    } else {
        if (token != NULL && p->omit_session_token)
            aws_request_query_add(r, "X-Amz-Security-Token", token);
        aws_request_query_add(r, "X-Amz-Signature", out->signature);
    }

    out->canonical_request = buf_detach(&creq);
    out->string_to_sign = buf_detach(&sts);
    buf_cstr(&sh);
    out->signed_headers = buf_detach(&sh);
    buf_release(&scope);
    if (out == &local)
        aws_sigv4_out_release(&local);
    return 0;
}
