/* integrations/aws/aws.h - the AWS transport's public contract: requests as they go on the
 * wire, SigV4 signing (header and presigned-query styles, every intermediate product kept),
 * and the AWS CLI's way of finding credentials, region and endpoint (integrations.md §7).
 *
 * Nothing here prints or touches the network. Secrets (secret keys, session tokens) never
 * appear in an err cause. The HTTP client, retries and rate limiting live elsewhere (http.c). */
#ifndef SFN_INTEGRATIONS_AWS_H
#define SFN_INTEGRATIONS_AWS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <uv.h>

#include "util/buf.h"
#include "util/err.h"

/* Error name of every client-side failure here (no credentials, unreadable config, a failing
 * credential_process, a bad endpoint URL). It is the AWS SDK for Java v1 class name; the
 * integration puts its service prefix in front ("EMR.SdkClientException", integrations.md
 * §1.7). */
#define AWS_ERR_CLIENT "SdkClientException"

/* ---- Requests -------------------------------------------------------------------------------- */

struct aws_header {
    char *name;  /* owned; case kept as sent */
    char *value; /* owned; as sent (may hold folded lines "a\n  b", which signing unfolds) */
};

/* One HTTP request as it goes on the wire. Signing adds headers or query parameters. */
struct aws_request {
    char *method;              /* owned: "GET", "POST", "DELETE" */
    char *path;                /* owned: as sent, already percent-encoded: "/applications/a%20b" */
    struct buf query;          /* as sent without the '?', already encoded; empty when none */
    struct aws_header *headers; /* owned, in sending order; must include Host before signing */
    size_t nheaders;           /* headers used */
    size_t capheaders;         /* headers allocated */
    struct buf body;           /* the payload; empty for none */
};

/* A request with no headers, query or body. `path` is used as given (already encoded). */
void aws_request_init(struct aws_request *r, const char *method, const char *path);
void aws_request_release(struct aws_request *r);
/* Appends a header (a repeated name is a second header, as on the wire). */
void aws_request_header_add(struct aws_request *r, const char *name, const char *value);
/* Removes every header called `name` (case-insensitive), then appends it. */
void aws_request_header_set(struct aws_request *r, const char *name, const char *value);
/* Removes every header called `name` (case-insensitive). */
void aws_request_header_del(struct aws_request *r, const char *name);
/* The first header called `name` (case-insensitive), or NULL. Borrowed. */
const char *aws_request_header_get(const struct aws_request *r, const char *name);
/* Appends name=value to the query, both percent-encoded (RFC 3986 unreserved kept). */
void aws_request_query_add(struct aws_request *r, const char *name, const char *value);
/* Replaces the body with a copy of `len` bytes of `data`. */
void aws_request_body_set(struct aws_request *r, const void *data, size_t len);

/* AWS JSON 1.1 (EMR, Athena): POST / with Host, X-Amz-Target: <target> and Content-Type:
 * application/x-amz-json-1.1, the headers botocore sends. `body` is the JSON text (at least
 * "{}"). `host` is aws_endpoint.host. */
void aws_request_init_json11(struct aws_request *r, const char *host, const char *target,
                             const char *body, size_t len);
/* REST-JSON (EMR on EKS, EMR Serverless): <method> <path> with Host, and Content-Type:
 * application/json only when `len` > 0 (botocore sends no body for URI-only inputs). `path`
 * must already be encoded (aws_uri_encode each label); add query members with
 * aws_request_query_add(). */
void aws_request_init_rest_json(struct aws_request *r, const char *method, const char *host,
                                const char *path, const char *body, size_t len);

/* Appends s[0..n) percent-encoded: RFC 3986 unreserved (A-Z a-z 0-9 - . _ ~) kept, and '/'
 * too when `keep_slash`; every other byte as %XX (upper-case hex). */
void aws_uri_encode(struct buf *b, const char *s, size_t n, bool keep_slash);

/* ---- SigV4 ----------------------------------------------------------------------------------- */

struct aws_creds {
    char *access_key_id;     /* owned */
    char *secret_access_key; /* owned; never copied into an err cause */
    char *session_token;     /* owned; NULL when none */
    time_t expiration;       /* Unix seconds; 0 when they do not expire */
    const char *source;      /* static, botocore's method name: "env", "shared-credentials-file",
                                "custom-process", "config-file"; NULL when set by hand */
};

