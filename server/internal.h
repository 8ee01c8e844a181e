/* server/internal.h - the Step Functions API of sfnd, shared by its files: api.c (dispatch
 * of AWS JSON 1.0 requests, member validation with AWS's messages, errors, ARNs, names,
 * paging tokens), api_machine.c (state machine operations), api_exec.c (execution
 * operations), map.c (a string-keyed table). */
#ifndef SFN_SERVER_INTERNAL_H
#define SFN_SERVER_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/api.h"
#include "server/server.h"
#include "sfn.h"

/* ---- map.c: string keys (copied) to pointers (not owned) ---- */

struct smap_entry;
struct smap {
    struct smap_entry **slots; /* chains */
    size_t n_slots;
    size_t n;
};
void smap_init(struct smap *m);
void smap_release(struct smap *m);
void *smap_get(const struct smap *m, const char *key);
/* Sets key to value (replacing any previous value). */
void smap_put(struct smap *m, const char *key, void *value);
/* Removes key; returns its value or NULL. */
void *smap_del(struct smap *m, const char *key);
/* Calls fn for every entry (the map must not change meanwhile). */
void smap_each(const struct smap *m, void (*fn)(const char *key, void *value, void *arg),
               void *arg);

/* ---- the API ---- */

/* A compiled state machine kept for StartExecution (its current revision). */
struct api_machine {
    struct sfn_machine *m;  /* our reference */
    int64_t revision_id;    /* the store's revision it was compiled from */
    char *role_arn;         /* owned */
};

struct api {
    struct sfn_engine *eng;
    struct sfn_store *st;
    struct server *srv;
    const char *region;     /* borrowed: the engine's options */
    const char *account;
    struct smap machines;   /* name -> struct api_machine (owned) */
    struct smap running;    /* execution ARN -> struct sfn_execution (the engine's), until
                               its on_done has freed it */
};

/* One request being answered. */
struct call {
    struct api *api;
    struct server_req *req;
    json_t *in;             /* the request object (owned) */
};

/* Answers with `out_new` (stolen) as the 200 body; with `after_commit` once the engine has
 * committed the change it reports. */
void call_ok(struct call *c, json_t *out_new, bool after_commit);
/* Answers an AWS error (HTTP 400) with its code and message. Returns -1. */
int call_error(struct call *c, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Answers an internal failure (HTTP 500) from err. Returns -1. */
int call_fail(struct call *c, const struct err *err);

/* Request members (borrowed; NULL when absent or JSON null). */
const char *call_str(struct call *c, const char *member);
/* The integer member, or `def` when absent. */
int64_t call_int(struct call *c, const char *member, int64_t def);
bool call_bool(struct call *c, const char *member, bool def);

/* ARNs: 0 when `arn` names a resource of type `type` ("stateMachine", "execution"); else
 * answers InvalidArn and returns -1. parts[] gets the ':'-separated fields (borrowed from
 * a copy in `scratch`, which the caller frees). */
#define ARN_PARTS_MAX 10
int api_arn_parse(struct call *c, const char *arn, const char *type, char **scratch,
                  char *parts[ARN_PARTS_MAX], int *n_parts);
/* AWS's name rules (api.md 2.1): 0, or answers InvalidName and returns -1. */
int api_name_check(struct call *c, const char *name);

/* Paging (api.md 4): the page size asked for (maxResults, 0 = 100). */
size_t api_page_size(struct call *c);
/* A nextToken for position `key` of a listing with arguments `filter`. New string. */
char *api_token_make(const char *key, const char *filter);
/* Reads the request's nextToken: 0 with *key_out NULL (no token) or the position (free()
 * it); -1 after answering InvalidToken (undecodable, or issued for other arguments). */
int api_token_read(struct call *c, const char *filter, char **key_out);

/* Epoch ms as AWS's timestamp (seconds with a fraction). New reference. */
json_t *api_time(int64_t ms);

/* api_machine.c */
void op_create_state_machine(struct call *c);
void op_describe_state_machine(struct call *c);
void op_list_state_machines(struct call *c);
void op_validate_definition(struct call *c);
/* The compiled current revision of machine `arn` for StartExecution: 0 with *out (cached,
 * borrowed until the next call); 1 when there is no such machine; -1 after answering an
 * error. */
int api_machine_get(struct call *c, const char *arn, struct api_machine **out);
/* Frees the cache entries (smap_each callback). */
void api_machine_drop(const char *key, void *value, void *arg);

/* api_exec.c */
void op_start_execution(struct call *c);
void op_describe_execution(struct call *c);
void op_stop_execution(struct call *c);
void op_list_executions(struct call *c);
void op_get_execution_history(struct call *c);

#endif
