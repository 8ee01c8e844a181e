/* integrations/aws/http.c - the AWS transport: asynchronous HTTP(S) on the engine's libuv loop
 * through libcurl's multi-socket interface, with the AWS SDKs' standard retry mode
 * (integrations.md §6.3) and per-lane (service signing name + region) concurrency caps and
 * token-bucket rate limits, so that thousands of pollers never exceed a service's API quota.
 *
 * A call waits in its lane's queue for a slot and a token (and, the first time or near their
 * expiry, for credential_process, which runs on the loop too), is signed (aws_sigv4_sign,
 * again on every attempt), goes to curl as one easy handle, and when curl reports it done is
 * either delivered or put back in the queue after a back-off (standard or legacy retry mode).
 * A lane's limits start from the default quota table below. Callbacks fire only from loop
 * callbacks; memory is freed only in close callbacks (STYLE.md). */
#include "integrations/aws/aws.h"

#include <assert.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <jansson.h>

#include "util/xalloc.h"

#define DEFAULT_CONNECT_TIMEOUT_MS 10000
#define DEFAULT_TIMEOUT_MS 60000
#define DEFAULT_MAX_ATTEMPTS 3       /* standard mode: 3 attempts in total */
#define LEGACY_MAX_ATTEMPTS 5        /* botocore legacy mode (_retry.json): 4 retries */
#define DEFAULT_BACKOFF_BASE_MS 1000 /* standard mode: rand(0,1) * min(2^(n-1) s, 20 s) */
#define DEFAULT_BACKOFF_MAX_MS 20000
#define LEGACY_BACKOFF_MAX_MS 86400000u /* legacy mode has no cap: rand * 2^(n-1) s; a day
                                           keeps the arithmetic finite */
#define DEFAULT_RETRY_QUOTA 500 /* botocore retries/quota.py INITIAL_CAPACITY */
#define RETRY_COST 5            /* quota.py RETRY_COST */
#define TIMEOUT_RETRY_COST 10   /* quota.py TIMEOUT_RETRY_COST */
#define NO_RETRY_INCREMENT 1    /* standard.py: a success without retries gives back 1 */
#define DEFAULT_MAX_CONCURRENT 50
#define DEFAULT_MAX_IDLE 256
#define DEFAULT_MAX_RESPONSE (16u << 20)
#define USER_AGENT "sfnd/0.1"

enum http_state {
    HTTP_OPEN,
    HTTP_CLOSING, /* aws_http_close() called: calls are being cancelled, handles closed */
};

enum call_state {
    CALL_QUEUED,  /* in its lane's queue, waiting for a slot and a rate token */
    CALL_SENDING, /* an attempt is in curl */
    CALL_BACKOFF, /* waiting out the back-off before the next attempt */
    CALL_DUE,     /* ended; the callback fires on the next loop pass */
    CALL_CLOSING, /* callback fired; the timer is closing and then the call is freed */
};

struct lane {
    struct aws_http *h;
    struct lane *next;          /* the client's list */
    char *service;              /* owned: signing name */
    char *region;               /* owned */
    struct aws_http_limits lim; /* current limits */
    double tokens;              /* rate tokens available (fractional) */
    uint64_t refilled_ms;       /* uv_now() of the last refill */
    uv_timer_t timer;           /* wakes the lane when the next token is due */
    bool token_wait;            /* the timer is armed for a token a call is waiting for */
    unsigned in_flight;         /* attempts in curl */
    unsigned retry_quota;       /* retry budget tokens left */
    struct aws_http_call *head; /* queue, FIFO */
    struct aws_http_call *tail;
    struct aws_http_stats stats; /* counters (in_flight, queued, quota filled on read) */
};

struct sock {
    struct aws_http *h;
    struct sock *prev, *next; /* the client's list of polled sockets */
    curl_socket_t fd;
    uv_poll_t poll;
};

struct aws_http {
    uv_loop_t *loop;
    enum http_state state;
    bool creds_waiting;           /* waiting for credential_process (aws_config_creds_async) */
    struct aws_http_opts opts;    /* copied; creds and config pointers see below */
    struct aws_creds creds;       /* copy of opts.creds; empty when none */
    bool have_creds;              /* creds holds a copy */
    CURLM *multi;
    CURLSH *share;                /* DNS and TLS session caches shared by every attempt */
    uv_timer_t curl_timer;        /* curl's timeout */
    struct lane *lanes;           /* owned list */
    struct sock *socks;           /* polled sockets */
    struct aws_http_call *calls;  /* every live call (doubly linked) */
    unsigned pending_closes;      /* handles whose close callback has not run */
    uint64_t rng;                 /* xorshift64* state */
};