/* Copies src into dst (dst must be released or fresh). */
void aws_creds_copy(struct aws_creds *dst, const struct aws_creds *src);
/* Frees the strings (the secret is wiped first) and zeroes the struct. */
void aws_creds_release(struct aws_creds *c);

enum aws_sigv4_style {
    AWS_SIGV4_HEADER, /* Authorization header (every API call) */
    AWS_SIGV4_QUERY,  /* presigned URL: X-Amz-* query parameters */
};

struct aws_sigv4_params {
    const struct aws_creds *creds; /* borrowed */
    const char *region;            /* "us-east-1" */
    const char *service;           /* signing name: "elasticmapreduce", "emr-containers",
                                      "emr-serverless", "athena" */
    time_t now;                    /* signing time, Unix seconds (the injected clock) */
    enum aws_sigv4_style style;
    bool normalize_path;     /* remove dot segments and repeated '/' (every service but S3) */
    bool content_sha256;     /* header style: add and sign x-amz-content-sha256 */
    bool omit_session_token; /* add the session token after signing, unsigned (the suite's
                                post-sts-header-after; some services want this) */
    unsigned expires;        /* query style: X-Amz-Expires in seconds (1..604800) */
};

/* Every intermediate product of one signing, so a test names the stage that differs. */
struct aws_sigv4_out {
    char amz_date[17];       /* "20150830T123600Z" */
    char *canonical_request; /* owned */
    char *string_to_sign;    /* owned */
    char *signed_headers;    /* owned: "host;x-amz-date" */
    char signature[65];      /* lower-case hex */
    char *authorization;     /* owned; header style: the Authorization value; else NULL */
};

/* Signs `r` in place. Header style: removes any earlier X-Amz-Date, X-Amz-Security-Token,
 * x-amz-content-sha256 and Authorization (so a retry re-signs), then appends
 * X-Amz-Security-Token (when the creds have one), X-Amz-Date, x-amz-content-sha256 (when
 * asked) and Authorization. Query style: appends X-Amz-Algorithm, X-Amz-Credential,
 * X-Amz-Date, X-Amz-SignedHeaders, X-Amz-Expires, X-Amz-Security-Token and X-Amz-Signature to
 * the query (sign a request once only). Every header is signed except the hop-by-hop ones
 * botocore leaves out (user-agent, expect, x-amzn-trace-id, connection, ...). `out` may be
 * NULL; otherwise it is overwritten (release it even after a failure). Returns 0, or -1 with
 * err set (AWS_ERR_CLIENT: no Host header, incomplete credentials). */
int aws_sigv4_sign(struct aws_request *r, const struct aws_sigv4_params *p,
                   struct aws_sigv4_out *out, struct err *err);
void aws_sigv4_out_release(struct aws_sigv4_out *out);

/* The canonical URI of an encoded request path: normalised when `normalize`, then encoded
 * again with '/' kept, so "%xx" becomes "%25xx" (non-S3 double encoding). */
void aws_sigv4_canonical_uri(struct buf *b, const char *path, bool normalize);
/* The canonical query string of an encoded query: each name and value decoded, re-encoded,
 * pairs sorted by name then value, "k=v" joined by '&'. */
void aws_sigv4_canonical_query(struct buf *b, const char *query, size_t len);
/* kSigning = HMAC chain over "AWS4"+secret, date (YYYYMMDD), region, service,
 * "aws4_request" (integrations.md §7.5). */
void aws_sigv4_signing_key(const char *secret, const char *date, const char *region,
                           const char *service, unsigned char key[32]);
/* Writes the lower-case hex SHA-256 of data[0..n) and a NUL into hex[65]. */
void aws_sha256_hex(const void *data, size_t n, char hex[65]);

/* ---- Services and endpoints ------------------------------------------------------------------ */

enum aws_protocol {
    AWS_PROTO_JSON,      /* awsJson1_1: POST / + X-Amz-Target */
    AWS_PROTO_REST_JSON, /* restJson1: method + URI + JSON body */
};

