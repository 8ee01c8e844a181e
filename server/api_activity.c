/* server/api_activity.c - activities (api.md 8.1, 8.2): CreateActivity, DescribeActivity,
 * DeleteActivity, ListActivities (records in the store), GetActivityTask (a long poll: the
 * request is parked for up to 60 s), and the Task resource handler of activity ARNs.
 *
 * Each activity used since the start has a `struct api_activity` with two FIFO queues: the
 * tasks scheduled on it that no worker has taken, and the parked GetActivityTask requests.
 * Whenever both are non-empty the oldest task goes to the oldest poller: the engine records
 * ActivityStarted{workerName} and starts the heartbeat clock (sfn_task_started), the
 * attempt's handler state becomes {"handed": true, "worker": ...}, both committed with the
 * execution's checkpoint, and the reply carrying the token leaves after that commit. After a
 * restart the engine hands each attempt in flight back (`resume`): one handed out keeps
 * waiting for its token (still started, its clocks running on), one that was queued is
 * queued again. A Task on an activity that does not exist fails before it is scheduled
 * (`check`: States.Runtime, no activity event, api.md 7.5). */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/internal.h"
#include "util/json.h"
#include "util/xalloc.h"

#define ACTIVITY_POLLERS_MAX 1000 /* parked GetActivityTask requests per activity */

struct poller;

struct api_activity {
    char *arn;
    struct api_task *q_head, *q_tail; /* tasks no worker has taken, oldest first */
    struct poller *p_head, *p_tail;   /* parked GetActivityTask requests, oldest first */
    size_t n_pollers;
};

enum poller_state {
    POLL_WAITING, /* parked, in its activity's list, timer running */
    POLL_CLOSING, /* answered or gone; freed when its timer has closed */
};

/* One parked GetActivityTask request. */
struct poller {
    struct api *api;
    struct api_activity *act;
    struct server_req *req;   /* valid while POLL_WAITING */
    char *worker;             /* workerName, or NULL */
    uv_timer_t timer;         /* the end of the long poll */
    enum poller_state state;
    struct poller *next, *prev;
};

static void poller_set_state(struct poller *p, enum poller_state to)
{
    assert(p->state == POLL_WAITING && to == POLL_CLOSING);
    p->state = to;
}

/* ---- the in-memory queues ---- */

static struct api_activity *activity_get(struct api *api, const char *arn)
{
    struct api_activity *act = smap_get(&api->activities, arn);
    if (act == NULL) {
        act = xcalloc(1, sizeof(*act));
        act->arn = xstrdup(arn);
        smap_put(&api->activities, arn, act);
    }
    return act;
}

static void enqueue(struct api_task *at)
{
    struct api_activity *act = at->act;
    at->queued = true;
    at->next = NULL;
    at->prev = act->q_tail;
    if (act->q_tail != NULL)
        act->q_tail->next = at;
    else
        act->q_head = at;
    act->q_tail = at;
}

void api_activity_unqueue(struct api_task *at)
{
    struct api_activity *act = at->act;
    if (!at->queued)
        return;
    if (at->prev != NULL)
        at->prev->next = at->next;
    else
        act->q_head = at->next;
    if (at->next != NULL)
        at->next->prev = at->prev;
    else
        act->q_tail = at->prev;
    at->next = at->prev = NULL;
    at->queued = false;
}

static void on_poller_closed(uv_handle_t *h)
{
    struct poller *p = container_of((uv_timer_t *)h, struct poller, timer);
    free(p->worker);
    free(p);
}

/* Ends a poller: out of its activity's list, its timer closed (it is freed then); the
 * request answered with `out_new` (stolen) unless NULL (the client is gone). */
static void poller_end(struct poller *p, json_t *out_new, bool after_commit)
{
    struct api_activity *act = p->act;
    if (p->prev != NULL)
        p->prev->next = p->next;
    else
        act->p_head = p->next;
    if (p->next != NULL)
        p->next->prev = p->prev;
    else
        act->p_tail = p->prev;
    act->n_pollers--;
    poller_set_state(p, POLL_CLOSING);
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->timer, on_poller_closed);
    if (out_new != NULL) {
        char *text = json_compact(out_new);
        json_decref(out_new);
        server_reply(p->req, 200, NULL, text, strlen(text), after_commit);
        free(text);
    }
    p->req = NULL;
}

static void on_poll_timer(uv_timer_t *t)
{
    struct poller *p = container_of(t, struct poller, timer);
    poller_end(p, json_object(), false); /* api.md 8.2: no task: no taskToken */
}

static void on_poller_gone(void *arg)
{
    poller_end(arg, NULL, false);
}