struct aws_http_call {
    struct aws_http *h;
    struct lane *lane;
    enum call_state state;
    struct aws_http_call *prev, *next; /* the client's live calls */
    struct aws_http_call *qnext;       /* the lane's queue */
    struct aws_request req;            /* owned; re-signed per attempt */
    char *url;                         /* owned: scheme://host/path?query */
    enum aws_protocol protocol;
    const struct aws_service *svc;     /* static */
    char invocation_id[37];            /* amz-sdk-invocation-id (same on every attempt) */
    uv_timer_t timer;                  /* back-off and delivery */
    CURL *easy;                        /* the attempt in curl, or NULL */
    char curl_error[CURL_ERROR_SIZE];  /* curl's detailed message for the attempt */
    struct curl_slist *headers;        /* the attempt's header list */
    struct buf body;                   /* the answer's body */
    bool too_large;                    /* the body passed max_response */
    char *request_id;                  /* owned, from the answer's headers; NULL when none */
    char *errtype;                     /* owned: x-amzn-ErrorType; NULL when none */
    long status;                       /* last HTTP status, 0 when none */
    char *error_code;                  /* owned, sanitised code of a non-2xx answer */
    char *error_message;               /* owned */
    unsigned attempts;                 /* attempts started */
    unsigned quota_held;               /* retry tokens this call took for its last retry */
    bool quota_empty;                  /* a retry was refused for an empty budget */
    struct err err;                    /* how it ended; unset on success */
    aws_http_done_fn done;
    void *arg;
};

static void lane_pump(struct lane *l);
static void http_check_done(struct aws_http *h);
static void http_maybe_free(struct aws_http *h);

/* ---- Helpers --------------------------------------------------------------------------------- */

static uint64_t rng_next(struct aws_http *h)
{
    uint64_t x = h->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    h->rng = x;
    return x * 2685821657736338717ULL;
}

/* A uniform double in [0, 1). */
static double rng_unit(struct aws_http *h)
{
    return (double)(rng_next(h) >> 11) / 9007199254740992.0;
}

static void uuid4(struct aws_http *h, char out[37])
{
    unsigned char b[16];
    uint64_t a = rng_next(h);
    uint64_t c = rng_next(h);
    memcpy(b, &a, 8);
    memcpy(b + 8, &c, 8);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
             b[13], b[14], b[15]);
}

static time_t http_clock(struct aws_http *h)
{
    if (h->opts.clock != NULL)
        return h->opts.clock(h->opts.clock_arg);
    return time(NULL);
}

/* ---- Errors and retryability (integrations.md §6) -------------------------------------------- */

/* "com.amazon.coral.service#ThrottlingException:http://..." -> "ThrottlingException". */
static char *code_sanitize(const char *s)
{
    size_t n = strcspn(s, ":");
    const char *start = s;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '#')
            start = s + i + 1;
    }
    size_t len = (size_t)(s + n - start);
    while (len > 0 && (start[len - 1] == ' ' || start[len - 1] == '\t'))
        len--;
    while (len > 0 && (*start == ' ' || *start == '\t')) {
        start++;
        len--;
    }
    return xstrndup(start, len);
}

static const char *json_str(json_t *obj, const char *const *keys)
{
    for (; *keys != NULL; keys++) {
        json_t *v = json_object_get(obj, *keys); /* borrowed */
        if (json_is_string(v) && json_string_length(v) > 0)
            return json_string_value(v);
    }
    return NULL;
}

void aws_http_error_parse(enum aws_protocol proto, long status, const char *errtype,
                          const char *body, size_t len, char **code, char **message)
{
    static const char *const json_keys[] = {"__type", "code", "Code", NULL};
    static const char *const rest_keys[] = {"code", "Code", "__type", NULL};
    static const char *const msg_keys[] = {"message", "Message", "errorMessage", NULL};
    *code = NULL;
    *message = NULL;
    json_t *doc = len > 0 ? json_loadb(body, len, 0, NULL) : NULL; /* new reference */
    if (errtype != NULL && *errtype != '\0')
        *code = code_sanitize(errtype);
    if (json_is_object(doc)) {
        const char *c = json_str(doc, proto == AWS_PROTO_JSON ? json_keys : rest_keys);
        if (*code == NULL && c != NULL)
            *code = code_sanitize(c);
        const char *m = json_str(doc, msg_keys);
        if (m != NULL)
            *message = xstrdup(m);
    } else if (len > 0) {
        *message = xstrndup(body, len); /* not JSON: the raw text (botocore) */
    }
    json_decref(doc);
    if (*code == NULL || **code == '\0') {
        free(*code);
        *code = xasprintf("%ld", status);
    }
    if (*message == NULL)
        *message = xstrdup("");
}

bool aws_http_retryable(long status, const char *code)
{
    /* standard.py: throttling codes (complete list) and transient codes */
    static const char *const codes[] = {
        "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
        "TooManyRequestsException", "ProvisionedThroughputExceededException",
        "TransactionInProgressException", "RequestLimitExceeded", "BandwidthLimitExceeded",
        "LimitExceededException", "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
        "EC2ThrottledException", "RequestTimeout", "RequestTimeoutException",
    };
    /* any 429 too (legacy mode), for EKSRequestThrottledException */
    if (status == 429 || status == 500 || status == 502 || status == 503 || status == 504)
        return true;
    if (code == NULL)
        return false;
    for (size_t i = 0; i < ARRAY_LEN(codes); i++) {
        if (strcmp(code, codes[i]) == 0)
            return true;
    }
    return false;
}

bool aws_http_retryable_legacy(long status, const char *code)
{
    /* botocore _retry.json __default__: these codes only with status 400 */
    static const char *const codes[] = {
        "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
        "ProvisionedThroughputExceededException",
    };
    if (status == 429 || status == 500 || status == 502 || status == 503 || status == 504 ||
        status == 509)
        return true;
    if (status != 400 || code == NULL)
        return false;
    for (size_t i = 0; i < ARRAY_LEN(codes); i++) {
        if (strcmp(code, codes[i]) == 0)
            return true;
    }
    return false;
}

