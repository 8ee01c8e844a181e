/* tests/unit/test_creds.c - credentials, region and endpoint resolution (integrations.md
 * §7.1-7.3), driven by the tables in tests/creds/ *.test.
 *
 * Each block is one situation, read top to bottom:
 *   env NAME=value            an environment variable (the lookup is this table, not getenv)
 *   config LINE               a line of ~/.aws/config (the home is a fresh temporary directory)
 *   credentials LINE          a line of ~/.aws/credentials
 *   file PATH LINE            a line of another file, PATH relative to the home
 *   nohome                    no home directory at all
 *   opt profile|region|endpoint|timeout VALUE   the engine's own settings (struct
 *                             aws_config_opts; timeout: process_timeout_ms)
 *   now ISO-8601              the clock for the following expectations (default 2024-01-01)
 *   expect WHAT VALUE         WHAT: access_key_id, secret_access_key, session_token, source,
 *                             expiration, region, region_source, profile, ca_bundle,
 *                             retry_mode, max_attempts, or "endpoint SERVICE" (emr,
 *                             emr-containers, emr-serverless, athena) then URL [HOST];
 *                             "-" means none
 *   cause TEXT                (%%FAIL blocks) the cause contains TEXT
 *   awscli                    also run `aws configure list` (Debian's awscli, /usr/bin/aws)
 *                             with the same HOME and environment, and check that the access
 *                             key's last four characters, the region and both Type columns
 *                             agree with ours (the test FAILS when /usr/bin/aws is missing)
 * "@HOME@" and "@ROOT@" (the repository root, the working directory) are substituted
 * everywhere. A %%FAIL block ends with the expected error name: config creation or one of its
 * expectations (credentials if none) must fail with it. Every secret in the tables contains
 * "SeCrEt" (a spelling no message uses), and no cause may. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

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
    if (strcmp(what, "region_source") == 0) {
        const char *got = aws_config_region_source(cfg);
        if (checking)
            tl_check(&T, same(got, want), where, "region_source: want %s got %s", want,
                     got ? got : "-");
        return 0;
    }
    if (strcmp(what, "ca_bundle") == 0) {
        const char *got = aws_config_ca_bundle(cfg);
        if (checking)
            tl_check(&T, same(got, want), where, "ca_bundle: want %s got %s", want,
                     got ? got : "-");
        return 0;
    }
    if (strcmp(what, "retry_mode") == 0 || strcmp(what, "max_attempts") == 0) {
        struct aws_retry_config rc;
        if (aws_config_retry(cfg, &rc, err) != 0)
            return -1;
        if (!checking)
            return 0;
        if (what[0] == 'r') {
            const char *got = rc.mode == AWS_RETRY_STANDARD ? "standard"
                              : rc.mode == AWS_RETRY_LEGACY ? "legacy"
                                                            : "-";
            char full[64];
            snprintf(full, sizeof(full), "%s%s%s", got, rc.mode_source ? " " : "",
                     rc.mode_source ? rc.mode_source : "");
            tl_check(&T, strcmp(full, want) == 0, where, "retry_mode: want '%s' got '%s'", want,
                     full);
        } else {
            char full[64];
            if (rc.max_attempts == 0)
                snprintf(full, sizeof(full), "-");
            else
                snprintf(full, sizeof(full), "%u %s", rc.max_attempts, rc.attempts_source);
            tl_check(&T, strcmp(full, want) == 0, where, "max_attempts: want '%s' got '%s'",
                     want, full);
        }
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

/* ---- `aws configure list` comparisons (run together at the end, in parallel) ---------------- */

struct cli_case {
    char *where;        /* the block, for messages */
    char *home;         /* owned temporary home, removed after the comparison */
    char **envp;        /* owned, NULL-terminated: the table's variables + HOME, PATH */
    char key4[8];       /* our access key's last four characters, "" when none */
    char key_type[40];  /* our credential source, "None" when none */
    char region[64];    /* our region, "<not set>" when none */
    char region_type[40]; /* our region source, "None" when none */
    pid_t pid;
    char out[4200];     /* where its stdout goes */
};

