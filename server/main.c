/* server/main.c - sfnd, the daemon: opens the store, attaches an engine, continues every
 * unfinished execution, and serves the Step Functions API over HTTP on one libuv loop.
 * SIGTERM or SIGINT drains it: no new connection, the replies waiting for a commit go out,
 * the engine commits and releases what still runs (a restart continues it), exit 0. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "server/api.h"
#include "server/config.h"
#include "server/server.h"
#include "sfn.h"
#include "sfn_integrations.h"
#include "util/xalloc.h"

struct daemon {
    uv_loop_t loop;
    uv_signal_t sigterm, sigint;
    struct sfn_engine *eng;
    struct sfn_integrations *integ; /* the AWS service integrations (NULL: off) */
    struct sfn_store *st;
    struct api *api;
    struct server *srv;
    bool stopping;
    int exit_code;
};

static int usage(const char *msg)
{
    fprintf(stderr, "sfnd: %s\nusage: sfnd [--config FILE] [--listen HOST:PORT] [--db FILE] "
            "[--durability full|normal|off] [--mock-config FILE]\n            [--region REGION] [--account ID] "
            "[--auth none|sigv4]\n            [--activity-poll-timeout SECONDS]\n", msg);
    return 2;
}

/* Command-line options that are settings of the config file (the same names, '_' as '-'). */
static const char *const setting_opts[] = {"listen", "db", "durability", "region", "account",
                                           "auth", "activity-poll-timeout", "mock-config"};

/* The defaults, then --config FILE, then the other options (which win). 0, or 2 after a
 * message (bad option or file); 1 for --help. */
static int configure(struct sfnd_config *cfg, int argc, char **argv)
{
    const char *file = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage("the Step Functions API on a local engine");
            return 1;
        }
        if (strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc)
                return usage("--config needs a FILE");
            file = argv[++i];
        }
    }
    struct err err = ERR_INIT;
    if (file != NULL && sfnd_config_load(cfg, file, &err) != 0) {
        fprintf(stderr, "sfnd: %s\n", err.cause);
        err_clear(&err);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--config") == 0) {
            i++;
            continue;
        }
        const char *key = NULL;
        for (size_t k = 0; k < ARRAY_LEN(setting_opts); k++) {
            if (strncmp(a, "--", 2) == 0 && strcmp(a + 2, setting_opts[k]) == 0)
                key = setting_opts[k];
        }
        if (key == NULL || i + 1 >= argc) {
            char msg[256];
            snprintf(msg, sizeof(msg), "unknown or incomplete argument '%s'", a);
            return usage(msg);
        }
        char name[32];
        snprintf(name, sizeof(name), "%s", key);
        for (char *p = name; *p != '\0'; p++) {
            if (*p == '-')
                *p = '_';
        }
        if (sfnd_config_set(cfg, name, argv[++i], &err) != 0) {
            fprintf(stderr, "sfnd: --%s: %s\n", key, err.cause);
            err_clear(&err);
            return 2;
        }
    }
    if (sfnd_config_check(cfg, &err) != 0) {
        fprintf(stderr, "sfnd: %s\n", err.cause);
        err_clear(&err);
        return 2;
    }
    return 0;
}

/* "127.0.0.1:8083", "[::1]:8083". 0, or -1 when malformed. host gets a copy (free it). */
static int parse_listen(const char *s, char **host, int *port)
{
    const char *colon = strrchr(s, ':');
    if (colon == NULL || colon == s)
        return -1;
    char *end = NULL;
    long p = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end != '\0' || p < 0 || p > 65535)
        return -1;
    if (s[0] == '[' && colon[-1] == ']')
        *host = xstrndup(s + 1, (size_t)(colon - s - 2));
    else
        *host = xstrndup(s, (size_t)(colon - s));
    *port = (int)p;
    return 0;
}

/* AWS service integrations (man/sfn-integrations.7): Task states on
 * arn:aws:states:::athena:*, emr-serverless:*, ... call AWS with the credentials, region and
 * endpoints of the AWS CLI's environment and profile chain (AWS_ENDPOINT_URL_<SERVICE>,
 * AWS_PROFILE, ..., man/sfn-aws.7), read the first time a task needs them, so registering
 * costs nothing at start-up and needs no AWS configuration. StopExecution cancels an in-flight
 * .sync job (the handler's cancel); a shutdown or a crash only lets go of it (detach), and the
 * restarted sfnd polls the same job again, never cancelling or resubmitting it. */
static void daemon_integrations_start(struct daemon *d)
{
    struct err err = ERR_INIT;
    d->integ = sfn_integrations_register(d->eng, &d->loop, NULL, &err);
    if (d->integ == NULL) {
        fprintf(stderr, "sfnd: %s (the AWS integrations are off)\n",
                err.cause != NULL ? err.cause : err.name);
        err_clear(&err);
    }
}

/* After sfn_engine_free: every task has been cancelled or detached by then. */
static void daemon_integrations_stop(struct daemon *d)
{
    sfn_integrations_free(d->integ);
    d->integ = NULL;
}

static void on_server_closed(void *arg)
{
    struct daemon *d = arg;
    /* commits what the last turn changed and releases the running executions */
    sfn_engine_free(d->eng);
    d->eng = NULL;
    daemon_integrations_stop(d);
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->sigint, NULL);
}

