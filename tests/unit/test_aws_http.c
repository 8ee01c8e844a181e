/* tests/unit/test_aws_http.c - the AWS transport (integrations/aws/http.c, issue #5) against
 * the fake AWS of tests/fakeaws/ (started here with /usr/bin/python3, killed by PID at exit;
 * the test FAILS when it cannot start, e.g. without python3-botocore). Checks:
 *   - error bodies of both protocols parsed into {code, message} (integrations.md §6.1, 6.2)
 *     and the standard mode's retryable set (§6.3);
 *   - 1,000 concurrent requests (awsJson1_1 and restJson1) complete on one loop, every
 *     signature accepted by botocore's signer, no Expect: 100-continue, connections reused;
 *   - the per-lane concurrency cap holds at the fake;
 *   - with 20% injected faults (throttling, 500, 503, dropped connections, replies slower than
 *     the timeout) every call ends correctly within attempts and the retry budget;
 *   - the rate limit holds: request rate measured at the fake within 5% of the setting;
 *   - no retry after a non-retryable error; throttling retried up to max_attempts;
 *   - cancel and close deliver AWS_ERR_CANCELLED; no fd, handle or memory leak (run under
 *     ASan/LSan), uv_loop_close() == 0;
 *   - TLS: the fake's HTTPS port (a self-signed certificate the fake makes with the openssl
 *     command in a temporary directory) is refused with a clear verification error without a
 *     CA bundle, and works with ca_file or AWS_CA_BUNDLE pointing at that certificate;
 *   - retry modes: legacy (5 attempts, its own retryable set, no budget) and standard, from
 *     AWS_RETRY_MODE / AWS_MAX_ATTEMPTS or the profile; adaptive refused;
 *   - the default quota table applies per service and region and can be overridden;
 *   - a slow credential_process does not stall the loop: calls wait for it, a timer keeps
 *     firing, and the command runs once for all of them.
 * Prints figures (requests/s, fault outcomes, measured rate) on lines starting with "#". */
#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <uv.h>

#include "integrations/aws/aws.h"
#include "tests/unit/testlib.h"
#include "util/buf.h"
#include "util/xalloc.h"

#define FAKE "tests/fakeaws/fakeaws.py"
#define REGION "us-east-1"

static struct tl T;
static pid_t fake_pid = -1;
static int fake_port;
static int fake_tls_port;
static char fake_url[64];
static char tls_dir[64];  /* the fake's certificate: tls_dir/cert.pem */
static char root[4096];   /* the repository (the working directory) */

/* ---- The fake ------------------------------------------------------------------------------- */

static void fake_kill(void)
{
    if (fake_pid > 0) {
        kill(fake_pid, SIGKILL);
        waitpid(fake_pid, NULL, 0);
        fake_pid = -1;
    }
    if (tls_dir[0] != '\0') {
        char path[128];
        snprintf(path, sizeof(path), "%s/cert.pem", tls_dir);
        unlink(path);
        snprintf(path, sizeof(path), "%s/key.pem", tls_dir);
        unlink(path);
        rmdir(tls_dir);
        tls_dir[0] = '\0';
    }
}

static void on_signal(int sig)
{
    fake_kill();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Starts the fake and reads its port. Returns 0, or -1 with a message printed. */
static int fake_start(void)
{
    int fds[2];
    if (access("/usr/bin/python3", X_OK) != 0 || access(FAKE, R_OK) != 0) {
        printf("FAIL fake: /usr/bin/python3 or %s missing\n", FAKE);
        return -1;
    }
    snprintf(tls_dir, sizeof(tls_dir), "/tmp/sfnd-tls-XXXXXX");
    if (mkdtemp(tls_dir) == NULL) {
        tls_dir[0] = '\0';
        printf("FAIL fake: mkdtemp\n");
        return -1;
    }
    atexit(fake_kill); /* kills the fake, removes tls_dir */
    if (pipe(fds) != 0)
        return -1;
    fake_pid = fork();
    if (fake_pid < 0)
        return -1;
    if (fake_pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execl("/usr/bin/python3", "python3", FAKE, "--tls-dir", tls_dir, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGABRT, on_signal);
    char line[32];
    size_t n = 0;
    struct pollfd pfd = {fds[0], POLLIN, 0};
    while (n < sizeof(line) - 1 && poll(&pfd, 1, 20000) == 1) {
        ssize_t r = read(fds[0], line + n, 1);
        if (r <= 0 || line[n] == '\n')
            break;
        n++;
    }
    line[n] = '\0';
    close(fds[0]);
    char *end;
    long port = strtol(line, &end, 10);
    long tls_port = *end == ' ' ? strtol(end + 1, &end, 10) : 0;
    if (n == 0 || *end != '\0' || port <= 0 || port > 65535 || tls_port <= 0 ||
        tls_port > 65535) {
        printf("FAIL fake: did not start (are python3-botocore and openssl installed?)\n");
        return -1;
    }
    fake_port = (int)port;
    fake_tls_port = (int)tls_port;
    snprintf(fake_url, sizeof(fake_url), "http://127.0.0.1:%d", fake_port);
    return 0;
}

static size_t on_control_body(char *d, size_t s, size_t n, void *arg)
{
    buf_add(arg, d, s * n);
    return s * n;
}

/* A blocking control request to the fake. Returns a new reference, or NULL. */
static json_t *fake_control(const char *method, const char *path, const char *body)
{
    char url[128];
    snprintf(url, sizeof(url), "%s%s", fake_url, path);
    struct buf out = BUF_INIT;
    CURL *e = curl_easy_init();
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_control_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &out);
    if (strcmp(method, "POST") == 0)
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body != NULL ? body : "{}");
    CURLcode rc = curl_easy_perform(e);
    curl_easy_cleanup(e);
    json_t *doc = rc == CURLE_OK ? json_loadb(out.data, out.len, 0, NULL) : NULL;
    buf_release(&out);
    return doc;
}

static void fake_script(const char *json)
{
    json_t *r = fake_control("POST", "/__fake/script", json);
    tl_check(&T, r != NULL, "fake", "script %s refused", json);
    json_decref(r);
}

static long log_int(json_t *log, const char *key)
{
    return (long)json_integer_value(json_object_get(log, key));
}

/* ---- Requests -------------------------------------------------------------------------------- */

struct slot {
    int fired;           /* callbacks seen (must end at 1) */
    long status;
    unsigned attempts;
    bool quota_empty;
    char err[ERR_NAME_MAX]; /* err name, "" on success */
    char cause[512];     /* its cause */
    json_t *body;        /* new reference: the answer, when 2xx */
};

struct batch {
    struct slot *slots;
    size_t n;
    size_t done;
    struct aws_http_call **calls;
};

struct tag {
    struct batch *b;
    size_t i;
};

