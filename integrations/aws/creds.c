/* integrations/aws/creds.c - credentials, region and endpoints found the way the AWS CLI
 * (botocore) finds them (integrations.md §7.1-7.3): the environment, AWS_PROFILE, the shared
 * config and credentials files, credential_process; plus the table of the four services and
 * endpoint URL parsing, retry settings. The environment and the home directory come in through
 * struct aws_env, so tests feed tables of situations (tests/creds). credential_process runs on
 * a libuv loop (uv_spawn), so the engine's loop never waits for it. Never prints; secrets never
 * reach an err cause. */
#include "integrations/aws/aws.h"

#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "util/xalloc.h"

/* ---- Services -------------------------------------------------------------------------------- */

const struct aws_service aws_service_emr = {
    .service_id = "EMR",
    .endpoint_prefix = "elasticmapreduce",
    .signing_name = "elasticmapreduce",
    .target_prefix = "ElasticMapReduce",
    .protocol = AWS_PROTO_JSON,
};

const struct aws_service aws_service_emr_containers = {
    .service_id = "EMR containers",
    .endpoint_prefix = "emr-containers",
    .signing_name = "emr-containers",
    .target_prefix = NULL,
    .protocol = AWS_PROTO_REST_JSON,
};

const struct aws_service aws_service_emr_serverless = {
    .service_id = "EMR Serverless",
    .endpoint_prefix = "emr-serverless",
    .signing_name = "emr-serverless",
    .target_prefix = NULL,
    .protocol = AWS_PROTO_REST_JSON,
};

const struct aws_service aws_service_athena = {
    .service_id = "Athena",
    .endpoint_prefix = "athena",
    .signing_name = "athena",
    .target_prefix = "AmazonAthena",
    .protocol = AWS_PROTO_JSON,
};

/* Services whose AWS_ENDPOINT_URL_<ID> the config snapshots from the environment. */
static const struct aws_service *const known_services[] = {
    &aws_service_emr,
    &aws_service_emr_containers,
    &aws_service_emr_serverless,
    &aws_service_athena,
};

/* "EMR containers" -> "EMR_CONTAINERS" (upper) or "emr_containers" (lower): spaces and
 * hyphens become '_' (botocore configprovider.py). */
static void service_id_key(struct buf *b, const char *id, bool upper)
{
    for (const char *p = id; *p != '\0'; p++) {
        char ch = *p;
        if (ch == ' ' || ch == '-')
            ch = '_';
        else if (upper && ch >= 'a' && ch <= 'z')
            ch = (char)(ch - 'a' + 'A');
        else if (!upper && ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        buf_putc(b, ch);
    }
}

/* ---- Credentials values ---------------------------------------------------------------------- */

static void secret_free(char *s)
{
    if (s == NULL)
        return;
    volatile char *v = s;
    while (*v != '\0')
        *v++ = '\0';
    free(s);
}

void aws_creds_copy(struct aws_creds *dst, const struct aws_creds *src)
{
    dst->access_key_id = src->access_key_id != NULL ? xstrdup(src->access_key_id) : NULL;
    dst->secret_access_key =
        src->secret_access_key != NULL ? xstrdup(src->secret_access_key) : NULL;
    dst->session_token = src->session_token != NULL ? xstrdup(src->session_token) : NULL;
    dst->expiration = src->expiration;
    dst->source = src->source;
}

void aws_creds_release(struct aws_creds *c)
{
    free(c->access_key_id);
    secret_free(c->secret_access_key);
    secret_free(c->session_token);
    memset(c, 0, sizeof(*c));
}

/* ---- Endpoints ------------------------------------------------------------------------------- */

void aws_endpoint_release(struct aws_endpoint *ep)
{
    free(ep->url);
    free(ep->host);
    free(ep->base_path);
    memset(ep, 0, sizeof(*ep));
}

static bool all_digits(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
    }
    return true;
}

/* The URL for a cause: as given, unless it carries user info (which may hold a password). */
static const char *url_for_cause(const char *url)
{
    return strchr(url, '@') != NULL ? "(with user info)" : url;
}