static void daemon_stop(struct daemon *d, int code)
{
    if (d->stopping)
        return;
    d->stopping = true;
    d->exit_code = code;
    api_shutdown(d->api); /* parked long polls get their empty answer */
    server_close(d->srv, on_server_closed, d);
}

/* The server's commit hook: replies that acknowledge a change leave after its commit. */
static void hold_until_commit(void *arg, void (*fn)(void *), void *fn_arg)
{
    struct daemon *d = arg;
    sfn_engine_after_commit(d->eng, fn, fn_arg);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct daemon *d = h->data;
    fprintf(stderr, "sfnd: %s: stopping\n", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    daemon_stop(d, 0);
}

static void on_store_fatal(const struct err *err, void *arg)
{
    struct daemon *d = arg;
    fprintf(stderr, "sfnd: the store failed, stopping: %s\n",
            err->cause != NULL ? err->cause : err->name);
    server_commit_failed(d->srv);
    daemon_stop(d, 3);
}

int main(int argc, char **argv)
{
    struct sfnd_config cfg;
    sfnd_config_init(&cfg);
    int crc = configure(&cfg, argc, argv);
    if (crc != 0) {
        sfnd_config_release(&cfg);
        return crc == 1 ? 0 : 2;
    }
    struct sfn_store_options so = {0};
    so.durability = cfg.durability;
    const char *db = cfg.db;
    char *host = NULL;
    int port = 0;
    if (parse_listen(cfg.listen, &host, &port) != 0) {
        sfnd_config_release(&cfg);
        return usage("--listen must be HOST:PORT");
    }
    signal(SIGPIPE, SIG_IGN);
    xalloc_install_jansson();
    struct sfn_mock *mock = NULL;
    struct err merr = ERR_INIT;
    if (cfg.mock_config != NULL && (mock = sfn_mock_load(cfg.mock_config, &merr)) == NULL) {
        fprintf(stderr, "sfnd: %s\n", merr.cause);
        err_clear(&merr);
        free(host);
        sfnd_config_release(&cfg);
        return 2;
    }

    struct daemon d = {0};
    uv_loop_init(&d.loop);
    so.on_fatal = on_store_fatal;
    so.arg = &d;
    struct sfn_engine_options eo = {false, -1, 0, cfg.region, cfg.account, 0};
    struct err err = ERR_INIT;
    d.eng = sfn_engine_new(&d.loop, &eo);
    daemon_integrations_start(&d);
    d.st = sfn_store_open(db, &so, &err);
    d.api = api_new(&d.loop, d.eng, d.st, cfg.region, cfg.account);
    api_set_poll_ms(d.api, cfg.poll_ms);
    struct auth *auth = cfg.auth == AUTH_SIGV4 ? auth_new(&cfg) : NULL;
    api_set_auth(d.api, auth);
    d.srv = server_new(&d.loop, api_handle, d.api);
    server_set_limits(d.srv, &cfg.limits);
    server_set_commit_hook(d.srv, hold_until_commit, &d);
    if (mock != NULL) {
        sfn_mock_attach(d.eng, mock, NULL, NULL, 0, &err); /* fails only for a test case */
        api_set_mock(d.api, mock);
    }
    api_set_server(d.api, d.srv);
    struct sfn_execution_options xo = api_execution_options(d.api);
    size_t resumed = 0;
    int rc = 0;
    if (d.st == NULL || sfn_store_attach(d.st, d.eng, &err) != 0 || api_start(d.api, &err) != 0 ||
        sfn_store_recover_each(d.st, d.eng, &xo, api_track, d.api, &resumed, &err) != 0 ||
        api_recovered(d.api, &err) != 0 || server_listen(d.srv, host, port, &err) != 0) {
        fprintf(stderr, "sfnd: %s\n", err.cause != NULL ? err.cause : err.name);
        err_clear(&err);
        rc = 2;
        d.stopping = true;
        server_close(d.srv, NULL, NULL);
        sfn_engine_free(d.eng);
        d.eng = NULL;
        daemon_integrations_stop(&d);
    } else {
        fprintf(stderr, "sfnd: listening on %s:%d, store '%s', %zu execution%s resumed, "
                "region %s, account %s, auth %s\n", host, server_port(d.srv), db, resumed,
                resumed == 1 ? "" : "s", cfg.region, cfg.account,
                auth != NULL ? "sigv4" : "none");
        uv_signal_init(&d.loop, &d.sigterm);
        uv_signal_init(&d.loop, &d.sigint);
        d.sigterm.data = &d;
        d.sigint.data = &d;
        uv_signal_start(&d.sigterm, on_signal, SIGTERM);
        uv_signal_start(&d.sigint, on_signal, SIGINT);
    }
    uv_run(&d.loop, UV_RUN_DEFAULT);
    if (rc == 0)
        rc = d.exit_code;
    if (d.eng != NULL) { /* the loop ended without a stop (cannot happen while listening) */
        sfn_engine_free(d.eng);
        daemon_integrations_stop(&d);
        uv_run(&d.loop, UV_RUN_DEFAULT);
    }
    api_free(d.api);
    server_free(d.srv);
    int open_handles = uv_loop_close(&d.loop);
    sfn_store_close(d.st);
    sfn_mock_free(mock);
    free(host);
    auth_free(auth);
    sfnd_config_release(&cfg);
    if (open_handles != 0 && rc == 0)
        fprintf(stderr, "sfnd: the loop still had open handles at exit\n");
    return rc;
}