/* Gives the oldest waiting tasks to the oldest waiting workers. */
static void activity_dispatch(struct api_activity *act)
{
    while (act->q_head != NULL && act->p_head != NULL) {
        struct api_task *at = act->q_head;
        struct poller *p = act->p_head;
        api_activity_unqueue(at);
        json_t *state = json_pack("{s:b}", "handed", 1);
        if (p->worker != NULL)
            json_object_set_new(state, "worker", json_string(p->worker));
        sfn_task_set_state(at->t, state); /* committed before the token leaves */
        json_decref(state);
        sfn_task_started(at->t, p->worker); /* ActivityStarted; the heartbeat clock starts */
        char *input = json_compact(sfn_task_input(at->t));
        json_t *out = json_pack("{s:s,s:s}", "taskToken", at->token, "input", input);
        free(input);
        poller_end(p, out, true);
    }
}

/* ---- the Task resource handler ---- */

/* Before scheduling: the activity must exist (api.md 7.5: a deleted activity fails the
 * state with States.Runtime and no activity event). */
static int on_activity_check(struct sfn_task *t, void *arg, struct err *err)
{
    struct api *api = arg;
    const char *arn = sfn_task_resource(t);
    int rc = sfn_store_get_activity(api->st, arn, NULL, NULL, err);
    if (rc < 0)
        return -1;
    if (rc == 1)
        return err_set(err, "States.Runtime", "The activity %s does not exist.", arn);
    return 0;
}

/* Checked in this turn (on_activity_check); the start follows the turn's commit. */
static int on_activity_start(struct sfn_task *t, void *arg, struct err *err)
{
    struct api *api = arg;
    (void)err;
    struct api_activity *act = activity_get(api, sfn_task_resource(t));
    enqueue(api_task_new(api, t, act));
    activity_dispatch(act);
    return 0;
}

static int on_activity_resume(struct sfn_task *t, void *arg, struct err *err)
{
    struct api *api = arg;
    if (sfn_task_taken(t) || json_is_true(json_object_get(sfn_task_state(t), "handed"))) {
        /* a worker has its token: it stays valid */
        api_task_new(api, t, activity_get(api, sfn_task_resource(t)));
        return 0;
    }
    if (on_activity_check(t, arg, err) != 0)
        return -1;
    return on_activity_start(t, arg, err); /* not taken yet: offered again */
}

const struct sfn_resource_ops api_activity_ops = {
    .start = on_activity_start,
    .cancel = api_task_on_release,
    .resume = on_activity_resume,
    .detach = api_task_on_release,
    .check = on_activity_check,
};

/* ---- records ---- */

struct activity_copy {
    bool found;
    int64_t id;
    char *name, *arn, *encryption;
    int64_t created_ms;
};

static int on_activity(const struct sfn_store_activity_rec *a, void *arg)
{
    struct activity_copy *ac = arg;
    ac->found = true;
    ac->id = a->id;
    ac->name = xstrdup(a->name);
    ac->arn = xstrdup(a->arn);
    ac->encryption = a->encryption != NULL ? xstrdup(a->encryption) : NULL;
    ac->created_ms = a->created_ms;
    return 0;
}

static void activity_copy_release(struct activity_copy *ac)
{
    free(ac->name);
    free(ac->arn);
    free(ac->encryption);
    memset(ac, 0, sizeof(*ac));
}

/* Checks an activity ARN and reads it: 0 with ac found, or -1 answered (InvalidArn,
 * ActivityDoesNotExist). */
static int activity_find(struct call *c, const char *arn, struct activity_copy *ac)
{
    char *scratch = NULL;
    char *parts[ARN_PARTS_MAX];
    int n = 0;
    memset(ac, 0, sizeof(*ac));
    if (api_arn_parse(c, arn, "activity", &scratch, parts, &n) != 0)
        return -1;
    free(scratch);
    struct err err = ERR_INIT;
    int rc = sfn_store_get_activity(c->api->st, arn, on_activity, ac, &err);
    if (rc < 0) {
        call_fail(c, &err);
        err_clear(&err);
        return -1;
    }
    if (rc == 1)
        return call_error(c, "ActivityDoesNotExist", "Activity Does Not Exist: '%s'", arn);
    return 0;
}

/* encryptionConfiguration (api.md Appendix A) as stored: compact JSON with sorted keys, or
 * NULL when absent. 0, or -1 answered. */