/* Network failures the SDKs retry (connection and HTTP client errors). */
static bool curl_retryable(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return true;
    default:
        return false;
    }
}

/* ---- Lanes: concurrency cap, rate limit, retry budget ---------------------------------------- */

/* The default quota table. AWS throttles each API per account and region with a token bucket
 * (a burst, refilled at a rate); a lane here covers every operation of a service, so its
 * default is the lowest documented bucket among the calls the integrations make, or our own
 * conservative choice where AWS publishes no number. Override per client
 * (aws_http_opts.limits) or per lane (aws_http_limits_set). */
static const struct aws_quota quota_table[] = {
    {"elasticmapreduce", "*", {5, 0.5, 5},
     "AWS documented: EMR Management Guide, 'What are Amazon EMR Service Quotas' "
     "(API burst 5 calls, refilled at 0.5 calls/s, the example AddInstanceFleet bucket), "
     "applied to every EMR call"},
    {"athena", "*", {20, 20, 20},
     "AWS documented: Athena 'Per account API call quotas' (StartQueryExecution and "
     "StopQueryExecution 20 calls/s, the lowest; GetQueryExecution and GetQueryResults 100; "
     "as quoted on AWS re:Post; the Service Quotas console shows an account's own)"},
    {"emr-containers", "*", {10, 5, 10},
     "our default: no API rate is published for EMR on EKS; 5 requests/s, burst 10"},
    {"emr-serverless", "*", {10, 5, 10},
     "our default: no API rate is published for EMR Serverless; 5 requests/s, burst 10"},
};

const struct aws_quota *aws_quota_find(const char *service, const char *region)
{
    const struct aws_quota *any = NULL;
    for (size_t i = 0; i < ARRAY_LEN(quota_table); i++) {
        const struct aws_quota *q = &quota_table[i];
        if (strcmp(q->service, service) != 0)
            continue;
        if (region != NULL && strcmp(q->region, region) == 0)
            return q;
        if (strcmp(q->region, "*") == 0)
            any = q;
    }
    return any;
}

/* Puts the non-zero fields of `over` on `lim`. */
static void limits_overlay(struct aws_http_limits *lim, const struct aws_http_limits *over)
{
    if (over->max_concurrent != 0)
        lim->max_concurrent = over->max_concurrent;
    if (over->rate != 0)
        lim->rate = over->rate;
    if (over->burst != 0)
        lim->burst = over->burst;
}

/* A lane's limits: the generic default, the quota table, the client's, then `over` (may be
 * NULL). Rate 0 means unlimited from here on. */
static void limits_resolve(const struct aws_http *h, const char *service, const char *region,
                           const struct aws_http_limits *over, struct aws_http_limits *out)
{
    out->max_concurrent = DEFAULT_MAX_CONCURRENT;
    out->rate = AWS_HTTP_UNLIMITED;
    out->burst = 1;
    const struct aws_quota *q = aws_quota_find(service, region);
    if (q != NULL)
        limits_overlay(out, &q->limits);
    limits_overlay(out, &h->opts.limits);
    if (over != NULL)
        limits_overlay(out, over);
    if (out->rate < 0)
        out->rate = 0;
    if (out->burst < 1)
        out->burst = 1;
}

static struct lane *lane_find(struct aws_http *h, const char *service, const char *region)
{
    for (struct lane *l = h->lanes; l != NULL; l = l->next) {
        if (strcmp(l->service, service) == 0 && strcmp(l->region, region) == 0)
            return l;
    }
    return NULL;
}

static void on_lane_timer(uv_timer_t *t)
{
    struct lane *l = container_of(t, struct lane, timer);
    lane_pump(l);
}

static struct lane *lane_get(struct aws_http *h, const char *service, const char *region)
{
    struct lane *l = lane_find(h, service, region);
    if (l != NULL)
        return l;
    l = xcalloc(1, sizeof(*l));
    l->h = h;
    l->service = xstrdup(service);
    l->region = xstrdup(region);
    limits_resolve(h, service, region, NULL, &l->lim);
    l->tokens = l->lim.burst;
    l->refilled_ms = uv_now(h->loop);
    l->retry_quota = h->opts.retry_quota;
    uv_timer_init(h->loop, &l->timer);
    l->next = h->lanes;
    h->lanes = l;
    return l;
}

/* Takes a rate token if one is available; else arms the lane's timer for when one will be. */
static bool lane_token_take(struct lane *l)
{
    if (l->lim.rate <= 0)
        return true;
    uint64_t now = uv_now(l->h->loop);
    /* While a call waits for a token, the time the timer fires late is kept (the cap is one
     * more than the burst), or the long-run rate would fall short of the setting. */
    double cap = l->lim.burst + (l->token_wait ? 1.0 : 0.0);
    l->tokens += (double)(now - l->refilled_ms) * l->lim.rate / 1000.0;
    if (l->tokens > cap)
        l->tokens = cap;
    l->refilled_ms = now;
    if (l->tokens >= 1.0) {
        l->tokens -= 1.0;
        l->token_wait = false;
        return true;
    }
    l->token_wait = true;
    if (!uv_is_active((uv_handle_t *)&l->timer)) {
        double wait = ceil((1.0 - l->tokens) * 1000.0 / l->lim.rate);
        uv_timer_start(&l->timer, on_lane_timer, wait < 1 ? 1 : (uint64_t)wait, 0);
    }
    return false;
}