static void on_done(struct aws_http_call *call, const struct aws_http_result *res, void *arg)
{
    struct tag *t = arg;
    struct slot *s = &t->b->slots[t->i];
    (void)call;
    s->fired++;
    s->status = res->status;
    s->attempts = res->attempts;
    s->quota_empty = res->retry_quota_empty;
    snprintf(s->err, sizeof(s->err), "%s", res->err->set ? res->err->name : "");
    snprintf(s->cause, sizeof(s->cause), "%s",
             res->err->set && res->err->cause != NULL ? res->err->cause : "");
    if (!res->err->set)
        s->body = json_loadb(res->body, res->body_len, 0, NULL);
    t->b->calls[t->i] = NULL;
    t->b->done++;
    free(t);
}

static void batch_init(struct batch *b, size_t n)
{
    b->slots = xcalloc(n, sizeof(*b->slots));
    b->calls = xcalloc(n, sizeof(*b->calls));
    b->n = n;
    b->done = 0;
}

static void batch_release(struct batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        json_decref(b->slots[i].body);
    free(b->slots);
    free(b->calls);
}

static void batch_wait(uv_loop_t *loop, struct batch *b)
{
    while (b->done < b->n)
        uv_run(loop, UV_RUN_ONCE);
}

static struct aws_endpoint EP;

static void send_req(struct aws_http *h, const struct aws_service *svc, struct aws_request *r,
                     struct batch *b, size_t i)
{
    struct tag *t = xmalloc(sizeof(*t));
    t->b = b;
    t->i = i;
    struct err err = ERR_INIT;
    b->calls[i] = aws_http_send(h, svc, REGION, &EP, r, on_done, t, &err);
    if (b->calls[i] == NULL) {
        tl_check(&T, false, "send", "aws_http_send: %s", err.cause);
        err_clear(&err);
        free(t);
        b->done++;
    }
}

static void athena_start(struct aws_http *h, struct batch *b, size_t i, const char *query)
{
    char body[256];
    snprintf(body, sizeof(body),
             "{\"QueryString\": \"%s\", \"ClientRequestToken\": \"tok-%zu-%p-0000000000000000\"}",
             query, i, (void *)b);
    struct aws_request r;
    aws_request_init_json11(&r, EP.host, "AmazonAthena.StartQueryExecution", body, strlen(body));
    send_req(h, &aws_service_athena, &r, b, i);
}

static void athena_json(struct aws_http *h, struct batch *b, size_t i, const char *op,
                        const char *body)
{
    char target[128];
    snprintf(target, sizeof(target), "AmazonAthena.%s", op);
    struct aws_request r;
    aws_request_init_json11(&r, EP.host, target, body, strlen(body));
    send_req(h, &aws_service_athena, &r, b, i);
}

static void sls_get_app(struct aws_http *h, struct batch *b, size_t i, const char *app)
{
    char path[128];
    snprintf(path, sizeof(path), "/applications/%s", app);
    struct aws_request r;
    aws_request_init_rest_json(&r, "GET", EP.host, path, NULL, 0);
    send_req(h, &aws_service_emr_serverless, &r, b, i);
}

static struct aws_creds CREDS = {(char *)"test", (char *)"test", NULL, 0, NULL};

static struct aws_http *client(uv_loop_t *loop, const struct aws_http_opts *o)
{
    struct aws_http_opts opts = *o;
    opts.creds = opts.creds != NULL ? opts.creds : &CREDS;
    struct err err = ERR_INIT;
    struct aws_http *h = aws_http_new(loop, &opts, &err);
    if (h == NULL) {
        printf("FAIL aws_http_new: %s\n", err.cause);
        exit(1);
    }
    return h;
}

static void client_close(uv_loop_t *loop, struct aws_http *h)
{
    aws_http_close(h);
    uv_run(loop, UV_RUN_DEFAULT);
}

static int fd_count(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the directory's own */
}

/* ---- Tests ----------------------------------------------------------------------------------- */

/* integrations.md §6.1/6.2: the code comes from the header, then the body; sanitised. */
static void test_error_parse(void)
{
    static const struct {
        enum aws_protocol proto;
        long status;
        const char *errtype, *body, *code, *message;
    } cases[] = {
        {AWS_PROTO_JSON, 400, NULL,
         "{\"__type\":\"com.amazon.coral.service#ThrottlingException\",\"message\":\"Rate\"}",
         "ThrottlingException", "Rate"},
        {AWS_PROTO_JSON, 400, NULL, "{\"__type\":\"InvalidRequestException\",\"Message\":\"M\"}",
         "InvalidRequestException", "M"},
        {AWS_PROTO_REST_JSON, 400,
         "ValidationException:http://internal.amazon.com/coral/com.amazon.coral.validate/",
         "{\"message\":\"bad\"}", "ValidationException", "bad"},
        {AWS_PROTO_REST_JSON, 404, NULL, "{\"code\":\"ResourceNotFoundException\",\"__type\":"
                                         "\"X\",\"message\":\"gone\"}",
         "ResourceNotFoundException", "gone"},
        {AWS_PROTO_JSON, 503, NULL, "<html>Service Unavailable</html>", "503",
         "<html>Service Unavailable</html>"},
        {AWS_PROTO_JSON, 500, NULL, "", "500", ""},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char *code, *msg;
        aws_http_error_parse(cases[i].proto, cases[i].status, cases[i].errtype, cases[i].body,
                             strlen(cases[i].body), &code, &msg);
        tl_check(&T, strcmp(code, cases[i].code) == 0 && strcmp(msg, cases[i].message) == 0,
                 "error_parse", "case %zu: got {%s, %s}", i, code, msg);
        free(code);
        free(msg);
    }
    /* §6.3 standard mode */
    tl_check(&T, aws_http_retryable(400, "ThrottlingException"), "retryable", "throttling");
    tl_check(&T, aws_http_retryable(400, "RequestThrottledException"), "retryable", "eks");
    tl_check(&T, aws_http_retryable(429, "EKSRequestThrottledException"), "retryable", "429");
    tl_check(&T, aws_http_retryable(503, "ServiceUnavailableException"), "retryable", "503");
    tl_check(&T, !aws_http_retryable(400, "ValidationException"), "retryable", "validation");
    tl_check(&T, !aws_http_retryable(403, "InvalidSignatureException"), "retryable", "403");
    tl_check(&T, !aws_http_retryable(404, "ResourceNotFoundException"), "retryable", "404");
}

static char app_id[64];