int aws_endpoint_parse(struct aws_endpoint *ep, const char *url, struct err *err)
{
    memset(ep, 0, sizeof(*ep));
    bool tls;
    const char *p;
    if (strncasecmp(url, "https://", 8) == 0) {
        tls = true;
        p = url + 8;
    } else if (strncasecmp(url, "http://", 7) == 0) {
        tls = false;
        p = url + 7;
    } else {
        return err_set(err, AWS_ERR_CLIENT, "endpoint URL '%s' is not an http or https URL",
                       url_for_cause(url));
    }
    size_t alen = strcspn(p, "/?#");
    const char *aend = p + alen;
    const char *at = NULL;
    for (const char *q = p; q < aend; q++) {
        if (*q == '@')
            at = q;
    }
    if (at != NULL)
        p = at + 1;
    const char *host = p;
    const char *hend;
    const char *port = NULL;
    if (*p == '[') {
        const char *close = memchr(p, ']', (size_t)(aend - p));
        if (close == NULL)
            return err_set(err, AWS_ERR_CLIENT, "endpoint URL '%s' has a bad IPv6 host",
                           url_for_cause(url));
        hend = close + 1;
        if (hend < aend && *hend == ':')
            port = hend + 1;
        else if (hend != aend)
            return err_set(err, AWS_ERR_CLIENT, "endpoint URL '%s' has a bad host",
                           url_for_cause(url));
    } else {
        const char *colon = memchr(p, ':', (size_t)(aend - p));
        hend = colon != NULL ? colon : aend;
        if (colon != NULL)
            port = colon + 1;
    }
    if (hend == host)
        return err_set(err, AWS_ERR_CLIENT, "endpoint URL '%s' has no host", url_for_cause(url));
    long portnum = tls ? 443 : 80;
    if (port != NULL) {
        size_t plen = (size_t)(aend - port);
        if (!all_digits(port, plen) || plen > 5)
            return err_set(err, AWS_ERR_CLIENT, "endpoint URL '%s' has a bad port",
                           url_for_cause(url));
        portnum = strtol(port, NULL, 10);
        if (portnum < 1 || portnum > 65535)
            return err_set(err, AWS_ERR_CLIENT, "endpoint URL '%s' has a bad port",
                           url_for_cause(url));
    }
    struct buf h = BUF_INIT;
    for (const char *q = host; q < hend; q++) {
        char ch = *q;
        if (ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        buf_putc(&h, ch);
    }
    if (portnum != (tls ? 443 : 80))
        buf_printf(&h, ":%ld", portnum);
    size_t plen = strcspn(aend, "?#");
    while (plen > 0 && aend[plen - 1] == '/')
        plen--;
    ep->tls = tls;
    ep->host = buf_detach(&h);
    ep->base_path = xstrndup(aend, plen);
    ep->url = xasprintf("%s://%s%s", tls ? "https" : "http", ep->host, ep->base_path);
    return 0;
}

/* ---- Shell-like word splitting ------------------------------------------------------------ */

struct words {
    char **v;   /* owned words, NULL-terminated */
    size_t n;   /* words */
};

static void words_release(struct words *w)
{
    for (size_t i = 0; i < w->n; i++)
        free(w->v[i]);
    free(w->v);
    w->v = NULL;
    w->n = 0;
}

/* Splits like a POSIX shell without expansions (Python's shlex.split, which botocore uses):
 * whitespace separates, '...' is literal, "..." allows \" \\ \$ \`, a backslash outside
 * quotes escapes the next character. Returns 0, or -1 on an unterminated quote. */
static int words_split(struct words *w, const char *s)
{
    w->v = xmalloc(sizeof(char *));
    w->n = 0;
    struct buf cur = BUF_INIT;
    bool in_word = false;
    const char *p = s;
    while (*p != '\0') {
        char ch = *p;
        if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r') {
            if (in_word) {
                w->v = xrealloc(w->v, (w->n + 2) * sizeof(char *));
                buf_cstr(&cur);
                w->v[w->n++] = buf_detach(&cur);
                in_word = false;
            }
            p++;
            continue;
        }
        in_word = true;
        if (ch == '\'') {
            const char *close = strchr(p + 1, '\'');
            if (close == NULL)
                goto unterminated;
            buf_add(&cur, p + 1, (size_t)(close - p - 1));
            p = close + 1;
        } else if (ch == '"') {
            p++;
            while (*p != '"') {
                if (*p == '\0')
                    goto unterminated;
                if (*p == '\\' && (p[1] == '"' || p[1] == '\\' || p[1] == '$' || p[1] == '`')) {
                    p++;
                }
                buf_putc(&cur, *p);
                p++;
            }
            p++;
        } else if (ch == '\\' && p[1] != '\0') {
            buf_putc(&cur, p[1]);
            p += 2;
        } else {
            buf_putc(&cur, ch);
            p++;
        }
    }
    if (in_word) {
        w->v = xrealloc(w->v, (w->n + 2) * sizeof(char *));
        buf_cstr(&cur);
        w->v[w->n++] = buf_detach(&cur);
    }
    w->v[w->n] = NULL;
    buf_release(&cur);
    return 0;
unterminated:
    buf_release(&cur);
    w->v[w->n] = NULL;
    words_release(w);
    return -1;
}

/* ---- INI files (Python's configparser as botocore uses it) ----------------------------------- */

struct kv {
    char *key;   /* owned, lower-case */
    char *value; /* owned, trimmed; continuation lines joined with '\n' */
};

struct section {
    char *name;  /* owned, as written between the brackets, trimmed */
    struct kv *kv;
    size_t n;
    size_t cap;
};

struct ini {
    struct section *s;
    size_t n;
    size_t cap;
};

static void ini_release(struct ini *ini)
{
    for (size_t i = 0; i < ini->n; i++) {
        struct section *s = &ini->s[i];
        for (size_t j = 0; j < s->n; j++) {
            free(s->kv[j].key);
            secret_free(s->kv[j].value);
        }
        free(s->kv);
        free(s->name);
    }
    free(ini->s);
    memset(ini, 0, sizeof(*ini));
}

static char *trimmed_dup(const char *s, size_t n)
{
    while (n > 0 && (*s == ' ' || *s == '\t' || *s == '\r')) {
        s++;
        n--;
    }
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        n--;
    return xstrndup(s, n);
}

/* The value of `key` in `s` (the last one written), or NULL. Borrowed. */
static const char *section_get(const struct section *s, const char *key)
{
    if (s == NULL)
        return NULL;
    for (size_t i = s->n; i > 0; i--) {
        if (strcmp(s->kv[i - 1].key, key) == 0)
            return s->kv[i - 1].value;
    }
    return NULL;
}

/* Parses INI text: "[section]", "key = value" or "key: value" (split at the first delimiter,
 * key lower-cased), indented lines continue the previous value, full-line comments start with
 * '#' or ';'. Returns 0, or -1 with err set naming the file and line (never its text: the
 * line may hold a secret). */
static int ini_parse(struct ini *ini, const char *text, size_t len, const char *path,
                     struct err *err)
{
    const char *p = text;
    const char *end = text + len;
    int lineno = 0;
    struct section *cur = NULL;
    struct kv *last = NULL;
    while (p < end) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        if (e == NULL)
            e = end;
        lineno++;
        const char *s = p;
        while (s < e && (*s == ' ' || *s == '\t' || *s == '\r'))
            s++;
        bool indented = s > p;
        const char *line_end = e;
        p = e + 1;
        if (s == line_end || *s == '#' || *s == ';')
            continue;
        if (indented && last != NULL) {
            char *add = trimmed_dup(s, (size_t)(line_end - s));
            char *v = xasprintf("%s\n%s", last->value, add);
            secret_free(add);
            secret_free(last->value);
            last->value = v;
            continue;
        }
        if (*s == '[') {
            const char *close = line_end;
            while (close > s && *close != ']')
                close--;
            if (*close != ']' || close == s + 1)
                return err_set(err, AWS_ERR_CLIENT, "cannot parse '%s' line %d: bad section",
                               path, lineno);
            if (ini->n == ini->cap) {
                ini->cap = ini->cap ? ini->cap * 2 : 8;
                ini->s = xrealloc(ini->s, ini->cap * sizeof(*ini->s));
            }
            cur = &ini->s[ini->n++];
            memset(cur, 0, sizeof(*cur));
            cur->name = trimmed_dup(s + 1, (size_t)(close - s - 1));
            last = NULL;
            continue;
        }
        if (cur == NULL)
            return err_set(err, AWS_ERR_CLIENT, "cannot parse '%s' line %d: no section header",
                           path, lineno);
        const char *d = s;
        while (d < line_end && *d != '=' && *d != ':')
            d++;
        if (d == line_end || d == s)
            return err_set(err, AWS_ERR_CLIENT, "cannot parse '%s' line %d: expected key = value",
                           path, lineno);
        if (cur->n == cur->cap) {
            cur->cap = cur->cap ? cur->cap * 2 : 8;
            cur->kv = xrealloc(cur->kv, cur->cap * sizeof(*cur->kv));
        }
        last = &cur->kv[cur->n++];
        last->key = trimmed_dup(s, (size_t)(d - s));
        for (char *k = last->key; *k != '\0'; k++) {
            if (*k >= 'A' && *k <= 'Z')
                *k = (char)(*k - 'A' + 'a');
        }
        last->value = trimmed_dup(d + 1, (size_t)(line_end - d - 1));
    }
    return 0;
}