static void lane_push(struct lane *l, struct aws_http_call *c)
{
    c->qnext = NULL;
    if (l->tail != NULL)
        l->tail->qnext = c;
    else
        l->head = c;
    l->tail = c;
    l->stats.queued++;
}

static void lane_remove(struct lane *l, struct aws_http_call *c)
{
    struct aws_http_call **pp = &l->head;
    struct aws_http_call *prev = NULL;
    while (*pp != NULL && *pp != c) {
        prev = *pp;
        pp = &(*pp)->qnext;
    }
    assert(*pp == c);
    *pp = c->qnext;
    if (l->tail == c)
        l->tail = prev;
    c->qnext = NULL;
    l->stats.queued--;
}

static void quota_release(struct lane *l, struct aws_http_call *c)
{
    if (l->h->opts.retry_mode == AWS_RETRY_LEGACY)
        return; /* no budget in legacy mode */
    unsigned give = c->quota_held > 0 ? c->quota_held : NO_RETRY_INCREMENT;
    unsigned max = l->h->opts.retry_quota;
    l->retry_quota = l->retry_quota + give > max ? max : l->retry_quota + give;
    c->quota_held = 0;
}

/* ---- Calls ----------------------------------------------------------------------------------- */

static void call_set_state(struct aws_http_call *c, enum call_state to)
{
    /* QUEUED -> SENDING -> (BACKOFF -> QUEUED)* -> DUE -> CLOSING; any live state -> DUE */
    switch (to) {
    case CALL_QUEUED:
        assert(c->state == CALL_BACKOFF || c->state == CALL_QUEUED);
        break;
    case CALL_SENDING:
        assert(c->state == CALL_QUEUED);
        break;
    case CALL_BACKOFF:
        assert(c->state == CALL_SENDING);
        break;
    case CALL_DUE:
        assert(c->state != CALL_DUE && c->state != CALL_CLOSING);
        break;
    case CALL_CLOSING:
        assert(c->state == CALL_DUE);
        break;
    }
    c->state = to;
}

static void on_call_closed(uv_handle_t *handle)
{
    struct aws_http_call *c = container_of((uv_timer_t *)handle, struct aws_http_call, timer);
    struct aws_http *h = c->h;
    aws_request_release(&c->req);
    free(c->url);
    buf_release(&c->body);
    free(c->request_id);
    free(c->errtype);
    free(c->error_code);
    free(c->error_message);
    err_clear(&c->err);
    free(c);
    h->pending_closes--;
    http_maybe_free(h);
}