/* Creates the EMR Serverless application the GetApplication requests read. */
static void setup_app(uv_loop_t *loop)
{
    struct aws_http_opts o = {0};
    struct aws_http *h = client(loop, &o);
    struct batch b;
    batch_init(&b, 1);
    const char *body = "{\"name\":\"a\",\"releaseLabel\":\"emr-6.9.0\",\"type\":\"SPARK\","
                       "\"clientToken\":\"setup-token\"}";
    struct aws_request r;
    aws_request_init_rest_json(&r, "POST", EP.host, "/applications", body, strlen(body));
    send_req(h, &aws_service_emr_serverless, &r, &b, 0);
    batch_wait(loop, &b);
    const char *id = json_string_value(json_object_get(b.slots[0].body, "applicationId"));
    tl_check(&T, b.slots[0].status == 200 && id != NULL, "setup", "CreateApplication: %ld %s",
             b.slots[0].status, b.slots[0].err);
    snprintf(app_id, sizeof(app_id), "%s", id != NULL ? id : "none");
    batch_release(&b);
    client_close(loop, h);
}

/* Forgets the fake's resources, log and script, then creates the application again. */
static void fake_reset(uv_loop_t *loop)
{
    json_decref(fake_control("POST", "/__fake/reset", NULL));
    setup_app(loop);
}

static bool slot_ok(const struct slot *s, bool athena)
{
    if (s->fired != 1 || s->status != 200 || s->body == NULL)
        return false;
    if (athena)
        return json_is_string(json_object_get(s->body, "QueryExecutionId"));
    json_t *app = json_object_get(s->body, "application");
    return json_is_object(app) && strcmp(json_string_value(json_object_get(app,
                                                                        "applicationId")),
                                         app_id) == 0;
}

/* 1,000 concurrent requests on one loop, half awsJson1_1, half restJson1; then again, which
 * must reuse the open connections. */
static void test_concurrency(uv_loop_t *loop)
{
    const size_t n = 1000;
    struct aws_http_opts o = {.limits = {.max_concurrent = 1000, .rate = AWS_HTTP_UNLIMITED},
                              .max_idle_connections = 1100};
    struct aws_http *h = client(loop, &o);
    fake_reset(loop);
    json_t *log0 = fake_control("GET", "/__fake/log", NULL);
    long conn_prev = log_int(log0, "connections");
    json_decref(log0);
    for (int round = 0; round < 2; round++) {
        struct batch b;
        batch_init(&b, n);
        uint64_t t0 = uv_hrtime();
        for (size_t i = 0; i < n; i++) {
            if (i % 2 == 0)
                athena_start(h, &b, i, "SELECT 1");
            else
                sls_get_app(h, &b, i, app_id);
        }
        batch_wait(loop, &b);
        double secs = (double)(uv_hrtime() - t0) / 1e9;
        size_t ok = 0;
        for (size_t i = 0; i < n; i++)
            ok += slot_ok(&b.slots[i], i % 2 == 0);
        struct aws_http_stats sa, ss;
        aws_http_stats_get(h, &aws_service_athena, REGION, &sa);
        aws_http_stats_get(h, &aws_service_emr_serverless, REGION, &ss);
        json_t *log = fake_control("GET", "/__fake/log", NULL);
        /* new connections at the fake, less the one asking for the log */
        long conns = log_int(log, "connections") - conn_prev - 1;
        conn_prev = log_int(log, "connections");
        printf("# concurrency round %d: %zu/%zu ok in %.2f s (%.0f requests/s), in flight at "
               "once %u + %u, connections at the fake %ld\n",
               round + 1, ok, n, secs, (double)n / secs, sa.max_in_flight, ss.max_in_flight,
               conns);
        tl_check(&T, ok == n, "concurrency", "round %d: %zu of %zu requests ok", round, ok, n);
        tl_check(&T, sa.max_in_flight + ss.max_in_flight == n, "concurrency",
                 "round %d: %u requests in flight at once, want %zu", round,
                 sa.max_in_flight + ss.max_in_flight, n);
        tl_check(&T, log_int(log, "signatures_ok") == (long)(n * (size_t)(round + 1)) + 1 &&
                     log_int(log, "signatures_bad") == 0,
                 "concurrency", "signatures ok %ld bad %ld", log_int(log, "signatures_ok"),
                 log_int(log, "signatures_bad"));
        tl_check(&T, log_int(log, "expect_100") == 0, "concurrency", "Expect: 100-continue sent");
        tl_check(&T, log_int(log, "invocations_without_id") == 0, "concurrency",
                 "requests without amz-sdk-invocation-id");
        if (round == 1)
            tl_check(&T, conns < (long)n / 10, "reuse", "second round opened %ld connections",
                     conns);
        json_decref(log);
        batch_release(&b);
    }
    client_close(loop, h);
}

/* The per-lane cap holds at the fake, with every reply slow enough to overlap. */
static void test_cap(uv_loop_t *loop)
{
    const size_t n = 200;
    struct aws_http_opts o = {.limits = {.max_concurrent = 20, .rate = AWS_HTTP_UNLIMITED}};
    struct aws_http *h = client(loop, &o);
    fake_reset(loop);
    fake_script("{\"faults\": {\"rate\": 1.0, \"kinds\": [\"slow\"], \"slow_ms\": 50}}");
    struct batch b;
    batch_init(&b, n);
    for (size_t i = 0; i < n; i++)
        athena_start(h, &b, i, "SELECT 2");
    batch_wait(loop, &b);
    size_t ok = 0;
    for (size_t i = 0; i < n; i++)
        ok += slot_ok(&b.slots[i], true);
    json_t *log = fake_control("GET", "/__fake/log", NULL);
    long at_fake = (long)json_integer_value(
        json_object_get(json_object_get(log, "by_service_max_inflight"), "athena"));
    printf("# cap 20: %zu/%zu ok, at most %ld in flight at the fake\n", ok, n, at_fake);
    tl_check(&T, ok == n, "cap", "%zu of %zu ok", ok, n);
    tl_check(&T, at_fake <= 20 && at_fake >= 15, "cap", "%ld in flight at the fake", at_fake);
    json_decref(log);
    fake_script("{\"faults\": {}}");
    batch_release(&b);
    client_close(loop, h);
}

static void on_wait(uv_timer_t *t)
{
    (void)t;
}

/* 20% of attempts fail (throttling, 500, 503, dropped connection, reply after the timeout):
 * every call ends exactly once, successes carry the right answer, failures are justified
 * (attempts used up or retry budget empty), and attempts agree with the fake's. */