/* A nested value ("emr_containers =" then indented "endpoint_url = ..." lines, botocore's
 * _parse_nested): the value of `key`, or NULL. Returns a new string (free() it). */
static char *nested_get(const char *value, const char *key)
{
    char *found = NULL;
    const char *p = value;
    while (*p != '\0') {
        const char *e = strchr(p, '\n');
        if (e == NULL)
            e = p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(e - p));
        if (eq != NULL) {
            char *k = trimmed_dup(p, (size_t)(eq - p));
            if (strcmp(k, key) == 0) {
                free(found);
                found = trimmed_dup(eq + 1, (size_t)(e - eq - 1));
            }
            free(k);
        }
        p = *e != '\0' ? e + 1 : e;
    }
    return found;
}

/* ---- ISO 8601 times -------------------------------------------------------------------------- */

static bool digits_at(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* "2024-01-01T00:00:00Z", with optional fraction and a Z or +HH:MM / -HHMM offset (the forms
 * credential_process tools print). Returns 0 or -1. */
static int iso8601_parse(const char *s, time_t *out)
{
    int y, mo, d, h, mi, sec;
    if (strlen(s) < 19 || !digits_at(s, 4, &y) || s[4] != '-' || !digits_at(s + 5, 2, &mo) ||
        s[7] != '-' || !digits_at(s + 8, 2, &d) ||
        (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !digits_at(s + 11, 2, &h) ||
        s[13] != ':' || !digits_at(s + 14, 2, &mi) || s[16] != ':' ||
        !digits_at(s + 17, 2, &sec))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -1;
    const char *p = s + 19;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return -1;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    long offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        int sign = *p == '-' ? -1 : 1;
        p++;
        if (!digits_at(p, 2, &oh))
            return -1;
        p += 2;
        if (*p == ':')
            p++;
        if (!digits_at(p, 2, &om))
            return -1;
        p += 2;
        offset = sign * (oh * 3600L + om * 60L);
    } else {
        return -1;
    }
    if (*p != '\0')
        return -1;
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    *out = t - offset;
    return 0;
}

/* ---- The config ------------------------------------------------------------------------------ */

struct envvar {
    char *name;  /* owned */
    char *value; /* owned; never NULL (unset variables are not kept) */
};

struct aws_config {
    struct envvar *env;          /* snapshot of the variables we read */
    size_t nenv;
    char *profile;               /* owned: the selected profile */
    bool profile_from_opts;      /* explicit engine profile: no environment credentials */
    char *region;                /* owned; NULL when none */
    char *endpoint_url;          /* owned; opts.endpoint_url or NULL */
    char *config_path;           /* owned; NULL when no home and no AWS_CONFIG_FILE */
    char *creds_path;            /* owned; likewise */
    struct ini config;           /* the config file */
    struct ini credentials;      /* the shared credentials file */
    const struct section *cfg_profile;  /* the profile's config-file section, or NULL */
    const struct section *cred_profile; /* the profile's credentials-file section, or NULL */
    struct aws_creds creds;      /* the current credentials, when have_creds */
    bool have_creds;
    const char *region_source;   /* static: "engine", "env", "config-file"; NULL when none */
    char *ca_bundle;             /* owned: AWS_CA_BUNDLE or ca_bundle, "~" expanded; or NULL */
    unsigned process_timeout_ms; /* credential_process time limit */
    struct proc_run *run;        /* the credential_process run in progress, or NULL */
    struct creds_waiter *waiters; /* callers waiting for it */
    size_t nwaiters;
    size_t capwaiters;
};

static void run_detach(struct proc_run *r);

/* Every variable read, snapshotted at aws_config_new (integrations.md §7.1-7.3). */
static const char *const env_names[] = {
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_DEFAULT_PROFILE",
    "AWS_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_ENDPOINT_URL",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_RETRY_MODE",
    "AWS_MAX_ATTEMPTS",
    "AWS_CA_BUNDLE",
};

const char *aws_env_getenv(void *arg, const char *name)
{
    (void)arg;
    return getenv(name);
}

static const char *cfg_env(const struct aws_config *c, const char *name)
{
    for (size_t i = 0; i < c->nenv; i++) {
        if (strcmp(c->env[i].name, name) == 0)
            return c->env[i].value;
    }
    return NULL;
}

static void env_snap(struct aws_config *c, const struct aws_env *env, const char *name)
{
    const char *v = env->get != NULL ? env->get(env->arg, name) : NULL;
    if (v == NULL || v[0] == '\0')
        return;
    c->env = xrealloc(c->env, (c->nenv + 1) * sizeof(*c->env));
    c->env[c->nenv].name = xstrdup(name);
    c->env[c->nenv].value = xstrdup(v);
    c->nenv++;
}

/* A path from the environment or the default under home; "~" expanded. NULL when it needs a
 * home directory and there is none. New string. */
static char *config_path(const char *given, const char *home, const char *dflt)
{
    if (given == NULL) {
        if (home == NULL)
            return NULL;
        return xasprintf("%s/%s", home, dflt);
    }
    if (given[0] == '~' && (given[1] == '/' || given[1] == '\0')) {
        if (home == NULL)
            return NULL;
        return xasprintf("%s%s", home, given + 1);
    }
    return xstrdup(given);
}

/* Reads and parses `path` into `ini`; a missing file is an empty one. */
static int ini_load(struct ini *ini, const char *path, struct err *err)
{
    memset(ini, 0, sizeof(*ini));
    if (path == NULL)
        return 0;
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0;
        return err_set(err, AWS_ERR_CLIENT, "cannot read '%s': %s", path, strerror(errno));
    }
    struct buf b = BUF_INIT;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_add(&b, chunk, n);
    bool bad = ferror(f) != 0;
    int saved = errno;
    fclose(f);
    if (bad) {
        buf_release(&b);
        return err_set(err, AWS_ERR_CLIENT, "cannot read '%s': %s", path, strerror(saved));
    }
    int rc = ini_parse(ini, b.data != NULL ? b.data : "", b.len, path, err);
    if (b.data != NULL)
        memset(b.data, 0, b.len);
    buf_release(&b);
    return rc;
}

/* The config file's section for profile `name`: "[profile name]" (words split like botocore)
 * or "[default]" for "default"; the last one written wins. */