static void call_unlink(struct aws_http_call *c)
{
    struct aws_http *h = c->h;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        h->calls = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

/* Fires the callback, then closes the call. Only from a loop callback. */
static void call_deliver(struct aws_http_call *c)
{
    struct aws_http_result res = {
        .status = c->status,
        .body = buf_cstr(&c->body),
        .body_len = c->body.len,
        .request_id = c->request_id != NULL ? c->request_id : "",
        .error_code = c->error_code,
        .error_message = c->error_message != NULL ? c->error_message : "",
        .attempts = c->attempts,
        .retry_quota_empty = c->quota_empty,
        .err = &c->err,
    };
    call_set_state(c, CALL_CLOSING);
    call_unlink(c);
    c->done(c, &res, c->arg);
    c->h->pending_closes++;
    uv_close((uv_handle_t *)&c->timer, on_call_closed);
}

static void on_call_timer(uv_timer_t *t)
{
    struct aws_http_call *c = container_of(t, struct aws_http_call, timer);
    if (c->state == CALL_DUE) {
        call_deliver(c);
        return;
    }
    assert(c->state == CALL_BACKOFF);
    call_set_state(c, CALL_QUEUED);
    lane_push(c->lane, c);
    lane_pump(c->lane);
}

/* Ends the call; its callback fires on the next loop pass. */
static void call_end(struct aws_http_call *c)
{
    call_set_state(c, CALL_DUE);
    uv_timer_start(&c->timer, on_call_timer, 0, 0);
}

static void attempt_reset(struct aws_http_call *c)
{
    if (c->easy != NULL) {
        curl_multi_remove_handle(c->h->multi, c->easy);
        curl_easy_cleanup(c->easy);
        c->easy = NULL;
    }
    curl_slist_free_all(c->headers);
    c->headers = NULL;
}

static size_t on_curl_write(char *data, size_t size, size_t n, void *arg)
{
    struct aws_http_call *c = arg;
    size_t len = size * n;
    if (c->body.len + len > c->h->opts.max_response) {
        c->too_large = true;
        return 0; /* CURLE_WRITE_ERROR */
    }
    buf_add(&c->body, data, len);
    return len;
}

static void header_keep(char **dst, const char *v, size_t n)
{
    while (n > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
        n--;
    free(*dst);
    *dst = xstrndup(v, n);
}

static size_t on_curl_header(char *data, size_t size, size_t n, void *arg)
{
    struct aws_http_call *c = arg;
    size_t len = size * n;
    if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) { /* a new answer (after 100, a redirect) */
        free(c->request_id);
        free(c->errtype);
        c->request_id = NULL;
        c->errtype = NULL;
        buf_reset(&c->body);
        return len;
    }
    const char *colon = memchr(data, ':', len);
    if (colon == NULL)
        return len;
    size_t nlen = (size_t)(colon - data);
    const char *v = colon + 1;
    size_t vlen = len - nlen - 1;
    if ((nlen == 16 && strncasecmp(data, "x-amzn-RequestId", 16) == 0) ||
        (nlen == 16 && strncasecmp(data, "x-amz-request-id", 16) == 0))
        header_keep(&c->request_id, v, vlen);
    else if (nlen == 16 && strncasecmp(data, "x-amzn-ErrorType", 16) == 0)
        header_keep(&c->errtype, v, vlen);
    return len;
}

static void header_add(struct aws_http_call *c, const char *name, const char *value)
{
    char *line = xasprintf("%s: %s", name, value);
    struct curl_slist *l = curl_slist_append(c->headers, line);
    free(line);
    if (l == NULL)
        abort(); /* only fails when out of memory (STYLE.md) */
    c->headers = l;
}

/* Signs the request for this attempt with `creds` (borrowed; NULL: none) and hands it to
 * curl. Returns 0, or -1 with c->err set. */
static int attempt_send(struct aws_http_call *c, const struct aws_creds *creds)
{
    struct aws_http *h = c->h;
    time_t now = http_clock(h);
    if (creds == NULL)
        return err_set(&c->err, AWS_ERR_CLIENT, "no credentials to sign the request");

    c->attempts++;
    char attempt[64];
    snprintf(attempt, sizeof(attempt), "attempt=%u; max=%u", c->attempts, h->opts.max_attempts);
    aws_request_header_set(&c->req, "amz-sdk-invocation-id", c->invocation_id);
    aws_request_header_set(&c->req, "amz-sdk-request", attempt);
    struct aws_sigv4_params sp = {
        .creds = creds,
        .region = c->lane->region,
        .service = c->svc->signing_name,
        .now = now,
        .style = AWS_SIGV4_HEADER,
        .normalize_path = true,
    };
    if (aws_sigv4_sign(&c->req, &sp, NULL, &c->err) < 0)
        return -1;

    attempt_reset(c);
    for (size_t i = 0; i < c->req.nheaders; i++)
        header_add(c, c->req.headers[i].name, c->req.headers[i].value);
    if (aws_request_header_get(&c->req, "Content-Type") == NULL)
        c->headers = curl_slist_append(c->headers, "Content-Type:"); /* no form default */
    c->headers = curl_slist_append(c->headers, "Expect:");           /* no 100-continue */
    c->headers = curl_slist_append(c->headers, "Accept:");
    if (c->headers == NULL)
        abort();

    CURL *e = curl_easy_init();
    if (e == NULL)
        return err_set(&c->err, AWS_ERR_CLIENT, "cannot create a curl handle");
    c->easy = e;
    c->status = 0;
    free(c->request_id);
    free(c->errtype);
    c->request_id = NULL;
    c->errtype = NULL;
    buf_reset(&c->body);
    c->too_large = false;
    c->curl_error[0] = '\0';

    curl_easy_setopt(e, CURLOPT_URL, c->url);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->curl_error);
    curl_easy_setopt(e, CURLOPT_PRIVATE, c);
    curl_easy_setopt(e, CURLOPT_SHARE, h->share);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    if (h->opts.ca_file != NULL)
        curl_easy_setopt(e, CURLOPT_CAINFO, h->opts.ca_file);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)h->opts.connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)h->opts.timeout_ms);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, USER_AGENT);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_curl_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_curl_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, c);
    if (strcmp(c->req.method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(c->req.method, "POST") == 0 || c->req.body.len > 0) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->req.body.len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->req.body.len > 0 ? c->req.body.data : "");
        if (strcmp(c->req.method, "POST") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, c->req.method);
    } else {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, c->req.method);
    }
    CURLMcode mc = curl_multi_add_handle(h->multi, e);
    if (mc != CURLM_OK)
        return err_set(&c->err, AWS_ERR_CLIENT, "cannot start the request: %s",
                       curl_multi_strerror(mc));
    c->lane->stats.attempts++;
    if (c->attempts > 1)
        c->lane->stats.retries++;
    return 0;
}

/* Ends every queued call of every lane with `err` (credentials could not be had). */
static void http_fail_queued(struct aws_http *h, const struct err *err)
{
    for (struct lane *l = h->lanes; l != NULL; l = l->next) {
        while (l->head != NULL) {
            struct aws_http_call *c = l->head;
            lane_remove(l, c);
            err_copy(&c->err, err);
            free(c->error_code);
            c->error_code = NULL;
            call_end(c);
        }
    }
}

static void on_creds_ready(const struct aws_creds *creds, const struct err *err, void *arg)
{
    struct aws_http *h = arg;
    h->creds_waiting = false;
    if (creds == NULL) {
        http_fail_queued(h, err);
        return;
    }
    for (struct lane *l = h->lanes; l != NULL; l = l->next)
        lane_pump(l);
}

/* The credentials to sign with now. Returns 1 with *out set (NULL when the client has none:
 * the attempt fails), 0 while credential_process runs (every lane is pumped when it ends),
 * or -1 with err set. */
static int http_creds(struct aws_http *h, const struct aws_creds **out, struct err *err)
{
    *out = h->have_creds ? &h->creds : NULL;
    if (h->opts.config == NULL)
        return 1;
    if (h->creds_waiting)
        return 0;
    bool pending;
    *out = aws_config_creds_async(h->opts.config, h->loop, http_clock(h), on_creds_ready, h,
                                  &pending, err);
    if (*out != NULL)
        return 1;
    if (pending) {
        h->creds_waiting = true;
        return 0;
    }
    return -1;
}