static void test_faults(uv_loop_t *loop)
{
    const size_t n = 1000;
    struct aws_http_opts o = {
        .limits = {.max_concurrent = 200, .rate = AWS_HTTP_UNLIMITED},
        .timeout_ms = 1000,
        .backoff_base_ms = 20,
        .backoff_max_ms = 200,
        .seed = 42,
    };
    struct aws_http *h = client(loop, &o);
    fake_reset(loop);
    fake_script("{\"seed\": 7, \"faults\": {\"rate\": 0.2, \"kinds\": [\"throttle\", \"500\", "
                "\"503\", \"drop\", \"slow\"], \"slow_ms\": 1500}}");
    struct batch b;
    batch_init(&b, n);
    uint64_t t0 = uv_hrtime();
    for (size_t i = 0; i < n; i++) {
        if (i % 2 == 0)
            athena_start(h, &b, i, "SELECT 3");
        else
            sls_get_app(h, &b, i, app_id);
    }
    batch_wait(loop, &b);
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    size_t ok = 0, exhausted = 0, budget = 0, wrong = 0, once = 0;
    unsigned long attempts = 0;
    for (size_t i = 0; i < n; i++) {
        struct slot *s = &b.slots[i];
        once += s->fired == 1;
        attempts += s->attempts;
        if (slot_ok(s, i % 2 == 0)) {
            ok++;
        } else if (s->err[0] != '\0' && s->attempts == 3) {
            exhausted++;
        } else if (s->err[0] != '\0' && s->quota_empty) {
            budget++;
        } else {
            wrong++;
            if (wrong <= 5)
                printf("# unexpected end: status %ld err '%s' attempts %u\n", s->status, s->err,
                       s->attempts);
        }
    }
    struct aws_http_stats sa, ss;
    aws_http_stats_get(h, &aws_service_athena, REGION, &sa);
    aws_http_stats_get(h, &aws_service_emr_serverless, REGION, &ss);

    /* replies slower than the timeout reach the fake's log late: let them land */
    uv_timer_t wait;
    uv_timer_init(loop, &wait);
    uv_timer_start(&wait, on_wait, 1600, 0);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&wait, NULL);
    uv_run(loop, UV_RUN_DEFAULT);

    json_t *log = fake_control("GET", "/__fake/log", NULL);
    json_t *faults = json_object_get(log, "faults");
    long nfaults = 0;
    const char *k;
    json_t *v;
    json_object_foreach(faults, k, v) nfaults += (long)json_integer_value(v);
    printf("# faults 20%%: %zu calls in %.2f s: %zu ok, %zu failed after 3 attempts, %zu failed "
           "on an empty retry budget, %zu wrong; %lu attempts (%lu retries), %ld faults "
           "injected (throttle %ld, 500 %ld, 503 %ld, drop %ld, slow %ld); retry budget left "
           "%u + %u of 500 + 500\n",
           n, secs, ok, exhausted, budget, wrong, attempts, sa.retries + ss.retries, nfaults,
           log_int(faults, "throttle"), log_int(faults, "500"), log_int(faults, "503"),
           log_int(faults, "drop"), log_int(faults, "slow"), sa.retry_quota, ss.retry_quota);
    tl_check(&T, once == n, "faults", "%zu of %zu callbacks fired exactly once", once, n);
    tl_check(&T, wrong == 0, "faults", "%zu calls ended wrongly", wrong);
    tl_check(&T, ok >= n * 95 / 100, "faults", "only %zu of %zu succeeded", ok, n);
    tl_check(&T, attempts == sa.attempts + ss.attempts, "faults", "attempts %lu vs stats %lu",
             attempts, sa.attempts + ss.attempts);
    tl_check(&T, log_int(log, "retried_after_nonretryable") == 0, "faults",
             "%ld retries after a non-retryable answer",
             log_int(log, "retried_after_nonretryable"));
    tl_check(&T, log_int(log, "signatures_bad") == 0, "faults", "bad signatures on retries");
    /* every attempt the client sent reached the fake (curl may resend once on a reused
     * connection that died before answering, which the fake sees twice) */
    tl_check(&T, log_int(log, "requests") >= (long)attempts, "faults",
             "fake saw %ld requests, client sent %lu attempts", log_int(log, "requests"),
             attempts);
    json_t *inv = json_object_get(log, "invocations");
    size_t mismatch = 0;
    json_object_foreach(inv, k, v) {
        json_t *last = json_array_get(v, json_array_size(v) - 1);
        long max_attempt = (long)json_integer_value(json_array_get(last, 0));
        if (max_attempt < 1 || max_attempt > 3)
            mismatch++;
    }
    tl_check(&T, json_object_size(inv) == n + 1 && mismatch == 0, "faults",
             "%zu invocations at the fake (want %zu and the setup's), %zu with a wrong attempt "
             "count", json_object_size(inv), n, mismatch);
    json_decref(log);
    fake_script("{\"faults\": {}}");
    batch_release(&b);
    client_close(loop, h);
}

/* A steady 200 requests/s at the fake, from 600 calls queued at once. */
static void test_rate(uv_loop_t *loop)
{
    const size_t n = 600;
    const double rate = 200.0;
    struct aws_http_opts o = {.limits = {.max_concurrent = 100, .rate = rate, .burst = 1}};
    struct aws_http *h = client(loop, &o);
    fake_reset(loop);
    struct batch b;
    batch_init(&b, n);
    for (size_t i = 0; i < n; i++)
        athena_start(h, &b, i, "SELECT 4");
    batch_wait(loop, &b);
    size_t ok = 0;
    for (size_t i = 0; i < n; i++)
        ok += slot_ok(&b.slots[i], true);
    json_t *log = fake_control("GET", "/__fake/log", NULL);
    json_t *arr = json_array(); /* new reference: the arrivals, without the setup's */
    json_array_extend(arr, json_object_get(log, "arrivals"));
    json_array_remove(arr, 0);
    size_t na = json_array_size(arr);
    double first = json_real_value(json_array_get(arr, 0));
    double last = json_real_value(json_array_get(arr, na - 1));
    double measured = na > 1 && last > first ? (double)(na - 1) / (last - first) : 0;
    /* the busiest second anywhere in the run */
    size_t peak = 0;
    for (size_t i = 0, j = 0; i < na; i++) {
        while (j < na && json_real_value(json_array_get(arr, j)) <
                             json_real_value(json_array_get(arr, i)) + 1.0)
            j++;
        if (j - i > peak)
            peak = j - i;
    }
    printf("# rate limit %.0f/s: %zu/%zu ok, measured at the fake %.1f requests/s (%+.2f%%), "
           "busiest second %zu requests\n",
           rate, ok, n, measured, (measured - rate) * 100.0 / rate, peak);
    json_decref(arr);
    tl_check(&T, ok == n && na == n, "rate", "%zu ok, %zu arrivals", ok, na);
    tl_check(&T, measured > rate * 0.95 && measured < rate * 1.05, "rate",
             "measured %.1f/s for a setting of %.0f/s", measured, rate);
    tl_check(&T, peak <= (size_t)(rate * 1.05) + 1, "rate", "busiest second had %zu", peak);
    json_decref(log);
    batch_release(&b);
    client_close(loop, h);
}