static const struct section *config_profile_find(const struct ini *ini, const char *name)
{
    const struct section *found = NULL;
    for (size_t i = 0; i < ini->n; i++) {
        const struct section *s = &ini->s[i];
        if (strcmp(s->name, "default") == 0 && strcmp(name, "default") == 0) {
            found = s;
            continue;
        }
        if (strncmp(s->name, "profile", 7) != 0)
            continue;
        struct words w;
        if (words_split(&w, s->name) != 0)
            continue;
        if (w.n == 2 && strcmp(w.v[0], "profile") == 0 && strcmp(w.v[1], name) == 0)
            found = s;
        words_release(&w);
    }
    return found;
}

static const struct section *ini_section_find(const struct ini *ini, const char *name)
{
    const struct section *found = NULL;
    for (size_t i = 0; i < ini->n; i++) {
        if (strcmp(ini->s[i].name, name) == 0)
            found = &ini->s[i];
    }
    return found;
}

/* A key of the merged profile: the credentials file's value beats the config file's
 * (botocore's full_config). Borrowed or NULL. */
static const char *profile_get(const struct aws_config *c, const char *key)
{
    const char *v = section_get(c->cred_profile, key);
    if (v != NULL)
        return v;
    return section_get(c->cfg_profile, key);
}

struct aws_config *aws_config_new(const struct aws_env *env, const struct aws_config_opts *opts,
                                  struct err *err)
{
    struct aws_config *c = xcalloc(1, sizeof(*c));
    for (size_t i = 0; i < ARRAY_LEN(env_names); i++)
        env_snap(c, env, env_names[i]);
    for (size_t i = 0; i < ARRAY_LEN(known_services); i++) {
        struct buf name = BUF_INIT;
        buf_puts(&name, "AWS_ENDPOINT_URL_");
        service_id_key(&name, known_services[i]->service_id, true);
        env_snap(c, env, name.data);
        buf_release(&name);
    }
    const char *home = env->home != NULL && env->home[0] != '\0' ? env->home : NULL;

    bool explicit_profile = true;
    if (opts != NULL && opts->profile != NULL && opts->profile[0] != '\0') {
        c->profile = xstrdup(opts->profile);
        c->profile_from_opts = true;
    } else if (cfg_env(c, "AWS_PROFILE") != NULL) {
        /* AWS_PROFILE before the legacy AWS_DEFAULT_PROFILE, as the AWS CLI v2 reads them
         * (botocore alone reads them the other way round) */
        c->profile = xstrdup(cfg_env(c, "AWS_PROFILE"));
    } else if (cfg_env(c, "AWS_DEFAULT_PROFILE") != NULL) {
        c->profile = xstrdup(cfg_env(c, "AWS_DEFAULT_PROFILE"));
    } else {
        c->profile = xstrdup("default");
        explicit_profile = false;
    }
    if (opts != NULL && opts->endpoint_url != NULL && opts->endpoint_url[0] != '\0')
        c->endpoint_url = xstrdup(opts->endpoint_url);

    c->config_path = config_path(cfg_env(c, "AWS_CONFIG_FILE"), home, ".aws/config");
    c->creds_path =
        config_path(cfg_env(c, "AWS_SHARED_CREDENTIALS_FILE"), home, ".aws/credentials");
    if (ini_load(&c->config, c->config_path, err) != 0 ||
        ini_load(&c->credentials, c->creds_path, err) != 0) {
        aws_config_free(c);
        return NULL;
    }
    c->cfg_profile = config_profile_find(&c->config, c->profile);
    c->cred_profile = ini_section_find(&c->credentials, c->profile);
    if (explicit_profile && c->cfg_profile == NULL && c->cred_profile == NULL) {
        err_set(err, AWS_ERR_CLIENT, "the config profile '%s' could not be found", c->profile);
        aws_config_free(c);
        return NULL;
    }

    const char *region = NULL;
    const char *source = NULL;
    if (opts != NULL && opts->region != NULL && opts->region[0] != '\0') {
        region = opts->region;
        source = "engine";
    }
    if (region == NULL) {
        region = cfg_env(c, "AWS_REGION");
        source = "env";
    }
    if (region == NULL)
        region = cfg_env(c, "AWS_DEFAULT_REGION");
    if (region == NULL) {
        region = profile_get(c, "region");
        source = "config-file";
    }
    if (region != NULL && region[0] != '\0') {
        c->region = xstrdup(region);
        c->region_source = source;
    }
    const char *ca = cfg_env(c, "AWS_CA_BUNDLE");
    if (ca == NULL)
        ca = profile_get(c, "ca_bundle");
    if (ca != NULL && ca[0] != '\0')
        c->ca_bundle = config_path(ca, home, NULL);
    c->process_timeout_ms = opts != NULL && opts->process_timeout_ms != 0
                                ? opts->process_timeout_ms
                                : AWS_CREDS_PROCESS_TIMEOUT_MS;
    return c;
}

void aws_config_free(struct aws_config *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->nenv; i++) {
        free(c->env[i].name);
        secret_free(c->env[i].value);
    }
    free(c->env);
    free(c->profile);
    free(c->region);
    free(c->endpoint_url);
    free(c->config_path);
    free(c->creds_path);
    ini_release(&c->config);
    ini_release(&c->credentials);
    aws_creds_release(&c->creds);
    free(c->ca_bundle);
    if (c->run != NULL)
        run_detach(c->run);
    free(c->waiters);
    free(c);
}

const char *aws_config_profile(const struct aws_config *c)
{
    return c->profile;
}

const char *aws_config_region(const struct aws_config *c)
{
    return c->region;
}

const char *aws_config_region_source(const struct aws_config *c)
{
    return c->region_source;
}

const char *aws_config_ca_bundle(const struct aws_config *c)
{
    return c->ca_bundle;
}

/* ---- Retry settings (SDKs and Tools Reference Guide, "Retry behavior") ----------------------- */