/* Starts queued calls while the lane has slots and tokens (and credentials are at hand). */
static void lane_pump(struct lane *l)
{
    if (l->h->state != HTTP_OPEN)
        return;
    while (l->head != NULL && l->in_flight < l->lim.max_concurrent) {
        const struct aws_creds *creds;
        struct err err = ERR_INIT;
        int ready = http_creds(l->h, &creds, &err);
        if (ready <= 0) {
            if (ready < 0)
                http_fail_queued(l->h, &err);
            err_clear(&err);
            return;
        }
        if (!lane_token_take(l))
            return;
        struct aws_http_call *c = l->head;
        lane_remove(l, c);
        call_set_state(c, CALL_SENDING);
        l->in_flight++;
        if (l->in_flight > l->stats.max_in_flight)
            l->stats.max_in_flight = l->in_flight;
        if (attempt_send(c, creds) < 0) {
            attempt_reset(c);
            l->in_flight--;
            call_end(c);
        }
    }
}

/* Full jitter: rand(0,1) * min(base * 2^(n-1), max), n = retries so far + 1. Legacy mode's
 * rand * base * 2^(n-1) is the same formula without a cap. */
static uint64_t backoff_ms(struct aws_http_call *c)
{
    struct aws_http *h = c->h;
    double cap = (double)h->opts.backoff_base_ms * pow(2.0, (double)(c->attempts - 1));
    if (cap > h->opts.backoff_max_ms)
        cap = h->opts.backoff_max_ms;
    return (uint64_t)(rng_unit(h) * cap);
}

/* curl has finished an attempt with `rc`: deliver, or queue a retry. */
static void attempt_done(struct aws_http_call *c, CURLcode rc)
{
    struct aws_http *h = c->h;
    struct lane *l = c->lane;
    long status = 0;
    curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
    attempt_reset(c);
    l->in_flight--;
    free(c->error_code);
    free(c->error_message);
    c->error_code = NULL;
    c->error_message = NULL;
    err_clear(&c->err);

    bool retry = false;
    bool timeout = false;
    if (rc == CURLE_OK) {
        c->status = status;
        if (status >= 200 && status < 300) {
            quota_release(l, c);
            call_end(c);
            lane_pump(l);
            return;
        }
        aws_http_error_parse(c->protocol, status, c->errtype, c->body.data, c->body.len,
                             &c->error_code, &c->error_message);
        err_set(&c->err, c->error_code, "%s (Status Code: %ld; Error Code: %s; Request ID: %s)",
                c->error_message, status, c->error_code,
                c->request_id != NULL ? c->request_id : "");
        retry = aws_http_retryable(status, c->error_code);
    } else {
        c->status = 0;
        buf_reset(&c->body);
        timeout = rc == CURLE_OPERATION_TIMEDOUT;
        if (c->too_large)
            err_set(&c->err, AWS_ERR_CLIENT, "answer larger than %zu bytes from '%s'",
                    h->opts.max_response, c->url);
        else if (rc == CURLE_PEER_FAILED_VERIFICATION)
            err_set(&c->err, AWS_ERR_CLIENT,
                    "TLS certificate verification failed for '%s': %s (give the CA bundle "
                    "that signed the endpoint's certificate: AWS_CA_BUNDLE, the profile's "
                    "ca_bundle or the ca_file option)",
                    c->url, c->curl_error[0] != '\0' ? c->curl_error : curl_easy_strerror(rc));
        else if (rc == CURLE_SSL_CACERT_BADFILE)
            err_set(&c->err, AWS_ERR_CLIENT, "cannot use the CA bundle '%s': %s",
                    h->opts.ca_file != NULL ? h->opts.ca_file : "(system)",
                    c->curl_error[0] != '\0' ? c->curl_error : curl_easy_strerror(rc));
        else
            err_set(&c->err, AWS_ERR_CLIENT, "cannot reach '%s': %s", c->url,
                    c->curl_error[0] != '\0' ? c->curl_error : curl_easy_strerror(rc));
        retry = !c->too_large && curl_retryable(rc);
    }
    if (rc == CURLE_OK && h->opts.retry_mode == AWS_RETRY_LEGACY)
        retry = aws_http_retryable_legacy(c->status, c->error_code);

    bool legacy = h->opts.retry_mode == AWS_RETRY_LEGACY;
    if (retry && c->attempts < h->opts.max_attempts && h->state == HTTP_OPEN) {
        unsigned cost = timeout ? TIMEOUT_RETRY_COST : RETRY_COST;
        if (legacy || l->retry_quota >= cost) {
            if (!legacy) {
                l->retry_quota -= cost;
                c->quota_held = cost;
            }
            call_set_state(c, CALL_BACKOFF);
            uv_timer_start(&c->timer, on_call_timer, backoff_ms(c), 0);
            lane_pump(l);
            return;
        }
        c->quota_empty = true;
        l->stats.quota_refusals++;
    }
    call_end(c);
    lane_pump(l);
}

/* ---- curl on libuv --------------------------------------------------------------------------- */

static void http_check_done(struct aws_http *h)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(h->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct aws_http_call *c = NULL;
        CURLcode rc = m->data.result;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&c);
        assert(c != NULL && c->easy == m->easy_handle && c->state == CALL_SENDING);
        attempt_done(c, rc);
    }
}