/* Non-retryable answers end the call at once; throttling is retried up to max_attempts. */
static void test_no_retry(uv_loop_t *loop)
{
    struct aws_http_opts o = {.backoff_base_ms = 10, .limits = {.rate = AWS_HTTP_UNLIMITED}};
    struct aws_http *h = client(loop, &o);
    struct aws_creds bad = {(char *)"test", (char *)"wrong", NULL, 0, NULL};
    struct aws_http_opts ob = {.creds = &bad};
    struct aws_http *hb = client(loop, &ob);
    fake_reset(loop);
    struct batch b;
    batch_init(&b, 6);
    athena_json(h, &b, 0, "StartQueryExecution", "{}");                     /* missing member */
    athena_json(h, &b, 1, "GetQueryExecution", "{\"QueryExecutionId\": \"nope\"}");
    sls_get_app(h, &b, 2, "nope");                                          /* 404 */
    sls_get_app(hb, &b, 3, app_id);                                         /* bad signature */
    athena_json(h, &b, 4, "StartQueryExecution",
                "{\"QueryString\": \"x\", \"ClientRequestToken\": \"short\"}"); /* min length */
    {
        const char *body = "{\"name\":\"other\",\"releaseLabel\":\"emr-6.9.0\",\"type\":\"SPARK\","
                           "\"clientToken\":\"setup-token\"}";
        struct aws_request r;
        aws_request_init_rest_json(&r, "POST", EP.host, "/applications", body, strlen(body));
        send_req(h, &aws_service_emr_serverless, &r, &b, 5); /* token reuse: 409 */
    }
    batch_wait(loop, &b);
    static const struct {
        const char *name;
        long status;
    } want[] = {
        {"ValidationException", 400},       {"InvalidRequestException", 400},
        {"ResourceNotFoundException", 404}, {"InvalidSignatureException", 403},
        {"ValidationException", 400},       {"ConflictException", 409},
    };
    for (size_t i = 0; i < ARRAY_LEN(want); i++) {
        struct slot *s = &b.slots[i];
        tl_check(&T, strcmp(s->err, want[i].name) == 0 && s->status == want[i].status &&
                         s->attempts == 1 && s->fired == 1,
                 "no_retry", "case %zu: '%s' %ld after %u attempts, want '%s' %ld once", i,
                 s->err, s->status, s->attempts, want[i].name, want[i].status);
    }
    json_t *log = fake_control("GET", "/__fake/log", NULL);
    tl_check(&T, log_int(log, "requests") == 7 && log_int(log, "retried_after_nonretryable") == 0,
             "no_retry", "fake saw %ld requests, %ld retried after a non-retryable answer",
             log_int(log, "requests"), log_int(log, "retried_after_nonretryable"));
    json_decref(log);
    batch_release(&b);

    /* always throttled: 3 attempts, then the service's throttling error */
    fake_script("{\"faults\": {\"rate\": 1.0, \"kinds\": [\"throttle\"]}}");
    batch_init(&b, 2);
    athena_start(h, &b, 0, "SELECT 5");
    sls_get_app(h, &b, 1, app_id);
    batch_wait(loop, &b);
    tl_check(&T, strcmp(b.slots[0].err, "TooManyRequestsException") == 0 &&
                     b.slots[0].attempts == 3,
             "throttle", "athena: '%s' after %u attempts", b.slots[0].err, b.slots[0].attempts);
    tl_check(&T, strcmp(b.slots[1].err, "ThrottlingException") == 0 &&
                     b.slots[1].status == 429 && b.slots[1].attempts == 3,
             "throttle", "serverless: '%s' %ld after %u attempts", b.slots[1].err,
             b.slots[1].status, b.slots[1].attempts);
    fake_script("{\"faults\": {}}");
    batch_release(&b);
    client_close(loop, hb);
    client_close(loop, h);
}

/* ---- Configuration from a table (struct aws_env) -------------------------------------------- */

/* "NAME=value" strings, NULL-terminated. */
static const char *on_table_env(void *arg, const char *name)
{
    const char *const *kv = arg;
    size_t n = strlen(name);
    for (; *kv != NULL; kv++) {
        if (strncmp(*kv, name, n) == 0 && (*kv)[n] == '=')
            return *kv + n + 1;
    }
    return NULL;
}

/* A config from `kv` and, when `config_text` is not NULL, a home whose ~/.aws/config holds it
 * (the home is made in `home`, which the caller removes with home_remove). */
static struct aws_config *table_config(const char *const *kv, const char *config_text,
                                       char home[64], struct err *err)
{
    home[0] = '\0';
    if (config_text != NULL) {
        snprintf(home, 64, "/tmp/sfnd-http-XXXXXX");
        if (mkdtemp(home) == NULL)
            return NULL;
        char path[128];
        snprintf(path, sizeof(path), "%s/.aws", home);
        mkdir(path, 0700);
        snprintf(path, sizeof(path), "%s/.aws/config", home);
        FILE *f = fopen(path, "w");
        if (f != NULL) {
            fputs(config_text, f);
            fclose(f);
        }
    }
    struct aws_env env = {on_table_env, (void *)kv, home[0] != '\0' ? home : NULL};
    return aws_config_new(&env, NULL, err);
}

static void home_remove(const char *home)
{
    if (home[0] == '\0')
        return;
    char path[128];
    snprintf(path, sizeof(path), "%s/.aws/config", home);
    unlink(path);
    snprintf(path, sizeof(path), "%s/.aws", home);
    rmdir(path);
    rmdir(home);
}

/* ---- TLS ------------------------------------------------------------------------------------ */

static void sls_get_app_ep(struct aws_http *h, const struct aws_endpoint *ep, struct batch *b,
                           size_t i)
{
    char path[128];
    snprintf(path, sizeof(path), "/applications/%s", app_id);
    struct aws_request r;
    aws_request_init_rest_json(&r, "GET", ep->host, path, NULL, 0);
    struct tag *t = xmalloc(sizeof(*t));
    t->b = b;
    t->i = i;
    struct err err = ERR_INIT;
    b->calls[i] = aws_http_send(h, &aws_service_emr_serverless, REGION, ep, &r, on_done, t, &err);
    if (b->calls[i] == NULL) {
        tl_check(&T, false, "send", "aws_http_send: %s", err.cause);
        err_clear(&err);
        free(t);
        b->done++;
    }
}

/* The fake's HTTPS port: refused without the CA bundle (a clear error, not retried), accepted
 * with it given as ca_file or AWS_CA_BUNDLE; a CA bundle that cannot be read is named. */