static struct cli_case *cli_cases;
static size_t ncli;

static void rm_rf(const char *path);

static char *field(const char *line, int n)
{
    const char *p = line;
    for (int i = 0; i <= n; i++) {
        while (*p == ' ' || *p == '\t')
            p++;
        const char *e = p;
        while (*e != '\0' && *e != ' ' && *e != '\t' && *e != '\n')
            e++;
        if (i == n)
            return xstrndup(p, (size_t)(e - p));
        p = e;
    }
    return xstrdup("");
}

/* Compares one finished `aws configure list` with our resolution. */
static void cli_check(struct cli_case *cc, int status)
{
    size_t len;
    char *text = tl_read_file(cc->out, &len);
    tl_check(&T, status == 0 && text != NULL, cc->where, "aws configure list exited %d", status);
    char *key_val = NULL, *key_type = NULL, *reg_val = NULL, *reg_type = NULL;
    for (char *line = text; line != NULL && *line != '\0';) {
        char *nl = strchr(line, '\n');
        if (nl != NULL)
            *nl = '\0';
        char *name = field(line, 0);
        /* "<not set>" is two words: the Type column moves one to the right */
        if (strcmp(name, "access_key") == 0) {
            key_val = field(line, 1);
            key_type = field(line, strcmp(key_val, "<not") == 0 ? 3 : 2);
        } else if (strcmp(name, "region") == 0) {
            reg_val = field(line, 1);
            reg_type = field(line, strcmp(reg_val, "<not") == 0 ? 3 : 2);
        }
        free(name);
        line = nl != NULL ? nl + 1 : NULL;
    }
    if (key_val == NULL || reg_val == NULL) {
        tl_check(&T, false, cc->where, "aws configure list printed no access_key/region line");
    } else {
        size_t kl = strlen(key_val);
        const char *cli4 = strcmp(key_val, "<not") == 0 ? "" : key_val + (kl > 4 ? kl - 4 : 0);
        tl_check(&T, strcmp(cli4, cc->key4) == 0 && strcmp(key_type, cc->key_type) == 0,
                 cc->where, "access key: aws says ...%s (%s), we say ...%s (%s)", cli4, key_type,
                 cc->key4, cc->key_type);
        const char *cli_region = strcmp(reg_val, "<not") == 0 ? "<not set>" : reg_val;
        tl_check(&T, strcmp(cli_region, cc->region) == 0 && strcmp(reg_type, cc->region_type) == 0,
                 cc->where, "region: aws says %s (%s), we say %s (%s)", cli_region, reg_type,
                 cc->region, cc->region_type);
    }
    free(key_val);
    free(key_type);
    free(reg_val);
    free(reg_type);
    free(text);
}

