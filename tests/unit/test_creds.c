/* tests/unit/test_creds.c - credentials, region and endpoint resolution (integrations.md
 * §7.1-7.3), driven by the tables in tests/creds/ *.test.
 *
 * Each block is one situation, read top to bottom:
 *   env NAME=value            an environment variable (the lookup is this table, not getenv)
 *   config LINE               a line of ~/.aws/config (the home is a fresh temporary directory)
 *   credentials LINE          a line of ~/.aws/credentials
 *   file PATH LINE            a line of another file, PATH relative to the home
 *   nohome                    no home directory at all
 *   opt profile|region|endpoint VALUE   the engine's own settings (struct aws_config_opts)
 *   now ISO-8601              the clock for the following expectations (default 2024-01-01)
 *   expect WHAT VALUE         WHAT: access_key_id, secret_access_key, session_token, source,
 *                             expiration, region, profile, or "endpoint SERVICE" (emr,
 *                             emr-containers, emr-serverless, athena) then URL [HOST];
 *                             "-" means none
 *   cause TEXT                (%%FAIL blocks) the cause contains TEXT
 * "@HOME@" and "@ROOT@" (the repository root, the working directory) are substituted
 * everywhere. A %%FAIL block ends with the expected error name: config creation or one of its
 * expectations (credentials if none) must fail with it. Every secret in the tables contains
 * "SeCrEt" (a spelling no message uses), and no cause may. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "integrations/aws/aws.h"
#include "tests/unit/testlib.h"
#include "util/buf.h"
#include "util/xalloc.h"

#define CREDS_DIR "tests/creds"

static struct tl T;
static char root[4096];

struct table_env {
    char **names;
    char **values;
    size_t n;
};

static const char *on_env_get(void *arg, const char *name)
{
    struct table_env *e = arg;
    for (size_t i = e->n; i > 0; i--) {
        if (strcmp(e->names[i - 1], name) == 0)
            return e->values[i - 1];
    }
    return NULL;
}

static char *subst(const char *s, const char *home)
{
    struct buf b = BUF_INIT;
    while (*s != '\0') {
        if (strncmp(s, "@HOME@", 6) == 0) {
            buf_puts(&b, home);
            s += 6;
        } else if (strncmp(s, "@ROOT@", 6) == 0) {
            buf_puts(&b, root);
            s += 6;
        } else {
            buf_putc(&b, *s++);
        }
    }
    buf_cstr(&b);
    return buf_detach(&b);
}

static void rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (d != NULL) {
            struct dirent *de;
            while ((de = readdir(d)) != NULL) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                    continue;
                char *sub = xasprintf("%s/%s", path, de->d_name);
                rm_rf(sub);
                free(sub);
            }
            closedir(d);
        }
        rmdir(path);
        return;
    }
    unlink(path);
}

/* Appends `line` and a newline to home/rel, creating directories on the way. */
static void file_append(const char *home, const char *rel, const char *line)
{
    char *path = xasprintf("%s/%s", home, rel);
    for (char *p = path + strlen(home) + 1; *p != '\0'; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(path, 0700);
            *p = '/';
        }
    }
    FILE *f = fopen(path, "a");
    if (f != NULL) {
        fprintf(f, "%s\n", line);
        fclose(f);
    }
    free(path);
}

