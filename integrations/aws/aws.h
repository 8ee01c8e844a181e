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
    const char *profile;      /* NULL: AWS_DEFAULT_PROFILE, AWS_PROFILE, "default". An explicit
                                 profile also disables environment credentials (botocore) */
    const char *region;       /* NULL: AWS_REGION, AWS_DEFAULT_REGION, the profile's region */
    const char *endpoint_url; /* NULL: the §7.3 lookup, then the service's public host */
};

/* Resolved configuration: profile, files, region, endpoints, credential source. */
struct aws_config;

/* Reads the environment and the shared config and credentials files once (`env` and `opts`
 * are copied; `opts` may be NULL). Missing files are fine; a file that cannot be parsed, or a
 * profile named explicitly (opts or env) that neither file has, is an error. Returns the
 * config, or NULL with err set (AWS_ERR_CLIENT). */
struct aws_config *aws_config_new(const struct aws_env *env, const struct aws_config_opts *opts,
                                  struct err *err);
void aws_config_free(struct aws_config *c);
/* The selected profile name. Borrowed. */
const char *aws_config_profile(const struct aws_config *c);
/* The region (integrations.md §7.2), or NULL when none is configured. Borrowed. */
const char *aws_config_region(const struct aws_config *c);

/* credential_process credentials are fetched again this long before their Expiration
 * (botocore's mandatory refresh window). */
#define AWS_CREDS_REFRESH_MARGIN 600

/* Credentials valid at `now` (Unix seconds), in botocore's order: environment (unless the
 * profile is explicit), the credentials file's profile, credential_process, the config file's
 * profile. Assume-role, web identity and SSO profiles are reported as unsupported; container
 * and instance-metadata credentials are not looked for. credential_process runs the command
 * (split like a POSIX shell would, no shell involved) the first time and again when `now` is
 * within AWS_CREDS_REFRESH_MARGIN of its Expiration; it BLOCKS until the command exits, so
 * call it off the event loop or accept the stall (a few ms for a local script). Returns a
 * borrowed pointer valid until the next call or aws_config_free(), or NULL with err set
 * (AWS_ERR_CLIENT; the cause never holds a secret). */
const struct aws_creds *aws_config_creds(struct aws_config *c, time_t now, struct err *err);

/* The endpoint for `svc` in `region` (integrations.md §7.3): opts.endpoint_url, then unless
 * ignored (AWS_IGNORE_CONFIGURED_ENDPOINT_URLS / ignore_configured_endpoint_urls)
 * AWS_ENDPOINT_URL_<SERVICE_ID>, AWS_ENDPOINT_URL, the profile's `services` section, the
 * profile's endpoint_url; else https://<prefix>.<region>.amazonaws.com (".com.cn" for cn-*).
 * Fills `ep` (release it). Returns 0, or -1 with err set (AWS_ERR_CLIENT: bad URL, no region
 * for the default host). */
int aws_config_endpoint(const struct aws_config *c, const struct aws_service *svc,
                        const char *region, struct aws_endpoint *ep, struct err *err);

#endif