/* What the transport needs to know of one service model (integrations.md §2.1-5.1). */
struct aws_service {
    const char *service_id;      /* model serviceId: "EMR containers" -> AWS_ENDPOINT_URL_
                                    EMR_CONTAINERS, config key emr_containers */
    const char *endpoint_prefix; /* host label: "emr-containers" */
    const char *signing_name;    /* SigV4 scope service: "emr-containers" */
    const char *target_prefix;   /* AWS JSON: "ElasticMapReduce" (X-Amz-Target prefix); else NULL */
    enum aws_protocol protocol;
};

extern const struct aws_service aws_service_emr;
extern const struct aws_service aws_service_emr_containers;
extern const struct aws_service aws_service_emr_serverless;
extern const struct aws_service aws_service_athena;

struct aws_endpoint {
    char *url;       /* owned: scheme://host[:port][/base], no trailing '/' */
    char *host;      /* owned: the Host header: lower-case host, ":port" unless the default */
    char *base_path; /* owned: the override URL's path without trailing '/', "" when none;
                        request paths go after it */
    bool tls;        /* https */
};

void aws_endpoint_release(struct aws_endpoint *ep);
/* Parses an http(s) URL into `ep` (released by the caller). Returns 0, or -1 with err set. */
int aws_endpoint_parse(struct aws_endpoint *ep, const char *url, struct err *err);

/* ---- Credentials, region and endpoint resolution (integrations.md §7) ------------------------ */

/* Where configuration comes from: an environment lookup and a home directory, so tests can
 * feed tables of situations instead of the process environment. */
struct aws_env {
    /* Returns the value of `name` or NULL; `arg` is passed back. Empty values count as unset. */
    const char *(*get)(void *arg, const char *name);
    void *arg;
    const char *home; /* for ~/.aws/... and "~/" in AWS_CONFIG_FILE and friends; NULL = none */
};

/* An aws_env.get that reads the process environment (arg unused). */
const char *aws_env_getenv(void *arg, const char *name);

/* Settings of the engine itself, which beat the environment and the files. */
struct aws_config_opts {
    const char *profile;      /* NULL: AWS_PROFILE, AWS_DEFAULT_PROFILE, "default". An explicit
                                 profile also disables environment credentials (botocore) */
    const char *region;       /* NULL: AWS_REGION, AWS_DEFAULT_REGION, the profile's region */
    const char *endpoint_url; /* NULL: the §7.3 lookup, then the service's public host */
    unsigned process_timeout_ms; /* credential_process is killed after this long;
                                    0: AWS_CREDS_PROCESS_TIMEOUT_MS */
};

/* How long credential_process may run by default (botocore waits forever; a daemon should not). */
#define AWS_CREDS_PROCESS_TIMEOUT_MS 60000

/* Resolved configuration: profile, files, region, endpoints, credential source. */
struct aws_config;

/* Reads the environment and the shared config and credentials files once (`env` and `opts`
 * are copied; `opts` may be NULL). Missing files are fine; a file that cannot be parsed, or a
 * profile named explicitly (opts or env) that neither file has, is an error. Returns the
 * config, or NULL with err set (AWS_ERR_CLIENT). */
struct aws_config *aws_config_new(const struct aws_env *env, const struct aws_config_opts *opts,
                                  struct err *err);
/* A credential_process still running is killed; its handles close on the next run of its
 * loop (waiters must have gone: their callbacks never fire). */
void aws_config_free(struct aws_config *c);
/* The selected profile name. Borrowed. */
const char *aws_config_profile(const struct aws_config *c);
/* The region (integrations.md §7.2), or NULL when none is configured. Borrowed. */
const char *aws_config_region(const struct aws_config *c);
/* Where the region came from, in the words of `aws configure list`'s Type column: "engine"
 * (opts.region), "env", "config-file" (the profile, either file), or NULL when none. Static. */
const char *aws_config_region_source(const struct aws_config *c);
/* The CA bundle for TLS verification: AWS_CA_BUNDLE, else the profile's ca_bundle ("~/"
 * expanded), else NULL (the system's). Borrowed. */
const char *aws_config_ca_bundle(const struct aws_config *c);

/* Retry modes of the AWS SDKs ("Retry behavior", SDKs and Tools Reference Guide;
 * integrations.md §6.3). Adaptive mode is not supported: asking for it is an error. */