static void on_sock_poll(uv_poll_t *p, int status, int events)
{
    struct sock *s = container_of(p, struct sock, poll);
    struct aws_http *h = s->h;
    int flags = 0;
    int running;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    curl_multi_socket_action(h->multi, s->fd, flags, &running);
    http_check_done(h);
}

static void on_sock_closed(uv_handle_t *handle)
{
    struct sock *s = container_of((uv_poll_t *)handle, struct sock, poll);
    struct aws_http *h = s->h;
    free(s);
    h->pending_closes--;
    http_maybe_free(h);
}

static void sock_close(struct sock *s)
{
    struct aws_http *h = s->h;
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        h->socks = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    uv_poll_stop(&s->poll);
    h->pending_closes++;
    uv_close((uv_handle_t *)&s->poll, on_sock_closed);
}

static int on_curl_socket(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct aws_http *h = userp;
    struct sock *s = socketp;
    (void)e;
    if (what == CURL_POLL_REMOVE) {
        if (s != NULL) {
            curl_multi_assign(h->multi, fd, NULL);
            sock_close(s);
        }
        return 0;
    }
    if (s == NULL) {
        s = xcalloc(1, sizeof(*s));
        s->h = h;
        s->fd = fd;
        if (uv_poll_init_socket(h->loop, &s->poll, fd) != 0) {
            free(s);
            return -1; /* curl fails the transfer */
        }
        s->next = h->socks;
        if (h->socks != NULL)
            h->socks->prev = s;
        h->socks = s;
        curl_multi_assign(h->multi, fd, s);
    }
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= UV_WRITABLE;
    uv_poll_start(&s->poll, events, on_sock_poll);
    return 0;
}

