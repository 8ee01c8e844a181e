/* server/config.c - sfnd's settings (config.h): defaults, the --config file and the setters
 * the command line shares with it.
 *
 * The file is INI-like, parsed here (sfnd.conf(5)): "# comments", "[server]" with one
 * "key = value" per line, "[credentials]" with "ACCESS_KEY_ID = SECRET" lines. Every error
 * names the file and line; a secret is never quoted in one. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "server/api.h"
#include "server/config.h"
#include "util/buf.h"
#include "util/xalloc.h"

#define LINE_MAX_BYTES 4096 /* a longer line is refused rather than cut */

void sfnd_config_init(struct sfnd_config *c)
{
    memset(c, 0, sizeof(*c));
    c->listen = xstrdup("127.0.0.1:8083");
    c->db = xstrdup("sfnd.db");
    c->durability = SFN_DURABILITY_FULL;
    c->region = xstrdup("us-east-1");
    c->account = xstrdup("123456789012");
    c->poll_ms = API_POLL_MS;
    c->auth = AUTH_NONE;
    c->limits.max_conns = SERVER_CONN_MAX;
    c->limits.request_timeout_ms = SERVER_REQUEST_TIMEOUT_MS;
    c->limits.idle_timeout_ms = SERVER_IDLE_TIMEOUT_MS;
}

void sfnd_config_release(struct sfnd_config *c)
{
    free(c->listen);
    free(c->db);
    free(c->mock_config);
    free(c->region);
    free(c->account);
    for (size_t i = 0; i < c->n_keys; i++) {
        free(c->keys[i].id);
        if (c->keys[i].secret != NULL) {
            memset(c->keys[i].secret, 0, strlen(c->keys[i].secret));
            free(c->keys[i].secret);
        }
    }
    free(c->keys);
    memset(c, 0, sizeof(*c));
}

/* A whole number of seconds in lo..hi. */
static int parse_seconds(const char *key, const char *v, long lo, long hi, int64_t *ms,
                         struct err *err)
{
    char *end = NULL;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (end == v || *end != '\0' || errno != 0 || n < lo || n > hi)
        return err_set(err, "InvalidConfig", "'%s' must be a whole number of seconds from %ld "
                       "to %ld, not '%s'", key, lo, hi, v);
    *ms = (int64_t)n * 1000;
    return 0;
}

static void replace(char **field, const char *v)
{
    free(*field);
    *field = xstrdup(v);
}

/* AWS's regions look like "us-east-1", "eu-central-2", "us-gov-west-1". */
static bool region_ok(const char *s)
{
    if (s[0] == '\0' || strlen(s) > 32 || s[0] == '-')
        return false;
    for (const char *p = s; *p != '\0'; p++) {
        if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '-')
            return false;
    }
    return true;
}

int sfnd_config_set(struct sfnd_config *c, const char *key, const char *v, struct err *err)
{
    if (strcmp(key, "listen") == 0) {
        const char *colon = strrchr(v, ':');
        if (colon == NULL || colon == v || colon[1] == '\0')
            return err_set(err, "InvalidConfig", "'listen' must be HOST:PORT, not '%s'", v);
        replace(&c->listen, v);
    } else if (strcmp(key, "db") == 0) {
        if (v[0] == '\0')
            return err_set(err, "InvalidConfig", "'db' must name a file");
        replace(&c->db, v);
    } else if (strcmp(key, "durability") == 0) {
        if (strcmp(v, "full") == 0)
            c->durability = SFN_DURABILITY_FULL;
        else if (strcmp(v, "normal") == 0)
            c->durability = SFN_DURABILITY_NORMAL;
        else if (strcmp(v, "off") == 0)
            c->durability = SFN_DURABILITY_OFF;
        else
            return err_set(err, "InvalidConfig", "'durability' must be full, normal or off, "
                           "not '%s'", v);
    } else if (strcmp(key, "mock_config") == 0) {
        replace(&c->mock_config, v);
    } else if (strcmp(key, "region") == 0) {
        if (!region_ok(v))
            return err_set(err, "InvalidConfig", "'region' must look like us-east-1, not '%s'",
                           v);
        replace(&c->region, v);
    } else if (strcmp(key, "account") == 0) {
        bool ok = strlen(v) == 12;
        for (const char *p = v; ok && *p != '\0'; p++)
            ok = isdigit((unsigned char)*p);
        if (!ok) /* api.md 1.1: ARN patterns want 12 digits */
            return err_set(err, "InvalidConfig", "'account' must be 12 digits, not '%s'", v);
        replace(&c->account, v);
    } else if (strcmp(key, "activity_poll_timeout") == 0) {
        /* api.md 8.2: AWS holds GetActivityTask up to 60 s; clients wait 65 s */
        return parse_seconds(key, v, 1, 60, &c->poll_ms, err);
    } else if (strcmp(key, "auth") == 0) {
        if (strcmp(v, "none") == 0)
            c->auth = AUTH_NONE;
        else if (strcmp(v, "sigv4") == 0)
            c->auth = AUTH_SIGV4;
        else
            return err_set(err, "InvalidConfig", "'auth' must be none or sigv4, not '%s'", v);
    } else if (strcmp(key, "max_connections") == 0) {
        char *end = NULL;
        errno = 0;
        long n = strtol(v, &end, 10);
        if (end == v || *end != '\0' || errno != 0 || n < 1 || n > 65536)
            return err_set(err, "InvalidConfig", "'max_connections' must be from 1 to 65536, "
                           "not '%s'", v);
        c->limits.max_conns = (size_t)n;
    } else if (strcmp(key, "request_timeout") == 0) {
        int64_t ms = 0;
        if (parse_seconds(key, v, 1, 3600, &ms, err) != 0)
            return -1;
        c->limits.request_timeout_ms = (uint64_t)ms;
    } else if (strcmp(key, "idle_timeout") == 0) {
        int64_t ms = 0;
        if (parse_seconds(key, v, 1, 86400, &ms, err) != 0)
            return -1;
        c->limits.idle_timeout_ms = (uint64_t)ms;
    } else {
        return err_set(err, "InvalidConfig", "unknown setting '%s'", key);
    }
    return 0;
}