/* Runs every recorded case's `aws configure list` at once, then checks them. */
static void cli_run_all(void)
{
    static const char aws[] = "/usr/bin/aws";
    if (ncli > 0 && access(aws, X_OK) != 0)
        tl_check(&T, false, "awscli", "%s is missing (make deps installs Debian's awscli); "
                 "%zu comparisons not run", aws, ncli);
    for (size_t i = 0; i < ncli && access(aws, X_OK) == 0; i++) {
        struct cli_case *cc = &cli_cases[i];
        snprintf(cc->out, sizeof(cc->out), "%s/.aws-configure-list.out", cc->home);
        cc->pid = fork();
        if (cc->pid == 0) {
            int fd = open(cc->out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
            int dn = open("/dev/null", O_RDWR);
            if (fd < 0 || dn < 0)
                _exit(126);
            dup2(dn, 0);
            dup2(fd, 1);
            dup2(dn, 2);
            char *const argv[] = {(char *)"aws", (char *)"configure", (char *)"list", NULL};
            execve(aws, argv, cc->envp);
            _exit(127);
        }
    }
    for (size_t i = 0; i < ncli; i++) {
        struct cli_case *cc = &cli_cases[i];
        if (cc->pid > 0) {
            int st = 0;
            waitpid(cc->pid, &st, 0);
            cli_check(cc, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        }
        for (char **e = cc->envp; *e != NULL; e++)
            free(*e);
        free(cc->envp);
        rm_rf(cc->home);
        free(cc->home);
        free(cc->where);
    }
    printf("# awscli: %zu situations compared with `aws configure list`\n", ncli);
    free(cli_cases);
}

/* Records a comparison for the block just checked; takes `home` (removed later). */
static void cli_record(const char *where, char *home, const struct table_env *env,
                       struct aws_config *cfg, time_t now)
{
    cli_cases = xrealloc(cli_cases, (ncli + 1) * sizeof(*cli_cases));
    struct cli_case *cc = &cli_cases[ncli++];
    memset(cc, 0, sizeof(*cc));
    cc->where = xasprintf("%s (awscli)", where);
    cc->home = home;
    cc->envp = xcalloc(env->n + 5, sizeof(char *));
    size_t k = 0;
    for (size_t i = 0; i < env->n; i++)
        cc->envp[k++] = xasprintf("%s=%s", env->names[i], env->values[i]);
    cc->envp[k++] = xasprintf("HOME=%s", home);
    cc->envp[k++] = xstrdup("PATH=/usr/bin:/bin");
    cc->envp[k++] = xstrdup("AWS_PAGER=");
    cc->envp[k] = NULL;
    struct err err = ERR_INIT;
    const struct aws_creds *c = aws_config_creds(cfg, now, &err);
    if (c != NULL) {
        size_t l = strlen(c->access_key_id);
        snprintf(cc->key4, sizeof(cc->key4), "%s", c->access_key_id + (l > 4 ? l - 4 : 0));
        snprintf(cc->key_type, sizeof(cc->key_type), "%s", c->source);
    } else {
        snprintf(cc->key_type, sizeof(cc->key_type), "None");
    }
    err_clear(&err);
    const char *r = aws_config_region(cfg);
    const char *rs = aws_config_region_source(cfg);
    snprintf(cc->region, sizeof(cc->region), "%s", r != NULL ? r : "<not set>");
    snprintf(cc->region_type, sizeof(cc->region_type), "%s", rs != NULL ? rs : "None");
}

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
    struct aws_config_opts opts = {NULL, NULL, NULL, 0};
    char *opt_vals[3] = {NULL, NULL, NULL};
    bool nohome = false;
    bool awscli = false;
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
        } else if (strcmp(line, "awscli") == 0) {
            awscli = true;
        } else if (strcmp(line, "opt") == 0) {
            char *sp2 = strchr(rest, ' ');
            const char *val = sp2 != NULL ? sp2 + 1 : "";
            if (sp2 != NULL)
                *sp2 = '\0';
            if (strcmp(rest, "timeout") == 0) {
                opts.process_timeout_ms = (unsigned)strtoul(val, NULL, 10);
            } else {
                int k = strcmp(rest, "profile") == 0  ? 0
                        : strcmp(rest, "region") == 0 ? 1
                                                      : 2;
                free(opt_vals[k]);
                opt_vals[k] = xstrdup(val);
            }
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
    struct table_env env_copy = {NULL, NULL, 0}; /* for `aws configure list` */
    if (awscli && !b->fail && cfg != NULL) {
        env_copy = env;
        env.names = NULL;
        env.values = NULL;
        env.n = 0;
    }
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
    bool keep_home = false;
    if (env_copy.names != NULL || (awscli && !b->fail && cfg != NULL)) {
        cli_record(where, xstrdup(home), &env_copy, cfg, now);
        keep_home = true;
        for (size_t i = 0; i < env_copy.n; i++) {
            free(env_copy.names[i]);
            free(env_copy.values[i]);
        }
        free(env_copy.names);
        free(env_copy.values);
    }
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
    if (!keep_home)
        rm_rf(home);
}

/* ---- credential_process on a loop (aws_config_creds_async) ---------------------------------- */

struct async_case {
    int fired;                 /* ready callbacks seen */
    char akid[32];             /* the key they got, "" on error */
    char cause[256];           /* the error's cause */
    uint64_t at_ms;            /* uv_now() when it fired */
};

static void on_async_ready(const struct aws_creds *creds, const struct err *err, void *arg)
{
    struct async_case *a = arg;
    a->fired++;
    snprintf(a->akid, sizeof(a->akid), "%s", creds != NULL ? creds->access_key_id : "");
    snprintf(a->cause, sizeof(a->cause), "%s", creds == NULL && err->cause ? err->cause : "");
}

static unsigned ticks;

static void on_tick(uv_timer_t *t)
{
    (void)t;
    ticks++;
}

/* A config whose default profile runs `cmd`; home gets a fresh temporary directory. */
static struct aws_config *proc_config(char *home, const char *cmd, unsigned timeout_ms)
{
    char *path = xasprintf("%s/.aws", home);
    mkdir(path, 0700);
    free(path);
    path = xasprintf("%s/.aws/config", home);
    FILE *f = fopen(path, "w");
    if (f != NULL) {
        fprintf(f, "[default]\ncredential_process = %s\n", cmd);
        fclose(f);
    }
    free(path);
    struct table_env env = {NULL, NULL, 0};
    struct aws_env aenv = {on_env_get, &env, home};
    struct aws_config_opts opts = {NULL, NULL, NULL, timeout_ms};
    struct err err = ERR_INIT;
    struct aws_config *cfg = aws_config_new(&aenv, &opts, &err);
    tl_check(&T, cfg != NULL, "async", "aws_config_new: %s", err.cause ? err.cause : "");
    err_clear(&err);
    return cfg;
}

/* The loop keeps serving a 10 ms timer while a credential_process takes 400 ms; three callers
 * share one run; the result is kept for the next caller. */
static void test_async_slow(void)
{
    char tmpl[] = "/tmp/sfnd-creds-XXXXXX";
    char *home = mkdtemp(tmpl);
    char *cmd = xasprintf("sh %s/tests/creds/process.sh slow 0.4 %s/count", root, home);
    struct aws_config *cfg = proc_config(home, cmd, 0);
    free(cmd);
    uv_loop_t loop;
    uv_loop_init(&loop);
    uv_timer_t tick;
    uv_timer_init(&loop, &tick);
    uv_timer_start(&tick, on_tick, 10, 10);
    ticks = 0;
    struct async_case a[3];
    memset(a, 0, sizeof(a));
    uint64_t t0 = uv_now(&loop);
    size_t pending_n = 0;
    for (int i = 0; i < 3; i++) {
        bool pending;
        struct err err = ERR_INIT;
        const struct aws_creds *c =
            aws_config_creds_async(cfg, &loop, 1700000000, on_async_ready, &a[i], &pending, &err);
        pending_n += c == NULL && pending && !err.set;
        err_clear(&err);
    }
    tl_check(&T, pending_n == 3, "async", "%zu of 3 callers told to wait", pending_n);
    while (a[0].fired + a[1].fired + a[2].fired < 3)
        uv_run(&loop, UV_RUN_ONCE);
    uv_update_time(&loop);
    uint64_t waited = uv_now(&loop) - t0;
    unsigned seen = ticks;
    printf("# async credential_process: answered after %llu ms; the loop ran a 10 ms timer %u "
           "times meanwhile\n", (unsigned long long)waited, seen);
    for (int i = 0; i < 3; i++)
        tl_check(&T, a[i].fired == 1 && strcmp(a[i].akid, "AKSLOW1") == 0, "async",
                 "caller %d: fired %d, key '%s' (%s)", i, a[i].fired, a[i].akid, a[i].cause);
    tl_check(&T, waited >= 380 && seen >= 10, "async",
             "the timer ran %u times in %llu ms while the command ran", seen,
             (unsigned long long)waited);
    char *count_path = xasprintf("%s/count", home);
    char *count = tl_read_file(count_path, NULL);
    tl_check(&T, count != NULL && strcmp(count, "1\n") == 0, "async", "the command ran %s times",
             count != NULL ? count : "?");
    free(count);
    free(count_path);
    /* kept: the next caller gets them at once */
    bool pending;
    struct err err = ERR_INIT;
    struct async_case d;
    memset(&d, 0, sizeof(d));
    const struct aws_creds *c =
        aws_config_creds_async(cfg, &loop, 1700000000, on_async_ready, &d, &pending, &err);
    tl_check(&T, c != NULL && !pending && strcmp(c->access_key_id, "AKSLOW1") == 0, "async",
             "kept credentials not returned at once");
    err_clear(&err);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    tl_check(&T, d.fired == 0, "async", "ready fired for credentials returned at once");
    tl_check(&T, uv_loop_close(&loop) == 0, "async", "handles left on the loop");
    aws_config_free(cfg);
    rm_rf(home);
}

/* Whether `pid` has ended: gone, or a zombie its new parent has not reaped yet. */
static bool pid_dead(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    char *stat = tl_read_file(path, NULL);
    if (stat == NULL)
        return true;
    const char *close = strrchr(stat, ')');
    bool zombie = close != NULL && close[1] == ' ' && (close[2] == 'Z' || close[2] == 'X');
    free(stat);
    return zombie;
}

/* A command that hangs is killed with its process group after the timeout; a waiter that
 * leaves is not called; freeing the config mid-run kills the command and leaks nothing. */
static void test_async_timeout(void)
{
    char tmpl[] = "/tmp/sfnd-creds-XXXXXX";
    char *home = mkdtemp(tmpl);
    char *pidfile = xasprintf("%s/pid", home);
    char *cmd = xasprintf("sh %s/tests/creds/process.sh hang %s", root, pidfile);
    struct aws_config *cfg = proc_config(home, cmd, 300);
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct async_case a, gone;
    memset(&a, 0, sizeof(a));
    memset(&gone, 0, sizeof(gone));
    bool pending;
    struct err err = ERR_INIT;
    uint64_t t0 = uv_now(&loop);
    aws_config_creds_async(cfg, &loop, 1700000000, on_async_ready, &a, &pending, &err);
    aws_config_creds_async(cfg, &loop, 1700000000, on_async_ready, &gone, &pending, &err);
    aws_config_creds_unwait(cfg, on_async_ready, &gone);
    while (a.fired == 0)
        uv_run(&loop, UV_RUN_ONCE);
    uv_update_time(&loop);
    uint64_t waited = uv_now(&loop) - t0;
    printf("# credential_process timeout 300 ms: gave up after %llu ms: %s\n",
           (unsigned long long)waited, a.cause);
    tl_check(&T, a.fired == 1 && a.akid[0] == '\0' && strstr(a.cause, "timed out after 300 ms"),
             "timeout", "fired %d, cause '%s'", a.fired, a.cause);
    tl_check(&T, waited >= 290 && waited < 2000, "timeout", "gave up after %llu ms",
             (unsigned long long)waited);
    tl_check(&T, gone.fired == 0, "timeout", "a waiter that left was called");
    uv_run(&loop, UV_RUN_DEFAULT);
    char *pidtext = tl_read_file(pidfile, NULL);
    long child = pidtext != NULL ? strtol(pidtext, NULL, 10) : 0;
    free(pidtext);
    bool dead = false;
    for (int i = 0; i < 100 && child > 0 && !dead; i++) {
        dead = pid_dead((pid_t)child);
        if (!dead)
            usleep(10000);
    }
    tl_check(&T, child > 0 && dead, "timeout", "the command's child %ld is still alive", child);
    err_clear(&err);

    /* freed while running */
    memset(&a, 0, sizeof(a));
    aws_config_creds_async(cfg, &loop, 1700000000, on_async_ready, &a, &pending, &err);
    tl_check(&T, pending, "free", "second run not started");
    aws_config_creds_unwait(cfg, on_async_ready, &a);
    for (int i = 0; i < 3; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    aws_config_free(cfg);
    uv_run(&loop, UV_RUN_DEFAULT);
    tl_check(&T, a.fired == 0 && uv_loop_close(&loop) == 0, "free",
             "fired %d after free, or handles left on the loop", a.fired);
    err_clear(&err);
    free(cmd);
    free(pidfile);
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
    test_async_slow();
    test_async_timeout();
    cli_run_all();
    return tl_finish(&T);
}
