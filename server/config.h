/* server/config.h - sfnd's settings: defaults, the --config file (sfnd.conf(5): INI-like
 * "key = value" lines in [server] and [credentials] sections) and the command line, which
 * wins over the file. Also the SigV4 check of requests (auth.c) that the credentials serve. */
#ifndef SFN_SERVER_CONFIG_H
#define SFN_SERVER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "server/server.h"
#include "sfn.h"
#include "util/err.h"

enum auth_mode {
    AUTH_NONE,  /* signatures are not looked at (the default) */
    AUTH_SIGV4, /* every request must carry a valid SigV4 signature of a configured key */
};

/* One access key id and its secret. */
struct auth_key {
    char *id;     /* owned */
    char *secret; /* owned; never printed */
};

struct sfnd_config {
    char *listen;                   /* owned: "HOST:PORT" */
    char *db;                       /* owned: the SQLite file */
    char *mock_config;              /* owned: --mock-config FILE, or NULL */
    enum sfn_durability durability;
    char *region;                   /* owned: for ARNs and the SigV4 scope */
    char *account;                  /* owned: 12 digits, for ARNs */
    int64_t poll_ms;                /* GetActivityTask's long poll, ms */
    enum auth_mode auth;
    struct auth_key *keys;          /* owned: [credentials] */
    size_t n_keys;
    struct server_limits limits;    /* connection cap and timeouts */
};

/* The defaults: 127.0.0.1:8083, sfnd.db, full, us-east-1, 123456789012, 60 s, no auth. */
void sfnd_config_init(struct sfnd_config *c);
void sfnd_config_release(struct sfnd_config *c);
/* Reads `path` over `c` (its settings replace those in c). 0, or -1 with err's cause
 * "FILE:LINE: what is wrong" (a cause never holds a secret). Warns on stderr when the file
 * holds credentials and can be read by its group or others. */
int sfnd_config_load(struct sfnd_config *c, const char *path, struct err *err);
/* Sets one [server] setting from its text, as the file and the command line spell it
 * ("durability", "normal"). 0, or -1 with err set (no location). */
int sfnd_config_set(struct sfnd_config *c, const char *key, const char *value, struct err *err);
/* Checks what only the whole configuration can tell (sigv4 without keys). 0 or -1. */
int sfnd_config_check(const struct sfnd_config *c, struct err *err);

/* ---- auth.c: SigV4 verification ---- */

struct auth;

/* How a request was refused: AWS's status, error code and message. */
struct auth_fail {
    int status;          /* 400 or 403 */
    const char *code;    /* static: "InvalidSignatureException", ... */
    char message[512];
};

/* A verifier over the keys of `c` (copied) for the service signing name "states" in
 * c->region. */
struct auth *auth_new(const struct sfnd_config *c);
void auth_free(struct auth *a);
/* Verifies the request's Authorization header at wall-clock time `now` (Unix seconds). 0 when
 * it is signed by a configured key; -1 with `out` filled otherwise. */
int auth_check(const struct auth *a, const struct server_req *req, time_t now,
               struct auth_fail *out);

#endif