static int encryption_text(struct call *c, char **out)
{
    static const char *const types[] = {"AWS_OWNED_KEY", "CUSTOMER_MANAGED_KMS_KEY"};
    *out = NULL;
    json_t *ec = json_object_get(c->in, "encryptionConfiguration");
    if (ec == NULL)
        return 0;
    json_t *type = json_object_get(ec, "type");
    json_t *key = json_object_get(ec, "kmsKeyId");
    json_t *period = json_object_get(ec, "kmsDataKeyReusePeriodSeconds");
    if ((type != NULL && !json_is_string(type)) || (key != NULL && !json_is_string(key)) ||
        (period != NULL && !json_is_integer(period)))
        return call_error(c, "SerializationException", "cannot deserialize member "
                          "'encryptionConfiguration': a member has the wrong type");
    if (type == NULL)
        return call_error(c, "ValidationException", "1 validation error detected: Value null at "
                          "'encryptionConfiguration.type' failed to satisfy constraint: Member "
                          "must not be null");
    const char *t = json_string_value(type);
    if (strcmp(t, types[0]) != 0 && strcmp(t, types[1]) != 0)
        return call_error(c, "ValidationException", "1 validation error detected: Value '%s' at "
                          "'encryptionConfiguration.type' failed to satisfy constraint: Member "
                          "must satisfy enum value set: [%s, %s]", t, types[0], types[1]);
    if (period != NULL &&
        (json_integer_value(period) < 60 || json_integer_value(period) > 900))
        return call_error(c, "ValidationException", "1 validation error detected: Value '%lld' "
                          "at 'encryptionConfiguration.kmsDataKeyReusePeriodSeconds' failed to "
                          "satisfy constraint: Member must have value %s",
                          (long long)json_integer_value(period),
                          json_integer_value(period) < 60 ? "greater than or equal to 60"
                                                          : "less than or equal to 900");
    *out = api_json_sorted(ec);
    return 0;
}