int aws_config_retry(const struct aws_config *c, struct aws_retry_config *out, struct err *err)
{
    memset(out, 0, sizeof(*out));
    const char *mode = cfg_env(c, "AWS_RETRY_MODE");
    const char *mode_name = "AWS_RETRY_MODE";
    out->mode_source = "env";
    if (mode == NULL) {
        mode = profile_get(c, "retry_mode");
        mode_name = "retry_mode";
        out->mode_source = "config-file";
    }
    if (mode == NULL || mode[0] == '\0') {
        out->mode_source = NULL;
    } else if (strcmp(mode, "standard") == 0) {
        out->mode = AWS_RETRY_STANDARD;
    } else if (strcmp(mode, "legacy") == 0) {
        out->mode = AWS_RETRY_LEGACY;
    } else if (strcmp(mode, "adaptive") == 0) {
        return err_set(err, AWS_ERR_CLIENT,
                       "retry mode 'adaptive' (%s) is not supported; use 'standard' or 'legacy'",
                       mode_name);
    } else {
        return err_set(err, AWS_ERR_CLIENT,
                       "invalid retry mode '%s' (%s); valid values are: legacy, standard, "
                       "adaptive",
                       mode, mode_name);
    }
    const char *attempts = cfg_env(c, "AWS_MAX_ATTEMPTS");
    const char *attempts_name = "AWS_MAX_ATTEMPTS";
    out->attempts_source = "env";
    if (attempts == NULL) {
        attempts = profile_get(c, "max_attempts");
        attempts_name = "max_attempts";
        out->attempts_source = "config-file";
    }
    if (attempts == NULL || attempts[0] == '\0') {
        out->attempts_source = NULL;
        return 0;
    }
    char *end;
    errno = 0;
    long n = strtol(attempts, &end, 10);
    /* botocore takes int(value) and refuses values below 1 */
    while (*end == ' ' || *end == '\t')
        end++;
    if (end == attempts || *end != '\0' || errno != 0 || n < 1 || n > 1000)
        return err_set(err, AWS_ERR_CLIENT,
                       "invalid max attempts '%s' (%s): must be an integer from 1 to 1000",
                       attempts, attempts_name);
    out->max_attempts = (unsigned)n;
    return 0;
}

/* ---- credential_process on the loop ---------------------------------------------------------- */

#define PROCESS_OUTPUT_MAX (64 * 1024) /* bytes kept of each stream; a reply is < 4 KB */
#define PROCESS_CAUSE_MAX 200          /* bytes of stderr quoted in a cause */

/* One run of the command: uv_spawn with both output streams piped, and a timeout. It ends
 * (result parsed and handed to every waiter) once the command has exited and both pipes are
 * at EOF, or the timeout has fired; its handles close only after the exit has been seen, so no
 * zombie is left, and it is freed by the last close callback. */
struct proc_run {
    struct aws_config *cfg; /* the config it serves; NULL once the config is freed */
    uv_process_t proc;
    uv_pipe_t out;          /* the command's stdout */
    uv_pipe_t errp;         /* its stderr */
    uv_timer_t timer;       /* the timeout */
    unsigned open_handles;  /* handles whose close callback has not run */
    bool exited;            /* exit_cb has run (or the spawn failed) */
    bool out_eof;           /* stdout is at EOF */
    bool err_eof;           /* stderr is at EOF */
    bool gave_up;           /* the timeout fired: the process group was killed */
    bool timed_out;         /* ... while the command was still running */
    bool ended;             /* the result has been delivered (or nobody wants it) */
    int64_t exit_status;
    int term_signal;
    struct buf outbuf;      /* stdout, at most PROCESS_OUTPUT_MAX bytes (wiped: secrets) */
    struct buf errbuf;      /* stderr, likewise */
    char *program;          /* owned: the command's first word, for causes */
    unsigned timeout_ms;
    char chunk[4096];       /* read buffer */
};

struct creds_waiter {
    aws_creds_ready_fn fn;
    void *arg;
};

/* The first line of the command's stderr, printable ASCII only, for a cause. */
static void stderr_excerpt(struct buf *dst, const struct buf *errbuf)
{
    size_t n = 0;
    for (size_t i = 0; i < errbuf->len && n < PROCESS_CAUSE_MAX; i++) {
        char ch = errbuf->data[i];
        if (ch == '\n') {
            if (n > 0)
                break;
            continue;
        }
        buf_putc(dst, ch >= 0x20 && ch < 0x7f ? ch : '?');
        n++;
    }
}

/* Parses a Version 1 reply into `out`. */
static int process_parse(const struct buf *text, struct aws_creds *out, struct err *err)
{
    memset(out, 0, sizeof(*out));
    json_error_t jerr;
    json_t *doc = json_loadb(text->data != NULL ? text->data : "", text->len,
                             JSON_REJECT_DUPLICATES, &jerr); /* new reference */
    if (doc == NULL)
        /* jerr.text quotes the input near the error, which may be the secret: left out. */
        return err_set(err, AWS_ERR_CLIENT,
                       "credential_process output is not a JSON object (line %d, column %d)",
                       jerr.line, jerr.column);
    int rc = -1;
    json_t *version = json_object_get(doc, "Version"); /* borrowed, like the rest */
    const char *akid = json_string_value(json_object_get(doc, "AccessKeyId"));
    const char *secret = json_string_value(json_object_get(doc, "SecretAccessKey"));
    json_t *token = json_object_get(doc, "SessionToken");
    json_t *expiration = json_object_get(doc, "Expiration");
    time_t exp = 0;
    if (!json_is_integer(version) || json_integer_value(version) != 1) {
        err_set(err, AWS_ERR_CLIENT,
                "credential_process reply has an unsupported Version (supported: 1)");
    } else if (akid == NULL || akid[0] == '\0') {
        err_set(err, AWS_ERR_CLIENT, "credential_process reply has no AccessKeyId");
    } else if (secret == NULL || secret[0] == '\0') {
        err_set(err, AWS_ERR_CLIENT, "credential_process reply has no SecretAccessKey");
    } else if (token != NULL && !json_is_null(token) && !json_is_string(token)) {
        err_set(err, AWS_ERR_CLIENT, "credential_process reply has a non-string SessionToken");
    } else if (expiration != NULL && !json_is_null(expiration) &&
               (!json_is_string(expiration) ||
                iso8601_parse(json_string_value(expiration), &exp) != 0)) {
        err_set(err, AWS_ERR_CLIENT,
                "credential_process reply has an Expiration that is not an ISO 8601 time");
    } else {
        out->access_key_id = xstrdup(akid);
        out->secret_access_key = xstrdup(secret);
        const char *t = json_string_value(token);
        out->session_token = t != NULL && t[0] != '\0' ? xstrdup(t) : NULL;
        out->expiration = exp;
        out->source = "custom-process";
        rc = 0;
    }
    json_decref(doc);
    return rc;
}