static time_t iso_parse(const char *s)
{
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

static const struct aws_service *service_by_name(const char *name)
{
    static const struct {
        const char *name;
        const struct aws_service *svc;
    } table[] = {
        {"emr", &aws_service_emr},
        {"emr-containers", &aws_service_emr_containers},
        {"emr-serverless", &aws_service_emr_serverless},
        {"athena", &aws_service_athena},
    };
    for (size_t i = 0; i < ARRAY_LEN(table); i++) {
        if (strcmp(table[i].name, name) == 0)
            return table[i].svc;
    }
    return NULL;
}

static bool same(const char *got, const char *want)
{
    if (strcmp(want, "-") == 0)
        return got == NULL;
    return got != NULL && strcmp(got, want) == 0;
}

/* Runs one expectation; returns -1 with err set when the library call failed. */
static int expect_run(struct aws_config *cfg, const char *what, const char *want, time_t now,
                      const char *where, struct err *err, bool checking)
{
    if (strcmp(what, "region") == 0) {
        if (checking)
            tl_check(&T, same(aws_config_region(cfg), want), where, "region: want %s got %s",
                     want, aws_config_region(cfg) ? aws_config_region(cfg) : "-");
        return 0;
    }
    if (strcmp(what, "profile") == 0) {
        if (checking)
            tl_check(&T, same(aws_config_profile(cfg), want), where, "profile: want %s got %s",
                     want, aws_config_profile(cfg));
        return 0;
    }
    if (strcmp(what, "endpoint") == 0) {
        char svcname[64];
        const char *sp = strchr(want, ' ');
        size_t l = sp != NULL ? (size_t)(sp - want) : strlen(want);
        snprintf(svcname, sizeof(svcname), "%.*s", (int)l, want);
        const struct aws_service *svc = service_by_name(svcname);
        if (svc == NULL) {
            tl_check(&T, false, where, "unknown service '%s'", svcname);
            return 0;
        }
        struct aws_endpoint ep;
        if (aws_config_endpoint(cfg, svc, aws_config_region(cfg), &ep, err) != 0)
            return -1;
        if (checking) {
            const char *url = sp != NULL ? sp + 1 : "";
            const char *hsp = strchr(url, ' ');
            size_t ul = hsp != NULL ? (size_t)(hsp - url) : strlen(url);
            bool ok = strlen(ep.url) == ul && strncmp(ep.url, url, ul) == 0;
            if (hsp != NULL)
                ok = ok && strcmp(ep.host, hsp + 1) == 0;
            tl_check(&T, ok, where, "endpoint %s: want '%s' got '%s' (host '%s')", svcname,
                     url, ep.url, ep.host);
        }
        aws_endpoint_release(&ep);
        return 0;
    }
    const struct aws_creds *c = aws_config_creds(cfg, now, err);
    if (c == NULL)
        return -1;
    if (!checking)
        return 0;
    if (strcmp(what, "access_key_id") == 0) {
        tl_check(&T, same(c->access_key_id, want), where, "access_key_id: want %s got %s", want,
                 c->access_key_id);
    } else if (strcmp(what, "secret_access_key") == 0) {
        tl_check(&T, same(c->secret_access_key, want), where, "secret_access_key differs");
    } else if (strcmp(what, "session_token") == 0) {
        tl_check(&T, same(c->session_token, want), where, "session_token: want %s got %s",
                 want, c->session_token ? c->session_token : "-");
    } else if (strcmp(what, "source") == 0) {
        tl_check(&T, same(c->source, want), where, "source: want %s got %s", want,
                 c->source ? c->source : "-");
    } else if (strcmp(what, "expiration") == 0) {
        time_t w = strcmp(want, "-") == 0 ? 0 : iso_parse(want);
        tl_check(&T, c->expiration == w, where, "expiration: want %s got %lld", want,
                 (long long)c->expiration);
    } else {
        tl_check(&T, false, where, "unknown expectation '%s'", what);
    }
    return 0;
}

struct step {
    char *what; /* expectation name */
    char *arg;  /* its value */
    time_t now; /* the clock when it runs */
};

static void on_block(const struct tl_block *b, void *arg)
{
    (void)arg;
    char where[4200];
    snprintf(where, sizeof(where), "%s:%d", b->file, b->line);
    char tmpl[] = "/tmp/sfnd-creds-XXXXXX";
    char *home = mkdtemp(tmpl);
    if (home == NULL) {
        tl_check(&T, false, where, "mkdtemp: %s", strerror(errno));
        return;
    }
    struct table_env env = {NULL, NULL, 0};
    struct aws_config_opts opts = {NULL, NULL, NULL};
    char *opt_vals[3] = {NULL, NULL, NULL};
    bool nohome = false;
    struct step *steps = xcalloc(b->n + 1, sizeof(*steps));
    size_t nsteps = 0;
    char **causes = xcalloc(b->n + 1, sizeof(*causes));
    size_t ncauses = 0;
    time_t now = iso_parse("2024-01-01T00:00:00Z");
    size_t nlines = b->fail ? b->n - 1 : b->n;
    for (size_t i = 0; i < nlines; i++) {
        char *line = subst(b->lines[i], home);
        char *sp = strchr(line, ' ');
        char *rest = sp != NULL ? sp + 1 : line + strlen(line);
        if (sp != NULL)
            *sp = '\0';
        if (strcmp(line, "env") == 0) {
            char *eq = strchr(rest, '=');
            env.names = xrealloc(env.names, (env.n + 1) * sizeof(char *));
            env.values = xrealloc(env.values, (env.n + 1) * sizeof(char *));
            env.names[env.n] = eq != NULL ? xstrndup(rest, (size_t)(eq - rest)) : xstrdup(rest);
            env.values[env.n] = xstrdup(eq != NULL ? eq + 1 : "");
            env.n++;
        } else if (strcmp(line, "config") == 0) {
            file_append(home, ".aws/config", rest);
        } else if (strcmp(line, "credentials") == 0) {
            file_append(home, ".aws/credentials", rest);
        } else if (strcmp(line, "file") == 0) {
            char *sp2 = strchr(rest, ' ');
            if (sp2 != NULL) {
                *sp2 = '\0';
                file_append(home, rest, sp2 + 1);
            }
        } else if (strcmp(line, "nohome") == 0) {
            nohome = true;
        } else if (strcmp(line, "opt") == 0) {
            char *sp2 = strchr(rest, ' ');
            const char *val = sp2 != NULL ? sp2 + 1 : "";
            if (sp2 != NULL)
                *sp2 = '\0';
            int k = strcmp(rest, "profile") == 0  ? 0
                    : strcmp(rest, "region") == 0 ? 1
                                                  : 2;
            free(opt_vals[k]);
            opt_vals[k] = xstrdup(val);
        } else if (strcmp(line, "now") == 0) {
            now = iso_parse(rest);
        } else if (strcmp(line, "expect") == 0) {
            char *sp2 = strchr(rest, ' ');
            steps[nsteps].what = sp2 != NULL ? xstrndup(rest, (size_t)(sp2 - rest)) : xstrdup(rest);
            steps[nsteps].arg = xstrdup(sp2 != NULL ? sp2 + 1 : "");
            steps[nsteps].now = now;
            nsteps++;
        } else if (strcmp(line, "cause") == 0) {
            causes[ncauses++] = xstrdup(rest);
        } else {
            tl_check(&T, false, where, "unknown line '%s'", b->lines[i]);
        }
        free(line);
    }
    if (b->fail && nsteps == 0) {
        steps[0].what = xstrdup("access_key_id");
        steps[0].arg = xstrdup("-");
        steps[0].now = now;
        nsteps = 1;
    }
    opts.profile = opt_vals[0];
    opts.region = opt_vals[1];
    opts.endpoint_url = opt_vals[2];
    struct aws_env aenv = {on_env_get, &env, nohome ? NULL : home};

    struct err err = ERR_INIT;
    struct aws_config *cfg = aws_config_new(&aenv, &opts, &err);
    /* The config copies what it needs: the table may go now (checked by ASan). */
    for (size_t i = 0; i < env.n; i++) {
        free(env.names[i]);
        free(env.values[i]);
    }
    free(env.names);
    free(env.values);
    for (size_t i = 0; cfg != NULL && i < nsteps; i++) {
        char w[4300];
        snprintf(w, sizeof(w), "%s (expect %s)", where, steps[i].what);
        if (expect_run(cfg, steps[i].what, steps[i].arg, steps[i].now, w, &err, !b->fail) != 0)
            break;
    }
    if (b->fail) {
        const char *want = b->lines[b->n - 1];
        tl_check(&T, err.set && strcmp(err.name, want) == 0, where,
                 "expected error %s, got %s (%s)", want, err.set ? err.name : "success",
                 err.cause != NULL ? err.cause : "");
        for (size_t i = 0; i < ncauses; i++)
            tl_check(&T, err.cause != NULL && strstr(err.cause, causes[i]) != NULL, where,
                     "cause '%s' lacks '%s'", err.cause != NULL ? err.cause : "", causes[i]);
    } else {
        tl_check(&T, !err.set, where, "unexpected error %s: %s", err.name,
                 err.cause != NULL ? err.cause : "");
    }
    tl_check(&T, err.cause == NULL || strstr(err.cause, "SeCrEt") == NULL, where,
             "a cause quotes a secret: %s", err.cause);
    err_clear(&err);
    aws_config_free(cfg);
    for (size_t i = 0; i < nsteps; i++) {
        free(steps[i].what);
        free(steps[i].arg);
    }
    free(steps);
    for (size_t i = 0; i < ncauses; i++)
        free(causes[i]);
    free(causes);
    for (int i = 0; i < 3; i++)
        free(opt_vals[i]);
    rm_rf(home);
}

static void on_file(const char *path, void *arg)
{
    int *files = arg;
    (*files)++;
    if (tl_each_block(path, on_block, NULL) != 0)
        tl_check(&T, false, path, "cannot read");
}

int main(void)
{
    xalloc_install_jansson();
    if (getcwd(root, sizeof(root)) == NULL) {
        tl_check(&T, false, "getcwd", "%s", strerror(errno));
        return tl_finish(&T);
    }
    int files = 0;
    if (tl_each_file(CREDS_DIR, ".test", on_file, &files) != 0 || files == 0)
        tl_check(&T, false, CREDS_DIR, "no .test files (run from the repository root)");
    return tl_finish(&T);
}