enum aws_retry_mode {
    AWS_RETRY_DEFAULT = 0, /* not set: the config's, else standard */
    AWS_RETRY_STANDARD,    /* 3 attempts, full-jitter back-off capped at 20 s, retry budget */
    AWS_RETRY_LEGACY,      /* botocore's legacy: 5 attempts, rand * 2^(n-1) s, no budget */
};

struct aws_retry_config {
    enum aws_retry_mode mode;  /* AWS_RETRY_DEFAULT when neither place sets it */
    unsigned max_attempts;     /* attempts in total, first included; 0 when not set */
    const char *mode_source;   /* "env" (AWS_RETRY_MODE), "config-file" (retry_mode), or NULL */
    const char *attempts_source; /* "env" (AWS_MAX_ATTEMPTS), "config-file" (max_attempts), or
                                    NULL */
};

/* The retry settings of the environment and the profile: AWS_RETRY_MODE, else retry_mode;
 * AWS_MAX_ATTEMPTS, else max_attempts. Returns 0, or -1 with err set (AWS_ERR_CLIENT): a mode
 * other than standard, legacy and adaptive; adaptive (not supported); an attempt count that is
 * not an integer >= 1. */
int aws_config_retry(const struct aws_config *c, struct aws_retry_config *out, struct err *err);

/* credential_process credentials are fetched again this long before their Expiration
 * (botocore's mandatory refresh window). */
#define AWS_CREDS_REFRESH_MARGIN 600

/* Credentials valid at `now` (Unix seconds), in botocore's order: environment (unless the
 * profile is explicit), the credentials file's profile, credential_process, the config file's
 * profile. Assume-role, web identity and SSO profiles are reported as unsupported; container
 * and instance-metadata credentials are not looked for. credential_process runs the command
 * (split like a POSIX shell would, no shell involved; stdin /dev/null; its own process group,
 * killed after opts.process_timeout_ms) the first time and again when `now` is within
 * AWS_CREDS_REFRESH_MARGIN of its Expiration. This form BLOCKS while the command runs (on a
 * private loop): on the engine's loop use aws_config_creds_async(). Must not be called while
 * an asynchronous run is in progress. Returns a borrowed pointer valid until the next call or
 * aws_config_free(), or NULL with err set (AWS_ERR_CLIENT; the cause never holds a secret). */
const struct aws_creds *aws_config_creds(struct aws_config *c, time_t now, struct err *err);

/* Fires once when the credential_process run a caller waited on has ended: `creds` (borrowed,
 * as from aws_config_creds) on success, else NULL and `err` (borrowed) set. */
typedef void (*aws_creds_ready_fn)(const struct aws_creds *creds, const struct err *err,
                                   void *arg);

/* aws_config_creds() for code on `loop`, which never blocks. When no command must run, returns
 * the credentials (borrowed, as aws_config_creds) and `ready` never fires. When one must, starts
 * it on `loop` with uv_spawn (or joins the run in progress: one run serves every waiter),
 * returns NULL with *pending set, and `ready` fires later from `loop`. Otherwise returns NULL
 * with *pending false and err set; `ready` never fires. */
const struct aws_creds *aws_config_creds_async(struct aws_config *c, uv_loop_t *loop,
                                               time_t now, aws_creds_ready_fn ready, void *arg,
                                               bool *pending, struct err *err);
/* Stops waiting: `ready` will not fire for this (ready, arg). The run goes on; its result is
 * kept for the next caller. */
void aws_config_creds_unwait(struct aws_config *c, aws_creds_ready_fn ready, void *arg);

/* The endpoint for `svc` in `region` (integrations.md §7.3): opts.endpoint_url, then unless
 * ignored (AWS_IGNORE_CONFIGURED_ENDPOINT_URLS / ignore_configured_endpoint_urls)
 * AWS_ENDPOINT_URL_<SERVICE_ID>, AWS_ENDPOINT_URL, the profile's `services` section, the
 * profile's endpoint_url; else https://<prefix>.<region>.amazonaws.com (".com.cn" for cn-*).
 * Fills `ep` (release it). Returns 0, or -1 with err set (AWS_ERR_CLIENT: bad URL, no region
 * for the default host). */
int aws_config_endpoint(const struct aws_config *c, const struct aws_service *svc,
                        const char *region, struct aws_endpoint *ep, struct err *err);