/* The run's outcome: credentials in `out`, or -1 with err set. */
static int run_result(const struct proc_run *r, struct aws_creds *out, struct err *err)
{
    memset(out, 0, sizeof(*out));
    if (r->timed_out)
        return err_set(err, AWS_ERR_CLIENT, "credential_process '%s' timed out after %u ms",
                       r->program, r->timeout_ms);
    if (r->term_signal != 0)
        return err_set(err, AWS_ERR_CLIENT, "credential_process '%s' was killed by signal %d",
                       r->program, r->term_signal);
    if (r->exit_status != 0) {
        struct buf msg = BUF_INIT;
        stderr_excerpt(&msg, &r->errbuf);
        err_set(err, AWS_ERR_CLIENT, "credential_process '%s' failed with exit status %d%s%s",
                r->program, (int)r->exit_status, msg.len > 0 ? ": " : "", buf_cstr(&msg));
        buf_release(&msg);
        return -1;
    }
    return process_parse(&r->outbuf, out, err);
}

static void on_run_closed(uv_handle_t *handle)
{
    struct proc_run *r = handle->data;
    if (--r->open_handles > 0)
        return;
    if (r->outbuf.data != NULL)
        memset(r->outbuf.data, 0, r->outbuf.len);
    buf_release(&r->outbuf);
    buf_release(&r->errbuf);
    free(r->program);
    free(r);
}

/* Closes the handles once the result is out and the exit has been seen. */
static void run_maybe_close(struct proc_run *r)
{
    if (!r->ended || !r->exited || uv_is_closing((uv_handle_t *)&r->timer))
        return;
    uv_handle_t *handles[] = {(uv_handle_t *)&r->proc, (uv_handle_t *)&r->out,
                              (uv_handle_t *)&r->errp, (uv_handle_t *)&r->timer};
    for (size_t i = 0; i < ARRAY_LEN(handles); i++)
        uv_close(handles[i], on_run_closed);
}

/* Kills the command's process group (the command and whatever it started). */
static void run_kill(struct proc_run *r)
{
    if (!r->exited && r->proc.pid > 0)
        uv_kill(-r->proc.pid, SIGKILL);
}

/* Ends the run when it has finished: parses the result, keeps good credentials in the config
 * and calls every waiter. Waiters must not free the config. */
static void run_check(struct proc_run *r)
{
    if (r->ended) {
        run_maybe_close(r);
        return;
    }
    if (!r->exited || (!(r->out_eof && r->err_eof) && !r->gave_up))
        return;
    r->ended = true;
    uv_timer_stop(&r->timer);
    uv_read_stop((uv_stream_t *)&r->out);
    uv_read_stop((uv_stream_t *)&r->errp);
    struct aws_config *c = r->cfg;
    if (c != NULL) {
        c->run = NULL;
        r->cfg = NULL;
        struct err err = ERR_INIT;
        struct aws_creds fresh;
        int rc = run_result(r, &fresh, &err);
        if (rc == 0) {
            aws_creds_release(&c->creds);
            c->creds = fresh;
            c->have_creds = true;
        }
        struct creds_waiter *w = c->waiters;
        size_t n = c->nwaiters;
        c->waiters = NULL;
        c->nwaiters = 0;
        c->capwaiters = 0;
        for (size_t i = 0; i < n; i++)
            w[i].fn(rc == 0 ? &c->creds : NULL, &err, w[i].arg);
        free(w);
        err_clear(&err);
    }
    run_maybe_close(r);
}

static void on_run_exit(uv_process_t *p, int64_t exit_status, int term_signal)
{
    struct proc_run *r = container_of(p, struct proc_run, proc);
    r->exited = true;
    r->exit_status = exit_status;
    r->term_signal = term_signal;
    run_check(r);
}

static void on_run_timeout(uv_timer_t *t)
{
    struct proc_run *r = container_of(t, struct proc_run, timer);
    /* A command that exited but left a child holding its pipes ends here too, with what it
     * wrote; one still running is killed and reported. */
    r->timed_out = !r->exited;
    run_kill(r);
    r->gave_up = true;
    run_check(r);
}

static void on_run_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *b)
{
    struct proc_run *r = handle->data;
    (void)suggested;
    b->base = r->chunk;
    b->len = sizeof(r->chunk);
}

static void on_run_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct proc_run *r = s->data;
    bool is_out = s == (uv_stream_t *)&r->out;
    if (n < 0) {
        /* EOF, or a read error, which ends the stream just the same */
        uv_read_stop(s);
        if (is_out)
            r->out_eof = true;
        else
            r->err_eof = true;
        run_check(r);
        return;
    }
    struct buf *dst = is_out ? &r->outbuf : &r->errbuf;
    if (dst->len + (size_t)n <= PROCESS_OUTPUT_MAX)
        buf_add(dst, b->base, (size_t)n);
    memset(b->base, 0, (size_t)n);
}

/* Starts `cmdline` on `loop` for config `c` (c->run set). Returns 0, or -1 with err set. */
static int run_start(struct aws_config *c, uv_loop_t *loop, const char *cmdline, struct err *err)
{
    struct words w;
    if (words_split(&w, cmdline) != 0 || w.n == 0) {
        if (w.n == 0 && w.v != NULL)
            words_release(&w);
        return err_set(err, AWS_ERR_CLIENT, "cannot parse credential_process command line");
    }
    struct proc_run *r = xcalloc(1, sizeof(*r));
    r->timeout_ms = c->process_timeout_ms;
    buf_init(&r->outbuf);
    buf_init(&r->errbuf);
    uv_pipe_init(loop, &r->out, 0);
    uv_pipe_init(loop, &r->errp, 0);
    uv_timer_init(loop, &r->timer);
    r->out.data = r;
    r->errp.data = r;
    r->timer.data = r;
    r->proc.data = r;
    r->open_handles = 4;
    uv_stdio_container_t stdio[3];
    stdio[0].flags = UV_IGNORE; /* /dev/null */
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&r->out;
    stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[2].data.stream = (uv_stream_t *)&r->errp;
    uv_process_options_t o;
    memset(&o, 0, sizeof(o));
    o.exit_cb = on_run_exit;
    o.file = w.v[0];
    o.args = w.v;
    o.env = NULL; /* the engine's environment, as botocore passes its own */
    o.flags = UV_PROCESS_DETACHED; /* its own process group, killed whole on timeout */
    o.stdio_count = 3;
    o.stdio = stdio;
    int rc = uv_spawn(loop, &r->proc, &o);
    if (rc != 0) {
        /* the handle was initialised all the same: everything closes at once */
        err_set(err, AWS_ERR_CLIENT, "cannot run credential_process '%s': %s", w.v[0],
                uv_strerror(rc));
        words_release(&w);
        r->exited = true;
        r->ended = true;
        r->program = NULL;
        run_maybe_close(r);
        return -1;
    }
    r->program = xstrdup(w.v[0]);
    words_release(&w);
    uv_read_start((uv_stream_t *)&r->out, on_run_alloc, on_run_read);
    uv_read_start((uv_stream_t *)&r->errp, on_run_alloc, on_run_read);
    uv_timer_start(&r->timer, on_run_timeout, r->timeout_ms, 0);
    r->cfg = c;
    c->run = r;
    return 0;
}