static void test_tls(uv_loop_t *loop)
{
    char url[64], ca[128], missing[128];
    snprintf(url, sizeof(url), "https://127.0.0.1:%d", fake_tls_port);
    snprintf(ca, sizeof(ca), "%s/cert.pem", tls_dir);
    snprintf(missing, sizeof(missing), "%s/none.pem", tls_dir);
    struct aws_endpoint ep;
    struct err err = ERR_INIT;
    tl_check(&T, aws_endpoint_parse(&ep, url, &err) == 0 && ep.tls, "tls", "endpoint %s", url);
    fake_reset(loop);

    /* (a) the system's CA store does not know the fake's self-signed certificate */
    struct aws_http_opts o = {.limits = {.rate = AWS_HTTP_UNLIMITED}};
    struct aws_http *h = client(loop, &o);
    struct batch b;
    batch_init(&b, 1);
    sls_get_app_ep(h, &ep, &b, 0);
    batch_wait(loop, &b);
    printf("# tls without a CA bundle: %s: %s\n", b.slots[0].err, b.slots[0].cause);
    tl_check(&T, strcmp(b.slots[0].err, AWS_ERR_CLIENT) == 0 && b.slots[0].attempts == 1 &&
                     strstr(b.slots[0].cause, "TLS certificate verification failed") != NULL &&
                     strstr(b.slots[0].cause, "self-signed certificate") != NULL,
             "tls", "no CA bundle: '%s' after %u attempts: %s", b.slots[0].err,
             b.slots[0].attempts, b.slots[0].cause);
    batch_release(&b);
    client_close(loop, h);

    /* (b) ca_file: 50 calls over TLS, all signed and answered */
    o.ca_file = ca;
    h = client(loop, &o);
    const size_t n = 50;
    batch_init(&b, n);
    for (size_t i = 0; i < n; i++)
        sls_get_app_ep(h, &ep, &b, i);
    batch_wait(loop, &b);
    size_t ok = 0;
    for (size_t i = 0; i < n; i++)
        ok += slot_ok(&b.slots[i], false);
    json_t *log = fake_control("GET", "/__fake/log", NULL);
    printf("# tls with ca_file: %zu/%zu ok, %ld signatures ok, %ld bad\n", ok, n,
           log_int(log, "signatures_ok"), log_int(log, "signatures_bad"));
    tl_check(&T, ok == n && log_int(log, "signatures_bad") == 0, "tls",
             "with ca_file: %zu of %zu ok (first error '%s': %s)", ok, n, b.slots[0].err,
             b.slots[0].cause);
    json_decref(log);
    batch_release(&b);
    client_close(loop, h);

    /* (c) AWS_CA_BUNDLE through the config, credentials from the environment */
    char bundle[160];
    snprintf(bundle, sizeof(bundle), "AWS_CA_BUNDLE=%s", ca);
    const char *kv[] = {bundle, "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", NULL};
    char home[64];
    struct aws_config *cfg = table_config(kv, NULL, home, &err);
    struct aws_http_opts oc = {.config = cfg, .limits = {.rate = AWS_HTTP_UNLIMITED}};
    h = client(loop, &oc);
    batch_init(&b, 1);
    sls_get_app_ep(h, &ep, &b, 0);
    batch_wait(loop, &b);
    tl_check(&T, slot_ok(&b.slots[0], false), "tls", "AWS_CA_BUNDLE: '%s' %s", b.slots[0].err,
             b.slots[0].cause);
    batch_release(&b);
    client_close(loop, h);
    aws_config_free(cfg);

    /* (d) a CA bundle that is not there */
    o.ca_file = missing;
    h = client(loop, &o);
    batch_init(&b, 1);
    sls_get_app_ep(h, &ep, &b, 0);
    batch_wait(loop, &b);
    tl_check(&T, strcmp(b.slots[0].err, AWS_ERR_CLIENT) == 0 &&
                     strstr(b.slots[0].cause, "cannot use the CA bundle") != NULL &&
                     strstr(b.slots[0].cause, missing) != NULL,
             "tls", "missing CA bundle: '%s' %s", b.slots[0].err, b.slots[0].cause);
    batch_release(&b);
    client_close(loop, h);
    err_clear(&err);
    aws_endpoint_release(&ep);
}

/* ---- Retry modes ----------------------------------------------------------------------------- */

static void emr_describe(struct aws_http *h, struct batch *b, size_t i)
{
    const char *body = "{\"ClusterId\": \"j-1\"}";
    struct aws_request r;
    aws_request_init_json11(&r, EP.host, "ElasticMapReduce.DescribeCluster", body, strlen(body));
    send_req(h, &aws_service_emr, &r, b, i);
}

/* Every answer throttled: how many attempts each mode makes per service (athena throttles with
 * TooManyRequestsException 400, which legacy mode does not retry; EMR with
 * ThrottlingException 400; EMR Serverless with ThrottlingException 429). */