/* ---- HTTP client (http.c) -------------------------------------------------------------------
 *
 * Asynchronous HTTPS on the engine's libuv loop through libcurl's multi-socket interface (one
 * uv_poll_t per socket, one uv_timer_t for curl's timeout), with the AWS SDKs' standard or
 * legacy retry mode (integrations.md §6.3) and, per service and region (a "lane"), a cap on
 * requests in flight and a token-bucket rate limit that start from a default quota table.
 * Each attempt is signed just before it is sent. The caller must have called
 * curl_global_init() once in the process. */

/* Error name of a call given up by aws_http_call_cancel() or aws_http_close(). */
#define AWS_ERR_CANCELLED "Cancelled"

struct aws_http;      /* one client per loop */
struct aws_http_call; /* one API call, all of its attempts */

/* A rate that means "no rate limit" in struct aws_http_limits. */
#define AWS_HTTP_UNLIMITED (-1.0)

/* Limits of one lane (service signing name + region). A zero field takes the value of the
 * layer below: aws_http_limits_set() over aws_http_opts.limits over the default quota table
 * (aws_quota_find) over the generic default (50 in flight, no rate limit, burst 1). */
struct aws_http_limits {
    unsigned max_concurrent; /* requests in flight at once */
    double rate;             /* requests per second started, retries included;
                                AWS_HTTP_UNLIMITED: none */
    double burst;            /* token-bucket size in requests (1: a steady pace) */
};

/* One row of the default quota table: what a lane starts with, so that an engine nobody
 * tuned stays under the service's API quota (quotas are per account and region). */
struct aws_quota {
    const char *service;          /* signing name */
    const char *region;           /* a region, or "*" for every region without its own row */
    struct aws_http_limits limits;
    const char *source;           /* where the numbers come from */
};

/* The default quota row for a service in a region (a region's own row before "*"), or NULL
 * when the table has none. Static. */
const struct aws_quota *aws_quota_find(const char *service, const char *region);

struct aws_http_opts {
    const char *ca_file;          /* PEM CA bundle for TLS verification (on-prem endpoints);
                                     NULL: the config's (aws_config_ca_bundle), else the
                                     system's. Verification is never turned off */
    unsigned connect_timeout_ms;  /* per attempt; 0: 10000 */
    unsigned timeout_ms;          /* whole attempt, connect to last byte; 0: 60000 */
    enum aws_retry_mode retry_mode; /* AWS_RETRY_DEFAULT: the config's (aws_config_retry),
                                       else standard */
    unsigned max_attempts;        /* attempts per call, first included; 0: the config's, else
                                     the mode's (standard 3, legacy 5) */
    unsigned backoff_base_ms;     /* retry n waits rand(0,1) * min(base * 2^(n-1), max);
                                     0: 1000 */
    unsigned backoff_max_ms;      /* 0: 20000 in standard mode; none in legacy mode (botocore;
                                     kept below a day) */
    unsigned retry_quota;         /* standard mode's retry budget per lane in tokens; a retry
                                     costs 5, one after a timeout 10; a success gives back what
                                     its call took, or 1; 0: 500. Legacy mode has no budget */
    unsigned max_idle_connections; /* connections kept open for reuse; 0: 256 */
    size_t max_response;          /* bytes of one response body; 0: 16 MiB */
    struct aws_http_limits limits; /* every lane's, unless aws_http_limits_set() */
    struct aws_config *config;    /* borrowed, outlives the client: credentials are taken
                                     from it at each signing (credential_process runs without
                                     blocking the loop; calls wait for it), and the retry
                                     settings and CA bundle when not given here. NULL: `creds` */
    const struct aws_creds *creds; /* copied at aws_http_new(); used when config is NULL */
    time_t (*clock)(void *arg);   /* signing time in Unix seconds; NULL: time() */
    void *clock_arg;
    unsigned long long seed;      /* jitter and invocation ids; 0: from the clock */
};