static bool same_text(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* api.md 8.1: idempotent by name; tags of a repeat are ignored */
void op_create_activity(struct call *c)
{
    const char *name = call_str(c, "name");
    if (api_name_check(c, name) != 0)
        return;
    char *arn = xasprintf("arn:aws:states:%s:%s:activity:%s", c->api->region, c->api->account,
                          name);
    json_t *tags = json_object_get(c->in, "tags");
    char *enc = NULL;
    if (api_tags_check(c, tags, arn) != 0 || encryption_text(c, &enc) != 0) {
        free(arn);
        return;
    }
    struct activity_copy ac = {0};
    struct err err = ERR_INIT;
    int rc = sfn_store_create_activity(c->api->st, name, arn, api_now_ms(), enc, tags,
                                       on_activity, &ac, &err);
    if (rc < 0) {
        call_fail(c, &err);
    } else if (rc == 1 && !same_text(ac.encryption, enc)) {
        call_error(c, "ActivityAlreadyExists", "Activity Already Exists: '%s'", arn);
    } else {
        json_t *o = json_object();
        json_object_set_new(o, "activityArn", json_string(ac.arn));
        json_object_set_new(o, "creationDate", api_time(ac.created_ms));
        call_ok(c, o, false); /* committed by the store */
    }
    err_clear(&err);
    activity_copy_release(&ac);
    free(enc);
    free(arn);
}

void op_describe_activity(struct call *c)
{
    struct activity_copy ac;
    if (activity_find(c, call_str(c, "activityArn"), &ac) != 0)
        return;
    json_t *o = json_object();
    json_object_set_new(o, "activityArn", json_string(ac.arn));
    json_object_set_new(o, "name", json_string(ac.name));
    json_object_set_new(o, "creationDate", api_time(ac.created_ms));
    if (ac.encryption != NULL) {
        json_t *ec = json_loads(ac.encryption, 0, NULL);
        if (ec != NULL)
            json_object_set_new(o, "encryptionConfiguration", ec);
    }
    activity_copy_release(&ac);
    call_ok(c, o, false);
}

/* api.md 8.1: an unknown activity is not an error. Parked workers get no task; tasks that no
 * worker has taken fail as tasks scheduled on a missing activity do; taken ones keep their
 * tokens. */
void op_delete_activity(struct call *c)
{
    const char *arn = call_str(c, "activityArn");
    char *scratch = NULL;
    char *parts[ARN_PARTS_MAX];
    int n = 0;
    if (api_arn_parse(c, arn, "activity", &scratch, parts, &n) != 0)
        return;
    free(scratch);
    struct err err = ERR_INIT;
    if (sfn_store_delete_activity(c->api->st, arn, &err) < 0) {
        call_fail(c, &err);
        err_clear(&err);
        return;
    }
    struct api_activity *act = smap_get(&c->api->activities, arn);
    bool changed = false;
    while (act != NULL && act->p_head != NULL)
        poller_end(act->p_head, json_object(), false);
    while (act != NULL && act->q_head != NULL) {
        struct api_task *at = act->q_head;
        struct sfn_task *t = at->t;
        at->t = NULL;
        sfn_task_set_data(t, NULL);
        api_task_free(at);
        char *cause = xasprintf("The activity %s does not exist.", arn);
        sfn_task_fail(t, "States.Runtime", cause);
        free(cause);
        changed = true;
    }
    call_ok(c, json_object(), changed); /* the failed tasks are committed first */
}

struct activity_page {
    json_t *items;   /* owned */
    size_t size;     /* the page's size */
    int64_t last_id; /* of the page's last item */
};

static int on_list_activity(const struct sfn_store_activity_rec *a, void *arg)
{
    struct activity_page *p = arg;
    if (json_array_size(p->items) == p->size)
        return 1; /* the one past the page: a next page exists */
    json_t *o = json_object();
    json_object_set_new(o, "activityArn", json_string(a->arn));
    json_object_set_new(o, "name", json_string(a->name));
    json_object_set_new(o, "creationDate", api_time(a->created_ms));
    json_array_append_new(p->items, o);
    p->last_id = a->id;
    return 0;
}

/* api.md 4: creation order, paged */
void op_list_activities(struct call *c)
{
    char *after = NULL;
    if (api_token_read(c, "activities", &after) != 0)
        return;
    int64_t after_id = 0;
    if (after != NULL) {
        char *end = NULL;
        after_id = strtoll(after, &end, 10);
        bool bad = end == after || *end != '\0' || after_id <= 0;
        free(after);
        if (bad) {
            call_error(c, "InvalidToken", "Invalid Token: 'Invalid token'");
            return;
        }
    }
    size_t size = api_page_size(c);
    struct activity_page p = {json_array(), size, 0};
    struct err err = ERR_INIT;
    /* one more than the page: whether a next page exists */
    long got = sfn_store_list_activities(c->api->st, after_id, size + 1, on_list_activity, &p,
                                         &err);
    if (got < 0) {
        call_fail(c, &err);
        err_clear(&err);
        json_decref(p.items);
        return;
    }
    json_t *o = json_object();
    if ((size_t)got > size) {
        char key[32];
        snprintf(key, sizeof(key), "%lld", (long long)p.last_id);
        char *token = api_token_make(key, "activities");
        json_object_set_new(o, "nextToken", json_string(token));
        free(token);
    }
    json_object_set_new(o, "activities", p.items);
    call_ok(c, o, false);
}

/* ---- GetActivityTask ---- */

void op_get_activity_task(struct call *c)
{
    struct activity_copy ac;
    if (activity_find(c, call_str(c, "activityArn"), &ac) != 0)
        return;
    struct api_activity *act = activity_get(c->api, ac.arn);
    activity_copy_release(&ac);
    if (c->api->shutting_down) {
        call_ok(c, json_object(), false);
        return;
    }
    if (act->n_pollers >= ACTIVITY_POLLERS_MAX) {
        call_error(c, "ActivityWorkerLimitExceeded",
                   "Activity Worker Limit Exceeded: more than %d workers wait on '%s'",
                   ACTIVITY_POLLERS_MAX, act->arn);
        return;
    }
    struct poller *p = xcalloc(1, sizeof(*p));
    p->api = c->api;
    p->act = act;
    p->req = c->req;
    const char *worker = call_str(c, "workerName");
    p->worker = worker != NULL ? xstrdup(worker) : NULL;
    p->state = POLL_WAITING;
    p->prev = act->p_tail;
    if (act->p_tail != NULL)
        act->p_tail->next = p;
    else
        act->p_head = p;
    act->p_tail = p;
    act->n_pollers++;
    uv_timer_init(c->api->loop, &p->timer);
    uv_timer_start(&p->timer, on_poll_timer, (uint64_t)c->api->poll_ms, 0);
    server_req_defer(c->req, on_poller_gone, p);
    activity_dispatch(act); /* a task may be waiting already */
}

/* ---- life cycle ---- */

static void shutdown_one(const char *key, void *value, void *arg)
{
    struct api_activity *act = value;
    (void)key;
    (void)arg;
    while (act->p_head != NULL)
        poller_end(act->p_head, json_object(), false);
}

void api_activity_shutdown(struct api *api)
{
    smap_each(&api->activities, shutdown_one, NULL);
}

static void free_one(const char *key, void *value, void *arg)
{
    struct api_activity *act = value;
    (void)key;
    (void)arg;
    free(act->arn);
    free(act);
}

void api_activity_release(struct api *api)
{
    smap_each(&api->activities, free_one, NULL);
}