static void test_retry_modes(uv_loop_t *loop)
{
    static const struct {
        const char *what;
        const char *env[4];
        const char *config;       /* ~/.aws/config, or NULL */
        enum aws_retry_mode mode; /* opts.retry_mode */
        unsigned athena, emr, serverless; /* attempts wanted */
    } cases[] = {
        {"nothing set: standard, 3 attempts", {NULL}, NULL, AWS_RETRY_DEFAULT, 3, 3, 3},
        {"AWS_RETRY_MODE=legacy: 5 attempts, not for TooManyRequestsException",
         {"AWS_RETRY_MODE=legacy", NULL}, NULL, AWS_RETRY_DEFAULT, 1, 5, 5},
        {"legacy, AWS_MAX_ATTEMPTS=2", {"AWS_RETRY_MODE=legacy", "AWS_MAX_ATTEMPTS=2", NULL},
         NULL, AWS_RETRY_DEFAULT, 1, 2, 2},
        {"AWS_MAX_ATTEMPTS=5 in standard mode", {"AWS_MAX_ATTEMPTS=5", NULL}, NULL,
         AWS_RETRY_DEFAULT, 5, 5, 5},
        {"the profile's retry_mode and max_attempts", {NULL},
         "[default]\nretry_mode = legacy\nmax_attempts = 4\n", AWS_RETRY_DEFAULT, 1, 4, 4},
        {"opts.retry_mode beats the profile", {NULL}, "[default]\nretry_mode = legacy\n",
         AWS_RETRY_STANDARD, 3, 3, 3},
    };
    fake_reset(loop);
    fake_script("{\"faults\": {\"rate\": 1.0, \"kinds\": [\"throttle\"]}}");
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        const char *kv[8];
        size_t k = 0;
        for (size_t j = 0; cases[i].env[j] != NULL; j++)
            kv[k++] = cases[i].env[j];
        kv[k++] = "AWS_ACCESS_KEY_ID=test";
        kv[k++] = "AWS_SECRET_ACCESS_KEY=test";
        kv[k] = NULL;
        char home[64];
        struct err err = ERR_INIT;
        struct aws_config *cfg = table_config(kv, cases[i].config, home, &err);
        struct aws_http_opts o = {.config = cfg, .retry_mode = cases[i].mode,
                                  .backoff_base_ms = 2, .limits = {.rate = AWS_HTTP_UNLIMITED}};
        struct aws_http *h = client(loop, &o);
        struct batch b;
        batch_init(&b, 3);
        athena_start(h, &b, 0, "SELECT 7");
        emr_describe(h, &b, 1);
        sls_get_app(h, &b, 2, app_id);
        batch_wait(loop, &b);
        unsigned want[3] = {cases[i].athena, cases[i].emr, cases[i].serverless};
        const char *names[3] = {"TooManyRequestsException", "ThrottlingException",
                                "ThrottlingException"};
        printf("# retry %s: attempts athena %u, emr %u, emr-serverless %u\n", cases[i].what,
               b.slots[0].attempts, b.slots[1].attempts, b.slots[2].attempts);
        for (size_t j = 0; j < 3; j++)
            tl_check(&T, b.slots[j].attempts == want[j] &&
                             strcmp(b.slots[j].err, names[j]) == 0,
                     "retry_mode", "%s: call %zu ended '%s' after %u attempts, want %u",
                     cases[i].what, j, b.slots[j].err, b.slots[j].attempts, want[j]);
        batch_release(&b);
        client_close(loop, h);
        aws_config_free(cfg);
        home_remove(home);
        err_clear(&err);
    }

    /* legacy mode has no retry budget; standard mode's runs dry (budget of one retry) */
    fake_script("{\"faults\": {\"rate\": 1.0, \"kinds\": [\"500\"]}}");
    for (int legacy = 0; legacy < 2; legacy++) {
        struct aws_http_opts o = {.retry_mode = legacy ? AWS_RETRY_LEGACY : AWS_RETRY_STANDARD,
                                  .backoff_base_ms = 2, .retry_quota = 5,
                                  .limits = {.rate = AWS_HTTP_UNLIMITED}};
        struct aws_http *h = client(loop, &o);
        struct batch b;
        batch_init(&b, 4);
        for (size_t i = 0; i < 4; i++)
            sls_get_app(h, &b, i, app_id);
        batch_wait(loop, &b);
        struct aws_http_stats st;
        aws_http_stats_get(h, &aws_service_emr_serverless, REGION, &st);
        unsigned attempts = 0;
        for (size_t i = 0; i < 4; i++)
            attempts += b.slots[i].attempts;
        printf("# retry budget of 5 tokens, 4 calls always answered 500: %s mode made %u "
               "attempts, %lu retries refused\n", legacy ? "legacy" : "standard", attempts,
               st.quota_refusals);
        if (legacy)
            tl_check(&T, attempts == 20 && st.quota_refusals == 0, "retry_budget",
                     "legacy: %u attempts, %lu refusals", attempts, st.quota_refusals);
        else
            tl_check(&T, attempts == 5 && st.quota_refusals == 4, "retry_budget",
                     "standard: %u attempts, %lu refusals", attempts, st.quota_refusals);
        batch_release(&b);
        client_close(loop, h);
    }
    fake_script("{\"faults\": {}}");

    /* adaptive and unknown modes: the client is refused, naming the mode */
    static const char *const bad[][2] = {
        {"AWS_RETRY_MODE=adaptive", "retry mode 'adaptive' (AWS_RETRY_MODE) is not supported"},
        {"AWS_RETRY_MODE=turbo", "invalid retry mode 'turbo'"},
        {"AWS_MAX_ATTEMPTS=0", "invalid max attempts '0'"},
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        const char *kv[] = {bad[i][0], NULL};
        char home[64];
        struct err err = ERR_INIT;
        struct aws_config *cfg = table_config(kv, NULL, home, &err);
        struct aws_http_opts o = {.config = cfg};
        struct aws_http *h = aws_http_new(loop, &o, &err);
        tl_check(&T, h == NULL && err.set && strcmp(err.name, AWS_ERR_CLIENT) == 0 &&
                         strstr(err.cause, bad[i][1]) != NULL,
                 "retry_mode", "%s: %s", bad[i][0], err.cause ? err.cause : "accepted");
        if (h != NULL)
            client_close(loop, h);
        aws_config_free(cfg);
        err_clear(&err);
    }
}

/* ---- Default quotas -------------------------------------------------------------------------- */

/* The table's values apply per service, in every region; the client's limits and a lane's own
 * override them field by field; the table's rate holds at the fake. */
static void test_quota_defaults(uv_loop_t *loop)
{
    static const struct {
        const struct aws_service *svc;
        unsigned max_concurrent;
        double rate, burst;
    } want[] = {
        {&aws_service_emr, 5, 0.5, 5},
        {&aws_service_athena, 20, 20, 20},
        {&aws_service_emr_containers, 10, 5, 10},
        {&aws_service_emr_serverless, 10, 5, 10},
    };
    struct aws_http_opts o = {0};
    struct aws_http *h = client(loop, &o);
    const char *regions[] = {"us-east-1", "eu-west-1", "ap-southeast-2"};
    for (size_t i = 0; i < ARRAY_LEN(want); i++) {
        for (size_t r = 0; r < ARRAY_LEN(regions); r++) {
            struct aws_http_limits l;
            aws_http_limits_get(h, want[i].svc, regions[r], &l);
            tl_check(&T, l.max_concurrent == want[i].max_concurrent && l.rate == want[i].rate &&
                             l.burst == want[i].burst,
                     "quota", "%s in %s: {%u, %g, %g}", want[i].svc->signing_name, regions[r],
                     l.max_concurrent, l.rate, l.burst);
        }
        const struct aws_quota *q = aws_quota_find(want[i].svc->signing_name, "us-east-1");
        tl_check(&T, q != NULL && q->source != NULL && q->source[0] != '\0', "quota",
                 "%s has no source", want[i].svc->signing_name);
    }
    /* a lane's own limits, field by field over the table */
    struct aws_http_limits mine = {.rate = 40};
    aws_http_limits_set(h, &aws_service_athena, "eu-west-1", &mine);
    struct aws_http_limits l;
    aws_http_limits_get(h, &aws_service_athena, "eu-west-1", &l);
    tl_check(&T, l.rate == 40 && l.burst == 20 && l.max_concurrent == 20, "quota",
             "athena eu-west-1 after limits_set: {%u, %g, %g}", l.max_concurrent, l.rate,
             l.burst);
    aws_http_limits_get(h, &aws_service_athena, "us-east-1", &l);
    tl_check(&T, l.rate == 20, "quota", "limits_set leaked into another region: %g", l.rate);

    /* measured: the default EMR Serverless lane (burst 10, 5/s) at the fake */
    fake_reset(loop);
    const size_t n = 20;
    struct batch b;
    batch_init(&b, n);
    for (size_t i = 0; i < n; i++)
        sls_get_app(h, &b, i, app_id);
    batch_wait(loop, &b);
    json_t *log = fake_control("GET", "/__fake/log", NULL);
    json_t *arr = json_object_get(log, "arrivals"); /* borrowed; [0] is the setup's */
    size_t na = json_array_size(arr);
    double t_first = json_real_value(json_array_get(arr, 1));
    double t_burst = json_real_value(json_array_get(arr, 10));
    double t_last = json_real_value(json_array_get(arr, na - 1));
    double rest_rate = na > 12 ? (double)(na - 1 - 11) / (t_last - json_real_value(
                                                                     json_array_get(arr, 11)))
                               : 0;
    printf("# default quota emr-serverless (burst 10, 5/s): first 10 within %.3f s, the next "
           "10 at %.2f requests/s\n", t_burst - t_first, rest_rate);
    tl_check(&T, na == n + 1 && t_burst - t_first < 0.15, "quota",
             "%zu arrivals; the burst of 10 took %.3f s", na, t_burst - t_first);
    tl_check(&T, rest_rate > 4.5 && rest_rate < 5.5, "quota", "after the burst %.2f/s, want 5",
             rest_rate);
    json_decref(log);
    batch_release(&b);
    client_close(loop, h);

    /* the client's limits beat the table; AWS_HTTP_UNLIMITED removes the rate */
    struct aws_http_opts o2 = {.limits = {.max_concurrent = 7, .rate = AWS_HTTP_UNLIMITED}};
    h = client(loop, &o2);
    aws_http_limits_get(h, &aws_service_emr, "us-east-1", &l);
    tl_check(&T, l.max_concurrent == 7 && l.rate == 0 && l.burst == 5, "quota",
             "client limits over the table: {%u, %g, %g}", l.max_concurrent, l.rate, l.burst);
    client_close(loop, h);
}