static void on_curl_timeout(uv_timer_t *t)
{
    struct aws_http *h = container_of(t, struct aws_http, curl_timer);
    int running;
    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    http_check_done(h);
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct aws_http *h = userp;
    (void)multi;
    if (timeout_ms < 0)
        uv_timer_stop(&h->curl_timer);
    else
        uv_timer_start(&h->curl_timer, on_curl_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

/* ---- The client ------------------------------------------------------------------------------ */

struct aws_http *aws_http_new(uv_loop_t *loop, const struct aws_http_opts *opts, struct err *err)
{
    struct aws_http *h = xcalloc(1, sizeof(*h));
    h->loop = loop;
    if (opts != NULL)
        h->opts = *opts;
    struct aws_http_opts *o = &h->opts;
    if (o->config != NULL && (o->retry_mode == AWS_RETRY_DEFAULT || o->max_attempts == 0)) {
        struct aws_retry_config rc;
        if (aws_config_retry(o->config, &rc, err) != 0) {
            free(h);
            return NULL;
        }
        if (o->retry_mode == AWS_RETRY_DEFAULT)
            o->retry_mode = rc.mode;
        if (o->max_attempts == 0)
            o->max_attempts = rc.max_attempts;
    }
    if (o->retry_mode == AWS_RETRY_DEFAULT)
        o->retry_mode = AWS_RETRY_STANDARD;
    bool legacy = o->retry_mode == AWS_RETRY_LEGACY;
    if (o->ca_file == NULL && o->config != NULL)
        o->ca_file = aws_config_ca_bundle(o->config);
    if (o->connect_timeout_ms == 0)
        o->connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
    if (o->timeout_ms == 0)
        o->timeout_ms = DEFAULT_TIMEOUT_MS;
    if (o->max_attempts == 0)
        o->max_attempts = legacy ? LEGACY_MAX_ATTEMPTS : DEFAULT_MAX_ATTEMPTS;
    if (o->backoff_base_ms == 0)
        o->backoff_base_ms = DEFAULT_BACKOFF_BASE_MS;
    if (o->backoff_max_ms == 0)
        o->backoff_max_ms = legacy ? LEGACY_BACKOFF_MAX_MS : DEFAULT_BACKOFF_MAX_MS;
    if (o->retry_quota == 0)
        o->retry_quota = DEFAULT_RETRY_QUOTA;
    if (o->max_idle_connections == 0)
        o->max_idle_connections = DEFAULT_MAX_IDLE;
    if (o->max_response == 0)
        o->max_response = DEFAULT_MAX_RESPONSE;
    if (o->ca_file != NULL)
        o->ca_file = xstrdup(o->ca_file);
    if (o->creds != NULL) {
        aws_creds_copy(&h->creds, o->creds);
        h->have_creds = true;
    }
    o->creds = NULL;
    h->rng = o->seed != 0 ? o->seed : (uv_hrtime() ^ (uint64_t)(uintptr_t)h) | 1;

    h->multi = curl_multi_init();
    h->share = curl_share_init();
    if (h->multi == NULL || h->share == NULL) {
        if (h->multi != NULL)
            curl_multi_cleanup(h->multi);
        if (h->share != NULL)
            curl_share_cleanup(h->share);
        if (h->have_creds)
            aws_creds_release(&h->creds);
        free((char *)o->ca_file);
        free(h);
        err_set(err, AWS_ERR_CLIENT, "cannot create the curl multi handle");
        return NULL;
    }
    curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, (long)o->max_idle_connections);
    uv_timer_init(loop, &h->curl_timer);
    return h;
}

void aws_http_limits_set(struct aws_http *h, const struct aws_service *svc, const char *region,
                         const struct aws_http_limits *lim)
{
    struct lane *l = lane_get(h, svc->signing_name, region);
    limits_resolve(h, svc->signing_name, region, lim, &l->lim);
    if (l->tokens > l->lim.burst)
        l->tokens = l->lim.burst;
    lane_pump(l);
}

void aws_http_limits_get(struct aws_http *h, const struct aws_service *svc, const char *region,
                         struct aws_http_limits *out)
{
    struct lane *l = lane_find(h, svc->signing_name, region);
    if (l != NULL)
        *out = l->lim;
    else
        limits_resolve(h, svc->signing_name, region, NULL, out);
}

void aws_http_stats_get(struct aws_http *h, const struct aws_service *svc, const char *region,
                        struct aws_http_stats *out)
{
    struct lane *l = lane_find(h, svc->signing_name, region);
    memset(out, 0, sizeof(*out));
    if (l == NULL)
        return;
    *out = l->stats;
    out->in_flight = l->in_flight;
    out->retry_quota = l->retry_quota;
}

struct aws_http_call *aws_http_send(struct aws_http *h, const struct aws_service *svc,
                                    const char *region, const struct aws_endpoint *ep,
                                    struct aws_request *req, aws_http_done_fn done, void *arg,
                                    struct err *err)
{
    if (h->state != HTTP_OPEN) {
        aws_request_release(req);
        err_set(err, AWS_ERR_CLIENT, "the AWS client is closing");
        return NULL;
    }
    struct aws_http_call *c = xcalloc(1, sizeof(*c));
    c->h = h;
    c->req = *req;
    memset(req, 0, sizeof(*req));
    c->svc = svc;
    c->protocol = svc->protocol;
    c->done = done;
    c->arg = arg;
    c->state = CALL_QUEUED;
    buf_init(&c->body);
    uuid4(h, c->invocation_id);
    if (ep->base_path != NULL && ep->base_path[0] != '\0') {
        char *p = xasprintf("%s%s", ep->base_path, c->req.path);
        free(c->req.path);
        c->req.path = p;
    }
    if (aws_request_header_get(&c->req, "Host") == NULL)
        aws_request_header_add(&c->req, "Host", ep->host);
    c->url = xasprintf("%s://%s%s%s%s", ep->tls ? "https" : "http", ep->host, c->req.path,
                       c->req.query.len > 0 ? "?" : "", c->req.query.len > 0
                                                            ? buf_cstr(&c->req.query)
                                                            : "");
    uv_timer_init(h->loop, &c->timer);
    c->next = h->calls;
    if (h->calls != NULL)
        h->calls->prev = c;
    h->calls = c;
    c->lane = lane_get(h, svc->signing_name, region);
    lane_push(c->lane, c);
    lane_pump(c->lane);
    return c;
}

void aws_http_call_cancel(struct aws_http_call *c)
{
    switch (c->state) {
    case CALL_QUEUED:
        lane_remove(c->lane, c);
        break;
    case CALL_SENDING:
        attempt_reset(c);
        c->lane->in_flight--;
        break;
    case CALL_BACKOFF:
        uv_timer_stop(&c->timer);
        break;
    case CALL_DUE:
    case CALL_CLOSING:
        return;
    }
    err_reset(&c->err, AWS_ERR_CANCELLED, "the call was cancelled");
    free(c->error_code);
    c->error_code = NULL;
    call_end(c);
    lane_pump(c->lane);
}

static void on_http_handle_closed(uv_handle_t *handle)
{
    struct aws_http *h = handle->data;
    h->pending_closes--;
    http_maybe_free(h);
}

static void on_lane_closed(uv_handle_t *handle)
{
    struct lane *l = container_of((uv_timer_t *)handle, struct lane, timer);
    struct aws_http *h = l->h;
    free(l->service);
    free(l->region);
    free(l);
    h->pending_closes--;
    http_maybe_free(h);
}

/* Once every call is gone: curl is torn down (closing its sockets), then the client's own
 * handles; the client is freed by the last close callback. */
static void http_maybe_free(struct aws_http *h)
{
    if (h->state != HTTP_CLOSING || h->calls != NULL)
        return;
    if (h->multi != NULL) {
        h->pending_closes++; /* hold off the free while handles close below */
        curl_multi_cleanup(h->multi); /* may report sockets as removed */
        h->multi = NULL;
        curl_share_cleanup(h->share);
        h->share = NULL;
        while (h->socks != NULL)
            sock_close(h->socks);
        for (struct lane *l = h->lanes; l != NULL;) {
            struct lane *next = l->next;
            h->pending_closes++;
            uv_close((uv_handle_t *)&l->timer, on_lane_closed);
            l = next;
        }
        h->lanes = NULL;
        h->curl_timer.data = h;
        h->pending_closes++;
        uv_close((uv_handle_t *)&h->curl_timer, on_http_handle_closed);
        h->pending_closes--;
    }
    if (h->pending_closes > 0)
        return;
    if (h->have_creds)
        aws_creds_release(&h->creds);
    free((char *)h->opts.ca_file);
    free(h);
}

void aws_http_close(struct aws_http *h)
{
    assert(h->state == HTTP_OPEN);
    h->state = HTTP_CLOSING;
    if (h->creds_waiting) {
        aws_config_creds_unwait(h->opts.config, on_creds_ready, h);
        h->creds_waiting = false;
    }
    for (struct aws_http_call *c = h->calls; c != NULL; c = c->next)
        aws_http_call_cancel(c);
    http_maybe_free(h);
}