static void waiter_add(struct aws_config *c, aws_creds_ready_fn fn, void *arg)
{
    if (c->nwaiters == c->capwaiters) {
        c->capwaiters = c->capwaiters != 0 ? c->capwaiters * 2 : 4;
        c->waiters = xrealloc(c->waiters, c->capwaiters * sizeof(*c->waiters));
    }
    c->waiters[c->nwaiters].fn = fn;
    c->waiters[c->nwaiters].arg = arg;
    c->nwaiters++;
}

void aws_config_creds_unwait(struct aws_config *c, aws_creds_ready_fn ready, void *arg)
{
    size_t j = 0;
    for (size_t i = 0; i < c->nwaiters; i++) {
        if (c->waiters[i].fn != ready || c->waiters[i].arg != arg)
            c->waiters[j++] = c->waiters[i];
    }
    c->nwaiters = j;
}

/* Called by aws_config_free: the run goes on without a config; killed unless done. */
static void run_detach(struct proc_run *r)
{
    r->cfg = NULL;
    if (!r->ended) {
        run_kill(r);
        r->ended = true;
        uv_timer_stop(&r->timer);
        uv_read_stop((uv_stream_t *)&r->out);
        uv_read_stop((uv_stream_t *)&r->errp);
    }
    run_maybe_close(r);
}

/* ---- Resolution ------------------------------------------------------------------------------ */

/* Static keys from one source: both or neither (one alone is an error, naming the missing
 * key). Returns 1 when found, 0 when absent, -1 with err set. */
static int static_creds(struct aws_creds *out, const char *akid, const char *secret,
                        const char *token, const char *source, const char *akid_name,
                        const char *secret_name, struct err *err)
{
    bool has_akid = akid != NULL && akid[0] != '\0';
    bool has_secret = secret != NULL && secret[0] != '\0';
    if (!has_akid && !has_secret)
        return 0;
    if (!has_akid || !has_secret)
        return err_set(err, AWS_ERR_CLIENT, "partial credentials found in %s, missing: %s",
                       source, has_akid ? secret_name : akid_name);
    out->access_key_id = xstrdup(akid);
    out->secret_access_key = xstrdup(secret);
    out->session_token = token != NULL && token[0] != '\0' ? xstrdup(token) : NULL;
    out->expiration = 0;
    out->source = source;
    return 1;
}

/* Finds the credential source in botocore's order. Returns 0 with `out` filled, 1 when the
 * source is credential_process (*cmd set, borrowed: run it), or -1 with err set. */
static int creds_resolve(struct aws_config *c, time_t now, struct aws_creds *out,
                         const char **cmd, struct err *err)
{
    memset(out, 0, sizeof(*out));
    /* 1. Environment, unless the engine named a profile (botocore drops the env provider). */
    if (!c->profile_from_opts) {
        const char *token = cfg_env(c, "AWS_SESSION_TOKEN");
        if (token == NULL)
            token = cfg_env(c, "AWS_SECURITY_TOKEN");
        int rc = static_creds(out, cfg_env(c, "AWS_ACCESS_KEY_ID"),
                              cfg_env(c, "AWS_SECRET_ACCESS_KEY"), token, "env",
                              "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", err);
        if (rc < 0)
            return -1;
        if (rc > 0) {
            const char *exp = cfg_env(c, "AWS_CREDENTIAL_EXPIRATION");
            if (exp != NULL && iso8601_parse(exp, &out->expiration) != 0) {
                aws_creds_release(out);
                return err_set(err, AWS_ERR_CLIENT,
                               "AWS_CREDENTIAL_EXPIRATION is not an ISO 8601 time");
            }
            if (out->expiration != 0 && now >= out->expiration) {
                aws_creds_release(out);
                return err_set(err, AWS_ERR_CLIENT,
                               "the credentials in the environment have expired "
                               "(AWS_CREDENTIAL_EXPIRATION)");
            }
            return 0;
        }
    }
    /* 2. Providers that need STS or SSO calls, which come before the files in botocore: a
     * clear refusal beats silently using other credentials. */
    if (profile_get(c, "role_arn") != NULL)
        return err_set(err, AWS_ERR_CLIENT,
                       "profile '%s' assumes a role (role_arn), which sfnd does not support; "
                       "use static keys or credential_process",
                       c->profile);
    if (profile_get(c, "web_identity_token_file") != NULL ||
        (cfg_env(c, "AWS_WEB_IDENTITY_TOKEN_FILE") != NULL && cfg_env(c, "AWS_ROLE_ARN") != NULL))
        return err_set(err, AWS_ERR_CLIENT,
                       "web identity credentials are not supported; use static keys or "
                       "credential_process");
    if (profile_get(c, "sso_start_url") != NULL || profile_get(c, "sso_session") != NULL)
        return err_set(err, AWS_ERR_CLIENT,
                       "profile '%s' uses SSO, which sfnd does not support; use "
                       "credential_process (aws configure export-credentials)",
                       c->profile);
    /* 3. The shared credentials file. */
    const struct section *s = c->cred_profile;
    const char *token = section_get(s, "aws_session_token");
    if (token == NULL)
        token = section_get(s, "aws_security_token");
    int rc = static_creds(out, section_get(s, "aws_access_key_id"),
                          section_get(s, "aws_secret_access_key"), token,
                          "shared-credentials-file", "aws_access_key_id",
                          "aws_secret_access_key", err);
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    /* 4. credential_process (from either file, as botocore merges them). */
    const char *proc = profile_get(c, "credential_process");
    if (proc != NULL && proc[0] != '\0') {
        *cmd = proc;
        return 1;
    }
    /* 5. The config file's profile. */
    s = c->cfg_profile;
    token = section_get(s, "aws_session_token");
    if (token == NULL)
        token = section_get(s, "aws_security_token");
    rc = static_creds(out, section_get(s, "aws_access_key_id"),
                      section_get(s, "aws_secret_access_key"), token, "config-file",
                      "aws_access_key_id", "aws_secret_access_key", err);
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    return err_set(err, AWS_ERR_CLIENT,
                   "unable to locate credentials (looked in the environment and profile '%s' "
                   "of the shared credentials and config files)",
                   c->profile);
}

/* Credentials valid at `now` without running anything: returns them, or NULL with *cmd set
 * (credential_process must run first), or NULL with err set. */