/* ---- credential_process through the client ------------------------------------------------- */

static unsigned ticks;

static void on_tick(uv_timer_t *t)
{
    (void)t;
    ticks++;
}

/* 30 calls signed with credentials from a credential_process that takes 300 ms: the loop
 * keeps running a 10 ms timer meanwhile, the command runs once, every call succeeds. */
static void test_creds_process(uv_loop_t *loop)
{
    char dir[64];
    snprintf(dir, sizeof(dir), "/tmp/sfnd-count-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return;
    char count[128];
    snprintf(count, sizeof(count), "%s/count", dir);
    char *config = xasprintf(
        "[default]\ncredential_process = sh %s/tests/creds/process.sh slow 0.3 %s\n", root,
        count);
    char home[64];
    struct err err = ERR_INIT;
    const char *kv[] = {NULL};
    struct aws_config *cfg = table_config(kv, config, home, &err);
    fake_reset(loop);
    fake_script("{\"creds\": {\"AKSLOW1\": \"SeCrEt-slow\"}}");
    struct aws_http_opts o = {.config = cfg, .limits = {.rate = AWS_HTTP_UNLIMITED}};
    struct aws_http *h = client(loop, &o);
    uv_timer_t tick;
    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, on_tick, 10, 10);
    ticks = 0;
    const size_t n = 30;
    struct batch b;
    batch_init(&b, n);
    uint64_t t0 = uv_hrtime();
    for (size_t i = 0; i < n; i++)
        athena_start(h, &b, i, "SELECT 8");
    batch_wait(loop, &b);
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    uv_close((uv_handle_t *)&tick, NULL);
    size_t ok = 0;
    for (size_t i = 0; i < n; i++)
        ok += slot_ok(&b.slots[i], true);
    char *runs = tl_read_file(count, NULL);
    printf("# credential_process taking 300 ms: %zu/%zu calls ok in %.2f s; a 10 ms timer "
           "fired %u times meanwhile; the command ran %s", ok, n, secs, ticks,
           runs != NULL ? runs : "?\n");
    tl_check(&T, ok == n, "creds_process", "%zu of %zu ok (first: '%s' %s)", ok, n,
             b.slots[0].err, b.slots[0].cause);
    tl_check(&T, ticks >= 10, "creds_process", "the timer fired %u times in %.2f s", ticks,
             secs);
    tl_check(&T, runs != NULL && strcmp(runs, "1\n") == 0, "creds_process",
             "the command ran %s times", runs != NULL ? runs : "?");
    free(runs);
    batch_release(&b);
    client_close(loop, h);
    aws_config_free(cfg);
    unlink(count);
    rmdir(dir);
    free(config);
    home_remove(home);
    err_clear(&err);
}

/* Cancel ends a call with AWS_ERR_CANCELLED; close does the same for every pending call. */
static void test_cancel(uv_loop_t *loop)
{
    struct aws_http_opts o = {.limits = {.max_concurrent = 2, .rate = AWS_HTTP_UNLIMITED}};
    struct aws_http *h = client(loop, &o);
    fake_script("{\"faults\": {\"rate\": 1.0, \"kinds\": [\"slow\"], \"slow_ms\": 300}}");
    struct batch b;
    batch_init(&b, 4);
    for (size_t i = 0; i < 4; i++)
        athena_start(h, &b, i, "SELECT 6");
    aws_http_call_cancel(b.calls[3]); /* queued */
    for (int i = 0; i < 5; i++)
        uv_run(loop, UV_RUN_NOWAIT);
    aws_http_call_cancel(b.calls[0]); /* on the wire */
    aws_http_close(h);                /* the rest */
    uv_run(loop, UV_RUN_DEFAULT);
    size_t cancelled = 0;
    for (size_t i = 0; i < 4; i++)
        cancelled += b.slots[i].fired == 1 && strcmp(b.slots[i].err, AWS_ERR_CANCELLED) == 0;
    tl_check(&T, b.done == 4 && cancelled == 4, "cancel", "%zu of 4 cancelled", cancelled);
    fake_script("{\"faults\": {}}");
    batch_release(&b);
}

int main(void)
{
    xalloc_install_jansson();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (getcwd(root, sizeof(root)) == NULL)
        return 1;
    test_error_parse();
    if (fake_start() < 0) {
        tl_check(&T, false, "fake", "the fake AWS is not available");
        curl_global_cleanup();
        return tl_finish(&T);
    }
    struct err err = ERR_INIT;
    if (aws_endpoint_parse(&EP, fake_url, &err) < 0) {
        printf("FAIL endpoint: %s\n", err.cause);
        return 1;
    }
    uv_loop_t loop;
    uv_loop_init(&loop); /* a first loop opens libuv's process-wide signal pipe */
    uv_loop_close(&loop);
    int fds_before = fd_count();
    uv_loop_init(&loop);
    setup_app(&loop);
    test_concurrency(&loop);
    test_cap(&loop);
    test_faults(&loop);
    test_rate(&loop);
    test_no_retry(&loop);
    test_tls(&loop);
    test_retry_modes(&loop);
    test_quota_defaults(&loop);
    test_creds_process(&loop);
    test_cancel(&loop);
    tl_check(&T, uv_loop_close(&loop) == 0, "leaks", "handles left on the loop");
    int fds_after = fd_count();
    tl_check(&T, fds_after == fds_before, "leaks", "%d file descriptors before, %d after",
             fds_before, fds_after);
    aws_endpoint_release(&EP);
    fake_kill();
    curl_global_cleanup();
    return tl_finish(&T);
}