static bool key_id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 128) /* IAM: access key ids are 16 to 128 characters; tests use "test" */
        return false;
    for (const char *p = s; *p != '\0'; p++) {
        if (!isalnum((unsigned char)*p))
            return false;
    }
    return true;
}

static int add_key(struct sfnd_config *c, const char *id, const char *secret, struct err *err)
{
    if (!key_id_ok(id))
        return err_set(err, "InvalidConfig", "access key id '%.40s' must be 1 to 128 letters "
                       "and digits", id);
    if (secret[0] == '\0')
        return err_set(err, "InvalidConfig", "access key id '%s' has an empty secret", id);
    for (size_t i = 0; i < c->n_keys; i++) {
        if (strcmp(c->keys[i].id, id) == 0)
            return err_set(err, "InvalidConfig", "access key id '%s' is given twice", id);
    }
    c->keys = xrealloc(c->keys, (c->n_keys + 1) * sizeof(*c->keys));
    c->keys[c->n_keys].id = xstrdup(id);
    c->keys[c->n_keys].secret = xstrdup(secret);
    c->n_keys++;
    return 0;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

enum section { SEC_NONE, SEC_SERVER, SEC_CREDENTIALS };

/* One line (NUL-terminated, no newline). */
static int parse_line(struct sfnd_config *c, char *line, enum section *sec, struct err *err)
{
    char *s = trim(line);
    if (s[0] == '\0' || s[0] == '#' || s[0] == ';')
        return 0;
    if (s[0] == '[') {
        size_t n = strlen(s);
        if (s[n - 1] != ']')
            return err_set(err, "InvalidConfig", "a section header must end with ']'");
        s[n - 1] = '\0';
        char *name = trim(s + 1);
        if (strcmp(name, "server") == 0)
            *sec = SEC_SERVER;
        else if (strcmp(name, "credentials") == 0)
            *sec = SEC_CREDENTIALS;
        else
            return err_set(err, "InvalidConfig", "unknown section '[%.64s]' (server or "
                           "credentials)", name);
        return 0;
    }
    char *eq = strchr(s, '=');
    if (eq == NULL)
        return err_set(err, "InvalidConfig", "expected 'key = value' or '[section]'");
    *eq = '\0';
    char *key = trim(s);
    char *value = trim(eq + 1);
    if (key[0] == '\0')
        return err_set(err, "InvalidConfig", "a key is missing before '='");
    if (*sec == SEC_NONE)
        return err_set(err, "InvalidConfig", "'%.64s' comes before any [section]", key);
    if (*sec == SEC_CREDENTIALS)
        return add_key(c, key, value, err);
    return sfnd_config_set(c, key, value, err);
}

int sfnd_config_load(struct sfnd_config *c, const char *path, struct err *err)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return err_set(err, "InvalidConfig", "%s: cannot open: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    enum section sec = SEC_NONE;
    int lineno = 0;
    int rc = 0;
    size_t keys_before = c->n_keys;
    for (;;) {
        ssize_t got = getline(&line, &cap, f);
        if (got < 0)
            break;
        lineno++;
        size_t n = (size_t)got;
        if (n > 0 && line[n - 1] == '\n')
            line[--n] = '\0';
        if (n > LINE_MAX_BYTES) {
            rc = err_set(err, "InvalidConfig", "%s:%d: the line is longer than %d bytes", path,
                         lineno, LINE_MAX_BYTES);
            break;
        }
        if (strlen(line) != n) {
            rc = err_set(err, "InvalidConfig", "%s:%d: the line holds a NUL byte", path,
                         lineno);
            break;
        }
        struct err e = ERR_INIT;
        if (parse_line(c, line, &sec, &e) != 0) {
            rc = err_set(err, "InvalidConfig", "%s:%d: %s", path, lineno,
                         e.cause != NULL ? e.cause : e.name);
            err_clear(&e);
            break;
        }
    }
    free(line);
    if (rc == 0 && ferror(f))
        rc = err_set(err, "InvalidConfig", "%s: cannot read: %s", path, strerror(errno));
    struct stat stt;
    if (rc == 0 && c->n_keys > keys_before && fstat(fileno(f), &stt) == 0 &&
        (stt.st_mode & (S_IRWXG | S_IRWXO)) != 0)
        fprintf(stderr, "sfnd: warning: '%s' holds secret keys and can be read by others "
                "(mode %04o): chmod 600 it\n", path, (unsigned)(stt.st_mode & 07777));
    fclose(f);
    return rc;
}

int sfnd_config_check(const struct sfnd_config *c, struct err *err)
{
    if (c->auth == AUTH_SIGV4 && c->n_keys == 0)
        return err_set(err, "InvalidConfig", "auth sigv4 needs at least one key in the "
                       "[credentials] section of the --config file");
    return 0;
}