static const struct aws_creds *creds_lookup(struct aws_config *c, time_t now, const char **cmd,
                                            struct err *err)
{
    *cmd = NULL;
    if (c->have_creds) {
        bool refreshable =
            c->creds.source != NULL && strcmp(c->creds.source, "custom-process") == 0;
        if (c->creds.expiration == 0 || now + AWS_CREDS_REFRESH_MARGIN < c->creds.expiration)
            return &c->creds;
        if (!refreshable) {
            if (now < c->creds.expiration)
                return &c->creds;
            err_set(err, AWS_ERR_CLIENT, "the %s credentials have expired", c->creds.source);
            return NULL;
        }
        /* botocore's mandatory refresh: a failure is an error, not the stale keys. */
        *cmd = profile_get(c, "credential_process");
        if (*cmd == NULL) {
            err_set(err, AWS_ERR_CLIENT, "the custom-process credentials have expired");
            return NULL;
        }
        return NULL;
    }
    struct aws_creds fresh;
    int rc = creds_resolve(c, now, &fresh, cmd, err);
    if (rc != 0)
        return NULL;
    c->creds = fresh;
    c->have_creds = true;
    return &c->creds;
}

const struct aws_creds *aws_config_creds_async(struct aws_config *c, uv_loop_t *loop,
                                               time_t now, aws_creds_ready_fn ready, void *arg,
                                               bool *pending, struct err *err)
{
    *pending = false;
    if (c->run != NULL) {
        waiter_add(c, ready, arg);
        *pending = true;
        return NULL;
    }
    const char *cmd;
    const struct aws_creds *cr = creds_lookup(c, now, &cmd, err);
    if (cr != NULL || cmd == NULL)
        return cr;
    if (run_start(c, loop, cmd, err) != 0)
        return NULL;
    waiter_add(c, ready, arg);
    *pending = true;
    return NULL;
}

struct sync_wait {
    bool fired;
    struct err err; /* the run's error, copied */
};

static void on_sync_ready(const struct aws_creds *creds, const struct err *err, void *arg)
{
    struct sync_wait *w = arg;
    w->fired = true;
    if (creds == NULL)
        err_copy(&w->err, err);
}

const struct aws_creds *aws_config_creds(struct aws_config *c, time_t now, struct err *err)
{
    assert(c->run == NULL);
    const char *cmd;
    const struct aws_creds *cr = creds_lookup(c, now, &cmd, err);
    if (cr != NULL || cmd == NULL)
        return cr;
    /* A private loop, so the caller's loop (if any) is not run behind its back. */
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0) {
        err_set(err, AWS_ERR_CLIENT, "cannot run credential_process: no event loop");
        return NULL;
    }
    struct sync_wait w = {false, ERR_INIT};
    if (run_start(c, &loop, cmd, err) == 0) {
        waiter_add(c, on_sync_ready, &w);
        while (!w.fired)
            uv_run(&loop, UV_RUN_ONCE);
    }
    uv_run(&loop, UV_RUN_DEFAULT); /* the run's close callbacks */
    int rc = uv_loop_close(&loop);
    assert(rc == 0);
    (void)rc;
    if (w.err.set) {
        err_set_raw(err, w.err.name, w.err.cause);
        err_clear(&w.err);
        return NULL;
    }
    return w.fired ? &c->creds : NULL;
}

/* ---- Endpoint resolution --------------------------------------------------------------------- */

static bool is_true(const char *v)
{
    return v != NULL && strcasecmp(v, "true") == 0;
}

/* The configured endpoint URL for `svc` (§7.3 items 1-4), or NULL. New string. */
static char *configured_endpoint(const struct aws_config *c, const struct aws_service *svc)
{
    const char *ignore = cfg_env(c, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
    if (ignore == NULL)
        ignore = profile_get(c, "ignore_configured_endpoint_urls");
    if (is_true(ignore))
        return NULL;
    struct buf name = BUF_INIT;
    buf_puts(&name, "AWS_ENDPOINT_URL_");
    service_id_key(&name, svc->service_id, true);
    const char *v = cfg_env(c, name.data);
    buf_release(&name);
    if (v == NULL)
        v = cfg_env(c, "AWS_ENDPOINT_URL");
    if (v != NULL)
        return xstrdup(v);
    const char *services = profile_get(c, "services");
    if (services != NULL && services[0] != '\0') {
        const struct section *s = NULL;
        for (size_t i = 0; i < c->config.n; i++) {
            struct words w;
            if (strncmp(c->config.s[i].name, "services", 8) != 0 ||
                words_split(&w, c->config.s[i].name) != 0)
                continue;
            if (w.n == 2 && strcmp(w.v[0], "services") == 0 && strcmp(w.v[1], services) == 0)
                s = &c->config.s[i];
            words_release(&w);
        }
        struct buf key = BUF_INIT;
        service_id_key(&key, svc->service_id, false);
        const char *nested = section_get(s, key.data);
        buf_release(&key);
        char *url = nested != NULL ? nested_get(nested, "endpoint_url") : NULL;
        if (url != NULL && url[0] != '\0')
            return url;
        free(url);
    }
    v = profile_get(c, "endpoint_url");
    if (v != NULL && v[0] != '\0')
        return xstrdup(v);
    return NULL;
}

static bool region_is_valid(const char *r)
{
    if (r[0] == '\0')
        return false;
    for (const char *p = r; *p != '\0'; p++) {
        bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || *p == '-';
        if (!ok)
            return false;
    }
    return true;
}

int aws_config_endpoint(const struct aws_config *c, const struct aws_service *svc,
                        const char *region, struct aws_endpoint *ep, struct err *err)
{
    memset(ep, 0, sizeof(*ep));
    char *url = c->endpoint_url != NULL ? xstrdup(c->endpoint_url) : configured_endpoint(c, svc);
    if (url != NULL) {
        int rc = aws_endpoint_parse(ep, url, err);
        free(url);
        return rc;
    }
    if (region == NULL)
        return err_set(err, AWS_ERR_CLIENT, "no region configured for %s (set AWS_REGION)",
                       svc->service_id);
    if (!region_is_valid(region))
        return err_set(err, AWS_ERR_CLIENT, "invalid region name '%s'", region);
    const char *suffix = strncmp(region, "cn-", 3) == 0 ? "amazonaws.com.cn" : "amazonaws.com";
    char *dflt = xasprintf("https://%s.%s.%s", svc->endpoint_prefix, region, suffix);
    int rc = aws_endpoint_parse(ep, dflt, err);
    free(dflt);
    return rc;
}