/* How one call ended; borrowed by the callback only. */
struct aws_http_result {
    long status;               /* last HTTP status; 0 when no answer came */
    const char *body;          /* the last answer's body (NUL-terminated), "" when none */
    size_t body_len;
    const char *request_id;    /* x-amzn-RequestId, "" when none */
    const char *error_code;    /* sanitised code of a non-2xx answer ("ThrottlingException"),
                                  NULL on success or when no answer came */
    const char *error_message; /* its message, "" when none */
    unsigned attempts;         /* attempts sent (or tried) */
    bool retry_quota_empty;    /* a retryable failure was not retried: the budget was empty */
    const struct err *err;     /* unset on 2xx; else name = error_code, or AWS_ERR_CLIENT
                                  (network, TLS, signing, oversized answer), or
                                  AWS_ERR_CANCELLED; cause for people (no secrets) */
};

/* Called once per call, from the loop, never from inside aws_http_send(). After it returns
 * the call is gone. */
typedef void (*aws_http_done_fn)(struct aws_http_call *call, const struct aws_http_result *res,
                                 void *arg);

/* Counters of one lane, for tests and metrics. */
struct aws_http_stats {
    unsigned in_flight;      /* attempts on the wire now */
    unsigned max_in_flight;  /* the most at once so far */
    unsigned queued;         /* calls waiting for a slot or a token */
    unsigned retry_quota;    /* tokens left in the retry budget */
    unsigned long attempts;  /* attempts sent */
    unsigned long retries;   /* of which retries */
    unsigned long quota_refusals; /* retries refused for an empty budget */
};

/* A client on `loop` (opts copied; NULL: defaults and no credentials). Returns NULL with err
 * set (AWS_ERR_CLIENT) when curl cannot be set up or the config's retry settings are invalid
 * or unsupported (aws_config_retry). */
struct aws_http *aws_http_new(uv_loop_t *loop, const struct aws_http_opts *opts,
                              struct err *err);
/* Calls still pending end with AWS_ERR_CANCELLED on the next loop pass, then the client's
 * handles close and its memory is freed in their close callbacks (run the loop). */
void aws_http_close(struct aws_http *h);
/* Sets the limits of the lane of `svc` in `region` (created if new). */
void aws_http_limits_set(struct aws_http *h, const struct aws_service *svc, const char *region,
                         const struct aws_http_limits *lim);
/* The limits the lane of `svc` in `region` has, or would have when created, every layer
 * applied (rate 0: unlimited). */
void aws_http_limits_get(struct aws_http *h, const struct aws_service *svc, const char *region,
                         struct aws_http_limits *out);
/* Counters of the lane of `svc` in `region` (zeros when it has none). */
void aws_http_stats_get(struct aws_http *h, const struct aws_service *svc, const char *region,
                        struct aws_http_stats *out);

/* Starts one API call: `req` (stolen, even on failure) goes to `ep` (copied), signed for
 * `svc` in `region`; ep->base_path is put in front of req->path, Host is set from ep when
 * missing. `done` fires once. Returns the call, or NULL with err set (AWS_ERR_CLIENT: the
 * client is closing); then `done` never fires. */
struct aws_http_call *aws_http_send(struct aws_http *h, const struct aws_service *svc,
                                    const char *region, const struct aws_endpoint *ep,
                                    struct aws_request *req, aws_http_done_fn done, void *arg,
                                    struct err *err);
/* Gives the call up: its callback fires on the next loop pass with AWS_ERR_CANCELLED (an
 * attempt on the wire is abandoned; the service may still act on it). No effect once the
 * callback has fired or is due. */
void aws_http_call_cancel(struct aws_http_call *call);

/* The error code and message of a non-2xx answer (integrations.md §6.1, 6.2): the
 * x-amzn-ErrorType header (`errtype`, may be NULL), then the body's __type, code or Code
 * (REST-JSON: code/Code before __type), then the status; cut at the first ':' and after the
 * last '#'. Message from message, Message or errorMessage, or the raw body when not JSON.
 * Both are new strings (free them). */
void aws_http_error_parse(enum aws_protocol proto, long status, const char *errtype,
                          const char *body, size_t len, char **code, char **message);
/* Whether the standard retry mode retries this answer: 429, 500, 502, 503, 504, and the
 * throttling and transient codes of integrations.md §6.3. */
bool aws_http_retryable(long status, const char *code);
/* Whether botocore's legacy mode retries it (§6.3): 429, 500, 502, 503, 504, 509, and 400 with
 * Throttling, ThrottlingException, ThrottledException, RequestThrottledException or
 * ProvisionedThroughputExceededException. */
bool aws_http_retryable_legacy(long status, const char *code);

#endif
