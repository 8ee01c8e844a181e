/* integrations/integrations.c - the framework of the optimized service integrations: registers
 * each service's resources on an engine (include/sfn_integrations.h) and runs their tasks on
 * the engine's loop through the one seam of include/sfn.h (start, cancel, resume, detach).
 *
 * A task (struct itask) makes the action's call; request-response ends there. A .sync task
 * then keeps the job's ids with sfn_task_set_state (committed before its first poll leaves),
 * records TaskSubmitted, and polls at the service's cadence until a terminal state
 * (integrations.md §1.4-1.5). Throttled or failing polls slow it down; throttling never
 * fails it. Aborted or timed out, it calls the service's cancel, fire-and-forget (§1.6);
 * detached (a shutdown that will be resumed), it only lets go. Resumed after a restart, it
 * polls the kept job, or, when the call may not have been made, makes it again with the same
 * idempotency token so the service answers with the first job (§1.9); for an API without one
 * it first looks for the job (reconcile), and aborted during that lookup it lets the lookup
 * finish and cancels what it finds, never making the call. */
#include <assert.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "asl/asl.h"
#include "integrations/integrations.h"
#include "util/json.h"
#include "util/xalloc.h"

#define DEFAULT_MAX_POLL_DELAY_MS 300000u /* a throttled service is asked at most this rarely */
#define DEFAULT_MAX_POLL_FAILURES 10u
#define MAX_SLOW_SHIFT 16 /* the doubling of the poll interval stops counting here */

static const struct integ_service *const services[] = {&integ_athena, &integ_emr,
                                                       &integ_emr_containers,
                                                       &integ_emr_serverless};
#define N_SERVICES ARRAY_LEN(services)

/* Partitions of Step Functions resource ARNs (§1.1). */
static const char *const partitions[] = {"aws", "aws-cn", "aws-us-gov"};

/* Throttling error codes (§6.3): a poll refused with one of these only slows down. */
static const char *const throttle_codes[] = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
    "EKSRequestThrottledException",
    NULL,
};

/* One service on one engine: the `arg` of its resource handlers. */
struct itask;

struct svc_reg {
    struct itask *waiting;           /* .sync tasks of batched actions whose poll timer is
                                        armed (a list through itask.wnext) */
    struct sfn_integrations *in;
    const struct integ_service *svc;
    struct sfn_poll_cadence cadence; /* resolved */
    struct aws_endpoint ep;          /* resolved at its first task */
    bool have_ep;
};

struct sfn_integrations {
    struct sfn_engine *eng;
    uv_loop_t *loop;
    char *profile;          /* owned, or NULL */
    char *region;           /* owned, or NULL */
    char *endpoint_url;     /* owned, or NULL */
    unsigned max_delay_ms;  /* cap of a slowed-down poll interval */
    unsigned max_failures;  /* consecutive failing polls before the task fails */
    struct svc_reg regs[N_SERVICES];
    struct aws_config *cfg; /* NULL until the first task */
    struct aws_http *http;  /* NULL until the first task */
    bool curl_inited;       /* curl_global_init was called (paired in the free when safe) */
    bool closing;           /* sfn_integrations_free was called */
    size_t live;            /* tasks not yet freed: the registry is freed after the last */
};

enum itask_state {
    IT_LOOKING,    /* a lookup's call (resolve or reconcile) is in flight, or its retry timer
                      is armed */
    IT_CALLING,    /* the action's call is in flight */
    IT_WAITING,    /* .sync: the poll timer is armed */
    IT_POLLING,    /* .sync: a poll is in flight */
    IT_LEFT,       /* the engine let go; the callback of an abandoned call is awaited, or
                      an aborted reconcile lookup goes on to find the job to cancel */
    IT_CANCELLING, /* the engine let go of an aborted job; its cancel call is in flight */
    IT_CLOSING,    /* the timer is closing; freed in its close callback */
};

/* One attempt of one Task state. */
struct itask {
    struct svc_reg *reg;
    const struct integ_action *act;
    bool sync;                  /* the .sync pattern */
    struct sfn_task *t;         /* NULL once the engine let go (done, cancelled, detached) */
    char token[65];             /* the attempt's idempotency token (integ_token) */
    enum itask_state state;
    struct aws_http_call *call; /* the call in flight, or NULL */
    uv_timer_t timer;           /* the next poll */
    json_t *params;             /* the task's effective input (own reference) */
    json_t *result;             /* .sync: the call's result (own reference), or NULL */
    json_t *job;                /* .sync: the members naming the job (own reference), or NULL */
    int64_t since_ms;           /* .sync: epoch ms the wait began (kept across restarts) */
    unsigned slow;              /* throttling: the next poll waits 2^slow intervals */
    unsigned failures;          /* consecutive polls that failed on a server or network error */
    bool cancel_job;            /* aborted: cancel the job once its ids are known */
    /* lookups (resolve before the call, reconcile after a restart) */
    const struct integ_lookup *lk; /* the lookup under way, or NULL */
    json_t *lk_intent;          /* the intent recorded before the first call (own), or NULL */
    json_t *lk_marker;          /* the next page's Marker (own), or NULL */
    json_t *lk_check;           /* requests about candidates (own array), or NULL */
    size_t lk_next;             /* the next candidate to ask about */
    unsigned lk_pages;          /* pages read so far */
    /* coalesced polls (integ_batch) */
    struct itask *wnext, *wprev; /* in reg->waiting */
    bool in_waiting;             /* linked in reg->waiting */
    struct batch *batch;         /* the shared call this task waits on, or NULL */
    bool final_poll;             /* the batch saw a terminal state: the next poll is this
                                    task's own, at once */
};

#define BATCH_MAX 64 /* tasks one shared call answers (an API page is at least 50 items) */

/* One call polling several tasks' jobs (integ_batch); freed when it answers. */
struct batch {
    size_t n;
    struct itask *members[BATCH_MAX]; /* NULL: let go while the call was in flight */
};

static void waiting_add(struct itask *it)
{
    struct svc_reg *r = it->reg;
    if (it->in_waiting)
        return;
    it->wprev = NULL;
    it->wnext = r->waiting;
    if (r->waiting != NULL)
        r->waiting->wprev = it;
    r->waiting = it;
    it->in_waiting = true;
}

static void waiting_remove(struct itask *it)
{
    if (!it->in_waiting)
        return;
    if (it->wprev != NULL)
        it->wprev->wnext = it->wnext;
    else
        it->reg->waiting = it->wnext;
    if (it->wnext != NULL)
        it->wnext->wprev = it->wprev;
    it->wnext = it->wprev = NULL;
    it->in_waiting = false;
}

static void itask_set_state(struct itask *it, enum itask_state to)
{
    assert(it->state != IT_CLOSING);             /* nothing follows closing */
    assert(to != IT_CANCELLING || it->t == NULL); /* only a job the engine let go of */
    assert((to == IT_LEFT || to == IT_CANCELLING) == (it->t == NULL) || to == IT_CLOSING);
    it->state = to;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void registry_maybe_free(struct sfn_integrations *in)
{
    if (!in->closing || in->live > 0)
        return;
    for (size_t i = 0; i < N_SERVICES; i++) {
        if (in->regs[i].have_ep)
            aws_endpoint_release(&in->regs[i].ep);
    }
    free(in->profile);
    free(in->region);
    free(in->endpoint_url);
    free(in);
}

static void on_itask_closed(uv_handle_t *h)
{
    struct itask *it = container_of((uv_timer_t *)h, struct itask, timer);
    struct sfn_integrations *in = it->reg->in;
    json_decref(it->params);
    json_decref(it->result);
    json_decref(it->job);
    json_decref(it->lk_intent);
    json_decref(it->lk_marker);
    json_decref(it->lk_check);
    free(it);
    in->live--;
    registry_maybe_free(in);
}

static void itask_close(struct itask *it)
{
    waiting_remove(it);
    if (it->t != NULL)
        sfn_task_set_data(it->t, NULL);
    it->t = NULL;
    itask_set_state(it, IT_CLOSING);
    uv_close((uv_handle_t *)&it->timer, on_itask_closed);
}

/* Ends the attempt with `err` (cleared) and closes the task. */
static void itask_fail(struct itask *it, struct err *err)
{
    struct sfn_task *t = it->t;
    it->t = NULL;
    sfn_task_set_data(t, NULL);
    sfn_task_fail(t, err->name, err->cause);
    err_clear(err);
    itask_close(it);
}

/* Ends the attempt with `result` (borrowed) and closes the task. */
static void itask_succeed(struct itask *it, json_t *result)
{
    struct sfn_task *t = it->t;
    it->t = NULL;
    sfn_task_set_data(t, NULL);
    sfn_task_succeed(t, result);
    itask_close(it);
}

/* ---- AWS, set up at the first task ---- */

static int client_error(const struct integ_service *s, struct err *src, struct err *err)
{
    char name[ERR_NAME_MAX];
    snprintf(name, sizeof(name), "%s.%s", s->error_prefix, AWS_ERR_CLIENT);
    err_set(err, name, "%s", src->cause != NULL ? src->cause : src->name);
    err_clear(src);
    return -1;
}

/* SFN_RATE_<env>: "RATE[,BURST[,IN_FLIGHT]]" (requests/s or "unlimited", token-bucket size,
 * requests in flight) over the transport's default quota of `r`'s service in the configured
 * region (man/sfn-aws.7, RATE LIMITS). Returns 0, or -1 with err set (a bad value). */
static int rate_env(struct svc_reg *r, struct err *err)
{
    char name[64];
    snprintf(name, sizeof(name), "SFN_RATE_%s", r->svc->env);
    const char *v = getenv(name);
    if (v == NULL || v[0] == '\0')
        return 0;
    struct aws_http_limits lim = {0, 0, 0};
    char *end;
    if (strncmp(v, "unlimited", 9) == 0) {
        lim.rate = AWS_HTTP_UNLIMITED;
        end = (char *)v + 9;
    } else {
        lim.rate = strtod(v, &end);
        if (end == v || !(lim.rate > 0))
            goto bad;
    }
    if (*end == ',') {
        const char *p = end + 1;
        lim.burst = strtod(p, &end);
        if (end == p || !(lim.burst >= 1))
            goto bad;
    }
    if (*end == ',') {
        const char *p = end + 1;
        unsigned long n = strtoul(p, &end, 10);
        if (end == p || n == 0 || n > 100000)
            goto bad;
        lim.max_concurrent = (unsigned)n;
    }
    if (*end != '\0')
        goto bad;
    aws_http_limits_set(r->in->http, r->svc->aws, aws_config_region(r->in->cfg), &lim);
    return 0;
bad:
    return err_set(err, AWS_ERR_CLIENT,
                   "%s must be RATE[,BURST[,IN_FLIGHT]] (requests per second or 'unlimited', "
                   "a bucket of at least 1, a positive count), not '%s'",
                   name, v);
}

/* The AWS configuration and client, and the endpoint of `r`'s service. Returns 0, or -1 with
 * err set (<prefix>.SdkClientException: unreadable configuration, no region, a bad
 * endpoint). */
static int aws_setup(struct svc_reg *r, struct err *err)
{
    struct sfn_integrations *in = r->in;
    struct err e = ERR_INIT;
    if (in->http == NULL) {
        if (!in->curl_inited) {
            curl_global_init(CURL_GLOBAL_DEFAULT);
            in->curl_inited = true;
        }
        struct aws_env env = {aws_env_getenv, NULL, getenv("HOME")};
        struct aws_config_opts co = {in->profile, in->region, in->endpoint_url, 0};
        struct aws_config *cfg = aws_config_new(&env, &co, &e);
        if (cfg == NULL)
            return client_error(r->svc, &e, err);
        if (aws_config_region(cfg) == NULL) {
            aws_config_free(cfg);
            err_set(&e, AWS_ERR_CLIENT,
                    "no region is configured (set AWS_REGION, AWS_DEFAULT_REGION or the "
                    "profile's region)");
            return client_error(r->svc, &e, err);
        }
        struct aws_http_opts ho = {0};
        ho.config = cfg;
        struct aws_http *http = aws_http_new(in->loop, &ho, &e);
        if (http == NULL) {
            aws_config_free(cfg);
            return client_error(r->svc, &e, err);
        }
        in->cfg = cfg;
        in->http = http;
    }
    if (!r->have_ep) {
        if (rate_env(r, &e) != 0)
            return client_error(r->svc, &e, err);
        if (aws_config_endpoint(in->cfg, r->svc->aws, aws_config_region(in->cfg), &r->ep, &e) !=
            0)
            return client_error(r->svc, &e, err);
        r->have_ep = true;
    }
    return 0;
}

/* Sends `op` with wire parameters `wire` (borrowed) for `it`; `done` fires later. Returns 0,
 * or -1 with err set (then `done` never fires). */
static int itask_send(struct itask *it, const struct integ_op *op, json_t *wire,
                      aws_http_done_fn done, struct err *err)
{
    struct svc_reg *r = it->reg;
    if (r->in->closing)
        return err_set(err, ASL_ERR_RUNTIME, "the integrations are closed");
    struct aws_request req;
    if (integ_request_build(r->svc, op, wire, r->ep.host, &req, err) != 0)
        return -1;
    struct err e = ERR_INIT;
    it->call = aws_http_send(r->in->http, r->svc->aws, aws_config_region(r->in->cfg), &r->ep,
                             &req, done, it, &e);
    if (it->call == NULL)
        return client_error(r->svc, &e, err);
    return 0;
}

/* The wire parameters of `op` about the job (new reference), or NULL with err set. */
static json_t *job_wire(struct itask *it, const struct integ_op *op, struct err *err)
{
    return integ_op_wire(it->reg->svc, op, it->job, NULL, err);
}

/* ---- cancel ---- */

static void on_cancel_done(struct aws_http_call *call, const struct aws_http_result *res,
                           void *arg)
{
    struct itask *it = arg;
    (void)call;
    (void)res; /* fire-and-forget (§1.6): its failure is not the execution's */
    it->call = NULL;
    itask_close(it);
}

/* The engine has let go of an aborted .sync job: cancel it, then close. */
static void itask_cancel_job(struct itask *it)
{
    struct err err = ERR_INIT;
    json_t *wire = job_wire(it, it->act->cancel, &err);
    int rc = wire != NULL ? itask_send(it, it->act->cancel, wire, on_cancel_done, &err) : -1;
    json_decref(wire);
    err_clear(&err);
    if (rc != 0) {
        itask_close(it);
        return;
    }
    itask_set_state(it, IT_CANCELLING);
}

/* After the engine let go and the call in flight ended: cancel the job or close. */
static void itask_left(struct itask *it)
{
    if (it->cancel_job && it->job != NULL)
        itask_cancel_job(it);
    else
        itask_close(it);
}

/* ---- polling ---- */

static void poll_send(struct itask *it);

static void on_poll_timer(uv_timer_t *t)
{
    struct itask *it = container_of(t, struct itask, timer);
    poll_send(it);
}

/* Arms the next poll: the cadence's interval for the time waited so far, doubled for each
 * level of slowing down, capped (never below the interval itself). */
static void poll_schedule(struct itask *it)
{
    const struct sfn_poll_cadence *c = &it->reg->cadence;
    int64_t waited = wall_ms() - it->since_ms;
    uint64_t base = waited < (int64_t)c->first_for_ms ? c->first_ms : c->then_ms;
    uint64_t delay = base << (it->slow < MAX_SLOW_SHIFT ? it->slow : MAX_SLOW_SHIFT);
    uint64_t cap = it->reg->in->max_delay_ms;
    if (delay > cap)
        delay = cap > base ? cap : base;
    itask_set_state(it, IT_WAITING);
    uv_timer_start(&it->timer, on_poll_timer, delay, 0);
    if (it->act->batch != NULL)
        waiting_add(it);
}

/* The .sync result from the last poll's answer (`final`, borrowed, may be NULL): that answer
 * (final_result), a member of it (final_path), the call's result with its members
 * (merge_final), or the call's result. New reference. */
static json_t *sync_result(struct itask *it, json_t *final)
{
    const struct integ_action *a = it->act;
    if (final != NULL && a->final_path != NULL) {
        json_t *m = integ_path_get(final, a->final_path);
        if (json_is_object(m))
            return json_incref(m);
    }
    if (final != NULL && a->merge_final) {
        json_t *out = json_is_object(it->result) ? json_copy(it->result) : json_object();
        for (const char *const *n = a->sync_echo; n != NULL && *n != NULL; n++) {
            json_t *v = json_object_get(it->job, *n);
            if (v != NULL)
                json_object_set(out, *n, v);
        }
        json_object_update(out, final);
        return out;
    }
    if (a->final_result && final != NULL)
        return json_incref(final);
    return json_incref(it->result != NULL ? it->result : final);
}

/* The cause of a .sync job that ended in a failure state (§1.5): the result's shape where
 * the result is made from the last answer (`reply`, borrowed), else that answer. New
 * string. */
static char *sync_cause(struct itask *it, json_t *reply)
{
    const struct integ_action *a = it->act;
    json_t *doc = a->merge_final || a->final_path != NULL ? sync_result(it, reply)
                                                          : json_incref(reply);
    char *cause = json_compact(doc);
    json_decref(doc);
    return cause;
}

static bool is_throttle(const struct aws_http_result *res)
{
    return res->status == 429 || integ_list_has(throttle_codes, res->error_code);
}

/* A poll failed. Returns true when the task goes on (slowed down). */
static bool poll_failed(struct itask *it, const struct aws_http_result *res)
{
    bool transient = res->error_code == NULL || aws_http_retryable(res->status, res->error_code);
    if (!transient)
        return false;
    if (!is_throttle(res) && ++it->failures >= it->reg->in->max_failures)
        return false;
    it->slow++;
    poll_schedule(it);
    return true;
}

/* One poll answered (`reply`, results' naming, borrowed) or failed (`res`): ends the task or
 * schedules the next poll. */
static void poll_answered(struct itask *it, const struct aws_http_result *res, json_t *reply);

static void on_poll_done(struct aws_http_call *call, const struct aws_http_result *res,
                         void *arg)
{
    struct itask *it = arg;
    (void)call;
    it->call = NULL;
    if (it->t == NULL) {
        itask_left(it);
        return;
    }
    json_t *reply = NULL;
    if (!res->err->set) {
        json_t *doc = json_loadb(res->body, res->body_len, 0, NULL); /* new reference */
        reply = integ_reply_from_wire(it->reg->svc, doc);
        json_decref(doc);
    }
    poll_answered(it, res, reply);
    json_decref(reply);
}

static void poll_answered(struct itask *it, const struct aws_http_result *res, json_t *reply)
{
    const struct integ_service *s = it->reg->svc;
    struct err err = ERR_INIT;
    if (reply == NULL) {
        if (it->act->gone_code != NULL && res->error_code != NULL &&
            strcmp(res->error_code, it->act->gone_code) == 0) {
            json_t *result = sync_result(it, NULL);
            itask_succeed(it, result);
            json_decref(result);
            return;
        }
        if (poll_failed(it, res))
            return;
        integ_error_from_result(s, res, &err);
        itask_fail(it, &err);
        return;
    }
    it->failures = 0;
    if (res->attempts > 1)
        it->slow++; /* answered after retries: the service is under pressure */
    else if (it->slow > 0)
        it->slow--;
    const char *state = json_string_value(integ_path_get(reply, it->act->state_path));
    if (integ_list_has(it->act->succeeded, state)) {
        json_t *result = sync_result(it, reply);
        itask_succeed(it, result);
        json_decref(result);
    } else if (integ_list_has(it->act->failed, state)) {
        /* §1.5: States.TaskFailed, the last answer (in the result's shape) as the cause */
        char *cause = sync_cause(it, reply);
        err_set_raw(&err, ASL_ERR_TASK_FAILED, cause);
        free(cause);
        itask_fail(it, &err);
    } else {
        poll_schedule(it);
    }
}

/* ---- coalesced polls (integ_batch) ---- */

static void on_batch_done(struct aws_http_call *call, const struct aws_http_result *res,
                          void *arg)
{
    struct batch *b = arg;
    (void)call;
    json_t *reply = NULL;
    json_t *items = NULL;
    for (size_t i = 0; i < b->n; i++) {
        struct itask *m = b->members[i];
        if (m == NULL)
            continue;
        m->batch = NULL;
        if (m->t == NULL) {
            itask_left(m);
            continue;
        }
        const struct integ_batch *bt = m->act->batch;
        if (reply == NULL && !res->err->set) {
            json_t *doc = json_loadb(res->body, res->body_len, 0, NULL); /* new reference */
            reply = integ_reply_from_wire(m->reg->svc, doc != NULL ? doc : json_object());
            json_decref(doc);
            items = json_object_get(reply, bt->items);
        }
        if (res->err->set) {
            /* asked on its own next time: an error of its own fails it, this one does not */
            m->final_poll = true;
            if (is_throttle(res))
                m->slow++;
            poll_schedule(m);
            continue;
        }
        const char *id = json_string_value(json_object_get(m->job, bt->id));
        json_t *item = NULL;
        size_t k;
        json_t *e;
        json_array_foreach(items, k, e) {
            const char *eid = json_string_value(json_object_get(e, bt->item_id));
            if (eid != NULL && id != NULL && strcmp(eid, id) == 0)
                item = e;
        }
        json_t *as_poll = json_pack("{s:O?}", bt->wrap, item);
        const char *state = json_string_value(integ_path_get(as_poll, m->act->state_path));
        json_decref(as_poll);
        if (item == NULL || integ_list_has(m->act->succeeded, state) ||
            integ_list_has(m->act->failed, state)) {
            /* ended (or not listed): its own poll, at once, gives the final answer */
            m->final_poll = true;
            itask_set_state(m, IT_WAITING);
            uv_timer_start(&m->timer, on_poll_timer, 0, 0);
        } else {
            m->failures = 0;
            if (m->slow > 0)
                m->slow--;
            poll_schedule(m);
        }
    }
    json_decref(reply);
    free(b);
}

/* Polls `it` together with the waiting tasks of its group, in one call. Returns false (nothing
 * done) when no other task waits on the group or the call cannot be sent. */
static bool batch_send(struct itask *it)
{
    const struct integ_batch *bt = it->act->batch;
    json_t *group = json_object_get(it->job, bt->group);
    struct itask *with[BATCH_MAX];
    size_t n = 0;
    with[n++] = it;
    for (struct itask *o = it->reg->waiting; o != NULL && n < bt->max && n < BATCH_MAX;
         o = o->wnext) {
        if (o != it && o->act == it->act && !o->final_poll &&
            json_equal(json_object_get(o->job, bt->group), group))
            with[n++] = o;
    }
    if (n < 2)
        return false;
    json_t *ids = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append(ids, json_object_get(with[i]->job, bt->id));
    json_t *req = json_pack("{s:O, s:o}", bt->group, group, bt->ids, ids);
    struct err err = ERR_INIT;
    struct svc_reg *r = it->reg;
    json_t *wire = integ_op_wire(r->svc, bt->op, req, NULL, &err);
    json_decref(req);
    struct aws_request rq;
    if (wire == NULL || r->in->closing ||
        integ_request_build(r->svc, bt->op, wire, r->ep.host, &rq, &err) != 0) {
        json_decref(wire);
        err_clear(&err);
        return false;
    }
    json_decref(wire);
    struct batch *b = xcalloc(1, sizeof(*b));
    struct aws_http_call *call = aws_http_send(r->in->http, r->svc->aws,
                                               aws_config_region(r->in->cfg), &r->ep, &rq,
                                               on_batch_done, b, &err);
    if (call == NULL) {
        free(b);
        err_clear(&err);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        struct itask *m = with[i];
        waiting_remove(m);
        uv_timer_stop(&m->timer);
        m->batch = b;
        itask_set_state(m, IT_POLLING);
        b->members[b->n++] = m;
    }
    return true;
}

/* Takes `it` out of the shared call it waits on (the call goes on for the others). */
static void batch_leave(struct itask *it)
{
    struct batch *b = it->batch;
    for (size_t i = 0; i < b->n; i++) {
        if (b->members[i] == it)
            b->members[i] = NULL;
    }
    it->batch = NULL;
}

static void poll_send(struct itask *it)
{
    waiting_remove(it);
    if (it->act->batch != NULL && !it->final_poll && batch_send(it))
        return;
    it->final_poll = false;
    struct err err = ERR_INIT;
    json_t *wire = job_wire(it, it->act->poll, &err);
    int rc = wire != NULL ? itask_send(it, it->act->poll, wire, on_poll_done, &err) : -1;
    json_decref(wire);
    if (rc != 0) {
        itask_fail(it, &err);
        return;
    }
    itask_set_state(it, IT_POLLING);
}

/* ---- the action's call ---- */

/* Sets the members `names` of `from`, else of `params` (both borrowed, may be NULL), in `to`
 * (which takes its own references). Returns whether all were there. */
static bool pick(json_t *to, const char *const *names, json_t *from, json_t *params)
{
    bool all = true;
    for (const char *const *n = names; n != NULL && *n != NULL; n++) {
        json_t *v = json_object_get(from, *n);
        if (v == NULL)
            v = json_object_get(params, *n);
        if (v != NULL)
            json_object_set(to, *n, v);
        else
            all = false;
    }
    return all;
}

/* The action's result from its answer (borrowed, results' naming). New reference. */
static json_t *action_result(struct itask *it, json_t *reply)
{
    const struct integ_action *a = it->act;
    json_t *out;
    if (a->reshape != NULL) {
        out = a->reshape(reply);
    } else if (a->result == NULL) {
        out = json_is_object(reply) ? json_copy(reply) : json_object();
    } else {
        out = json_object();
        pick(out, a->result, reply, NULL);
    }
    pick(out, a->echo, it->params, NULL);
    return out;
}

static void call_answered(struct itask *it, json_t *reply, const struct aws_http_result *res);

static void on_call_done(struct aws_http_call *call, const struct aws_http_result *res,
                         void *arg)
{
    struct itask *it = arg;
    (void)call;
    it->call = NULL;
    json_t *reply = NULL;
    if (!res->err->set) {
        json_t *doc = res->body_len > 0 ? json_loadb(res->body, res->body_len, 0, NULL) : NULL;
        reply = integ_reply_from_wire(it->reg->svc, doc != NULL ? doc : json_object());
        json_decref(doc);
    }
    call_answered(it, reply, res);
    json_decref(reply);
}

/* The call answered `reply` (results' naming, borrowed), or failed with `res` (reply NULL);
 * a reconciled job comes here too, with the answer the first call had (res NULL). */
static void call_answered(struct itask *it, json_t *reply, const struct aws_http_result *res)
{
    const struct integ_service *s = it->reg->svc;
    json_t *result = NULL;
    if (reply != NULL) {
        result = action_result(it, reply);
        if (it->sync) {
            it->job = json_object();
            if (!pick(it->job, it->act->job, result, it->params)) {
                json_decref(it->job);
                it->job = NULL;
            }
        }
    }
    if (it->t == NULL) { /* let go while the call was in flight */
        json_decref(result);
        itask_left(it);
        return;
    }
    struct err err = ERR_INIT;
    if (reply == NULL) {
        integ_error_from_result(s, res, &err);
        itask_fail(it, &err);
        return;
    }
    if (!it->sync) {
        itask_succeed(it, result);
        json_decref(result);
        return;
    }
    if (it->job == NULL) {
        err_set(&err, ASL_ERR_RUNTIME, "%s %s answered without the job's ids", s->title,
                it->act->op->name);
        json_decref(result);
        itask_fail(it, &err);
        return;
    }
    it->result = result;
    it->since_ms = wall_ms();
    /* kept with the execution's checkpoint, committed before the first poll leaves */
    json_t *st = json_pack("{s:O, s:O, s:I}", "job", it->job, "result", it->result, "since",
                           (json_int_t)it->since_ms);
    sfn_task_set_state(it->t, st);
    json_decref(st);
    sfn_task_submitted(it->t, it->result);
    poll_schedule(it);
}

/* Makes the action's call with `params` (borrowed; NULL: the task's), with the attempt's
 * idempotency token where the API has one. An action that reconciles records its intent
 * first: a restart looks for what the call made before making it again. */
static int call_send(struct itask *it, json_t *params, struct err *err)
{
    const struct integ_service *s = it->reg->svc;
    const struct integ_op *op = it->act->op;
    if (params == NULL)
        params = it->params;
    json_t *wire = integ_op_wire(s, op, params, it->token, err);
    if (wire == NULL)
        return -1;
    if (it->act->reconcile != NULL) {
        /* kept with the checkpoint: when the call was made, for the reconciling listing */
        json_t *st = json_pack("{s:{s:I}}", "intent", "since", (json_int_t)wall_ms());
        sfn_task_set_state(it->t, st);
        json_decref(st);
    }
    int rc = itask_send(it, op, wire, on_call_done, err);
    json_decref(wire);
    if (rc == 0)
        itask_set_state(it, IT_CALLING);
    return rc;
}

/* ---- lookups: resolve (modify*ByName) and reconcile (after a restart) ---- */

#define LOOKUP_MAX_PAGES 1000u /* a listing that never ends is a service bug, not a wait */

static void lookup_send(struct itask *it);

static void on_lookup_timer(uv_timer_t *t)
{
    struct itask *it = container_of(t, struct itask, timer);
    lookup_send(it);
}

/* The lookup found `out` (borrowed): the call's parameters (resolve) or its answer
 * (reconcile). */
static void lookup_found(struct itask *it, json_t *out)
{
    bool reconcile = it->lk == it->act->reconcile;
    it->lk = NULL;
    if (reconcile) {
        call_answered(it, out, NULL);
        return;
    }
    struct err err = ERR_INIT;
    if (call_send(it, out, &err) != 0)
        itask_fail(it, &err);
}

/* The lookup found nothing: reconciling, the call is made (again), unless the task was
 * aborted meanwhile (then nothing was made and nothing is sent); resolving, page has already
 * failed the lookup. */
static void lookup_none(struct itask *it)
{
    it->lk = NULL;
    if (it->t == NULL) {
        itask_close(it);
        return;
    }
    struct err err = ERR_INIT;
    if (call_send(it, NULL, &err) != 0)
        itask_fail(it, &err);
}

/* Whether a lookup goes on after the engine let go: an aborted task reconciling an action
 * that cancels, so that the job the first call made, once found, is cancelled (§1.6). A
 * detached task (a restart) or a resolving one lets go at once. */
static bool lookup_goes_on(const struct itask *it)
{
    return it->cancel_job && it->lk != NULL && it->lk == it->act->reconcile &&
           !it->reg->in->closing;
}

/* The lookup failed with `err` (cleared): fails the task, or, let go, closes it (the job
 * the first call may have made is left to run). */
static void lookup_fail(struct itask *it, struct err *err)
{
    if (it->t != NULL) {
        itask_fail(it, err);
        return;
    }
    err_clear(err);
    itask_close(it);
}

static void on_lookup_done(struct aws_http_call *call, const struct aws_http_result *res,
                           void *arg)
{
    struct itask *it = arg;
    (void)call;
    it->call = NULL;
    if (it->t == NULL && !lookup_goes_on(it)) {
        itask_close(it); /* nothing was made yet, or it is left to run */
        return;
    }
    const struct integ_service *s = it->reg->svc;
    const struct integ_lookup *lk = it->lk;
    bool checking = it->lk_check != NULL && it->lk_next > 0;
    struct err err = ERR_INIT;
    if (res->err->set) {
        bool transient = res->error_code == NULL ||
                         aws_http_retryable(res->status, res->error_code);
        /* let go, the transport's own retries were the last: no timer outlives the task */
        if (it->t != NULL && transient &&
            (is_throttle(res) || ++it->failures < it->reg->in->max_failures)) {
            /* throttling slows a lookup down, never fails it */
            it->slow++;
            if (checking)
                it->lk_next--; /* ask about the same candidate again */
            uint64_t delay = (uint64_t)it->reg->cadence.first_ms
                             << (it->slow < MAX_SLOW_SHIFT ? it->slow : MAX_SLOW_SHIFT);
            if (delay > it->reg->in->max_delay_ms)
                delay = it->reg->in->max_delay_ms;
            uv_timer_start(&it->timer, on_lookup_timer, delay, 0);
            return;
        }
        integ_error_from_result(s, res, &err);
        lookup_fail(it, &err);
        return;
    }
    it->failures = 0;
    json_t *doc = json_loadb(res->body, res->body_len, 0, NULL); /* new reference */
    json_t *reply = integ_reply_from_wire(s, doc != NULL ? doc : json_object());
    json_decref(doc);
    const char *token = it->token;
    json_t *out = NULL;
    int rc;
    if (checking) {
        rc = lk->checked(it->params, token, reply, &out);
    } else {
        json_decref(it->lk_marker);
        it->lk_marker = json_incref(json_object_get(reply, "Marker"));
        if (!json_is_string(it->lk_marker) || ++it->lk_pages >= LOOKUP_MAX_PAGES) {
            json_decref(it->lk_marker);
            it->lk_marker = NULL;
        }
        if (it->lk_check == NULL)
            it->lk_check = json_array();
        rc = lk->page(it->params, token, reply, it->lk_marker == NULL, &out, it->lk_check,
                      &err);
    }
    json_decref(reply);
    if (rc < 0) {
        lookup_fail(it, &err);
    } else if (rc > 0) {
        lookup_found(it, out);
        json_decref(out);
    } else if (it->lk_marker != NULL || (it->lk_check != NULL &&
                                         it->lk_next < json_array_size(it->lk_check))) {
        lookup_send(it);
    } else {
        lookup_none(it);
    }
}

/* Sends the lookup's next request: the next page, else the next candidate's. */
static void lookup_send(struct itask *it)
{
    const struct integ_lookup *lk = it->lk;
    struct err err = ERR_INIT;
    const struct integ_op *op;
    json_t *req;
    if (it->lk_marker == NULL && it->lk_check != NULL) {
        op = lk->check_op;
        req = json_incref(json_array_get(it->lk_check, it->lk_next++));
    } else {
        op = lk->op;
        req = lk->request(it->params, it->lk_intent);
        if (it->lk_marker != NULL)
            json_object_set(req, "Marker", it->lk_marker);
    }
    json_t *wire = integ_op_wire(it->reg->svc, op, req, NULL, &err);
    json_decref(req);
    int rc = wire != NULL ? itask_send(it, op, wire, on_lookup_done, &err) : -1;
    json_decref(wire);
    if (rc != 0) {
        lookup_fail(it, &err);
        return;
    }
    itask_set_state(it, it->t != NULL ? IT_LOOKING : IT_LEFT);
}

/* Starts lookup `lk` of `it`: the first page, later the candidates. */
static void lookup_start(struct itask *it, const struct integ_lookup *lk)
{
    it->lk = lk;
    it->lk_pages = 0;
    lookup_send(it);
}

/* ---- the engine's side (include/sfn.h) ---- */

/* Finds the action of a resource ARN of `s` ("arn:aws:states:::athena:startQueryExecution
 * .sync"). Returns 0, or -1 with err set (States.Runtime: no such action or pattern). */
static int action_find(const struct integ_service *s, const char *arn,
                       const struct integ_action **out, bool *sync, struct err *err)
{
    const char *colon = strrchr(arn, ':');
    const char *action = colon != NULL ? colon + 1 : arn;
    const char *dot = strchr(action, '.');
    size_t n = dot != NULL ? (size_t)(dot - action) : strlen(action);
    /* ".sync:2" leaves "2" after the last colon: report the whole tail */
    if (colon != NULL && strcmp(action, "2") == 0) {
        return err_set(err, ASL_ERR_RUNTIME,
                       "the resource '%s' is not supported: %s has no '.sync:2' pattern", arn,
                       s->title);
    }
    for (size_t i = 0; i < s->n_actions; i++) {
        const struct integ_action *a = &s->actions[i];
        if (strlen(a->name) != n || strncmp(a->name, action, n) != 0)
            continue;
        if (dot == NULL && (a->patterns & INTEG_RR)) {
            *out = a;
            *sync = false;
            return 0;
        }
        if (dot != NULL && strcmp(dot, ".sync") == 0 && (a->patterns & INTEG_SYNC)) {
            *out = a;
            *sync = true;
            return 0;
        }
        return err_set(err, ASL_ERR_RUNTIME,
                       "the resource '%s' is not supported: %s's %s has no '%s' pattern", arn,
                       s->title, a->name, dot != NULL ? dot : "request-response");
    }
    struct buf names = BUF_INIT;
    for (size_t i = 0; i < s->n_actions; i++)
        buf_printf(&names, "%s%s", i > 0 ? ", " : "", s->actions[i].name);
    err_set(err, ASL_ERR_RUNTIME,
            "the resource '%s' is not supported: %s has no action '%.*s' (it has %s)", arn,
            s->title, (int)n, action, buf_cstr(&names));
    buf_release(&names);
    return -1;
}

/* ASL Credentials (asl.md §10.2) asks for a role per task; the transport has no STS. */
static bool credentials_ignored(void)
{
    const char *v = getenv("SFN_IGNORE_TASK_CREDENTIALS");
    return v != NULL && strcmp(v, "1") == 0;
}

static int task_begin(struct svc_reg *r, struct sfn_task *t, bool resume, struct err *err)
{
    const struct integ_action *act = NULL;
    bool sync = false;
    if (action_find(r->svc, sfn_task_resource(t), &act, &sync, err) != 0)
        return -1;
    if (sfn_task_has_credentials(t) && !credentials_ignored())
        return err_set(err, ASL_ERR_RUNTIME,
                       "the Task's Credentials field is not supported: the integrations cannot "
                       "assume a role and call %s with the AWS configuration's credentials only "
                       "(set SFN_IGNORE_TASK_CREDENTIALS=1 to do so anyway)",
                       r->svc->title);
    if (r->in->closing || aws_setup(r, err) != 0)
        return r->in->closing ? err_set(err, ASL_ERR_RUNTIME, "the integrations are closed")
                              : -1;
    struct itask *it = xcalloc(1, sizeof(*it));
    it->reg = r;
    it->act = act;
    it->sync = sync;
    it->t = t;
    integ_token(sfn_task_execution_arn(t), sfn_task_token(t), it->token);
    it->params = json_incref(sfn_task_input(t));
    uv_timer_init(r->in->loop, &it->timer);
    r->in->live++;
    sfn_task_set_data(t, it);
    json_t *st = resume ? sfn_task_state(t) : NULL;
    json_t *job = json_object_get(st, "job");
    if (sync && job != NULL && json_is_object(job)) { /* the job was submitted: poll it */
        it->job = json_incref(job);
        it->result = json_incref(json_object_get(st, "result"));
        it->since_ms = json_integer_value(json_object_get(st, "since"));
        poll_send(it);
        return 0; /* a failed send has already failed the task */
    }
    if (!json_is_object(it->params)) {
        err_set(err, ASL_ERR_RUNTIME, "the parameters of %s %s must be a JSON object",
                r->svc->title, act->name);
    } else if (resume && act->reconcile != NULL) {
        /* the call may have been made and the API has no idempotency token: look for what
         * it made before making it again (§1.9, EMR) */
        it->lk_intent = json_incref(json_object_get(st, "intent"));
        lookup_start(it, act->reconcile);
        return 0;
    } else if (act->resolve != NULL) {
        lookup_start(it, act->resolve);
        return 0;
    } else if (call_send(it, NULL, err) == 0) {
        /* first start, or a restart where the call may not have been made: (again) with
         * the same token, so that the service answers with the job it may already have */
        return 0;
    }
    it->t = NULL;
    sfn_task_set_data(t, NULL);
    itask_close(it);
    return -1;
}

static int on_start(struct sfn_task *t, void *arg, struct err *err)
{
    return task_begin(arg, t, false, err);
}

static int on_resume(struct sfn_task *t, void *arg, struct err *err)
{
    return task_begin(arg, t, true, err);
}

/* The engine lets go of the attempt; `abort`: cancel a .sync job (§1.6). */
static void let_go(struct sfn_task *t, bool abort_job)
{
    struct itask *it = sfn_task_data(t);
    if (it == NULL)
        return;
    sfn_task_set_data(t, NULL);
    it->t = NULL;
    it->cancel_job = abort_job && it->sync && it->act->cancel != NULL;
    switch (it->state) {
    case IT_LOOKING:
        if (lookup_goes_on(it)) {
            /* aborted while reconciling: the lookup goes on and what it finds is cancelled;
             * a retry's wait is cut short, so that no timer outlives the task */
            itask_set_state(it, IT_LEFT);
            if (it->call == NULL) {
                uv_timer_stop(&it->timer);
                lookup_send(it);
            }
            break;
        }
        /* detached, or resolving: nothing known to cancel; a reconciled job is left to run */
        if (it->call != NULL) {
            aws_http_call_cancel(it->call);
            itask_set_state(it, IT_LEFT);
        } else {
            uv_timer_stop(&it->timer);
            itask_close(it);
        }
        break;
    case IT_CALLING:
        /* aborted: let the call answer, to learn which job to cancel */
        if (!it->cancel_job)
            aws_http_call_cancel(it->call);
        itask_set_state(it, IT_LEFT);
        break;
    case IT_POLLING:
        if (it->batch != NULL) { /* a shared call: the others still wait on it */
            batch_leave(it);
            itask_set_state(it, IT_LEFT);
            itask_left(it);
            break;
        }
        aws_http_call_cancel(it->call);
        itask_set_state(it, IT_LEFT);
        break;
    case IT_WAITING:
        uv_timer_stop(&it->timer);
        waiting_remove(it);
        itask_left(it);
        break;
    case IT_LEFT:
    case IT_CANCELLING:
    case IT_CLOSING:
        break;
    }
}

static void on_cancel(struct sfn_task *t, void *arg)
{
    (void)arg;
    let_go(t, true);
}

static void on_detach(struct sfn_task *t, void *arg)
{
    (void)arg;
    let_go(t, false); /* a restart never cancels anything */
}

static const struct sfn_resource_ops integ_ops = {
    .start = on_start,
    .cancel = on_cancel,
    .resume = on_resume,
    .detach = on_detach,
};

/* ---- registration ---- */

/* SFN_POLL_<env>: "MS" or "FIRST_MS,FIRST_FOR_MS,THEN_MS" into the zero fields of `c`. */
static int cadence_env(const struct integ_service *s, struct sfn_poll_cadence *c,
                       struct err *err)
{
    char name[64];
    snprintf(name, sizeof(name), "SFN_POLL_%s", s->env);
    const char *v = getenv(name);
    if (v == NULL || v[0] == '\0')
        return 0;
    unsigned long n[3];
    int count = 0;
    const char *p = v;
    while (count < 3) {
        char *end;
        n[count] = strtoul(p, &end, 10);
        if (end == p || n[count] == 0 || n[count] > 86400000ul)
            break;
        count++;
        p = end;
        if (*p != ',')
            break;
        p++;
    }
    if (*p != '\0' || (count != 1 && count != 3))
        return err_set(err, ASL_ERR_RUNTIME,
                       "%s must be MS or FIRST_MS,FIRST_FOR_MS,THEN_MS (positive milliseconds), "
                       "not '%s'",
                       name, v);
    struct sfn_poll_cadence e = {(unsigned)n[0], count == 3 ? (unsigned)n[1] : 0,
                                 count == 3 ? (unsigned)n[2] : (unsigned)n[0]};
    if (c->first_ms == 0)
        c->first_ms = e.first_ms;
    if (c->first_for_ms == 0)
        c->first_for_ms = e.first_for_ms;
    if (c->then_ms == 0)
        c->then_ms = e.then_ms;
    return 0;
}

static char *opt_dup(const char *s)
{
    return s != NULL ? xstrdup(s) : NULL;
}

struct sfn_integrations *sfn_integrations_register(struct sfn_engine *eng, uv_loop_t *loop,
                                                   const struct sfn_integrations_options *opts,
                                                   struct err *err)
{
    struct sfn_integrations_options o;
    memset(&o, 0, sizeof(o));
    if (opts != NULL)
        o = *opts;
    struct sfn_integrations *in = xcalloc(1, sizeof(*in));
    in->eng = eng;
    in->loop = loop;
    in->max_delay_ms = o.max_poll_delay_ms != 0 ? o.max_poll_delay_ms : DEFAULT_MAX_POLL_DELAY_MS;
    in->max_failures = o.max_poll_failures != 0 ? o.max_poll_failures : DEFAULT_MAX_POLL_FAILURES;
    for (size_t i = 0; i < N_SERVICES; i++) {
        struct svc_reg *r = &in->regs[i];
        r->in = in;
        r->svc = services[i];
        if (services[i] == &integ_athena)
            r->cadence = o.athena;
        else if (services[i] == &integ_emr_serverless)
            r->cadence = o.emr_serverless;
        else if (services[i] == &integ_emr)
            r->cadence = o.emr;
        else if (services[i] == &integ_emr_containers)
            r->cadence = o.emr_containers;
        if (cadence_env(r->svc, &r->cadence, err) != 0) {
            free(in);
            return NULL;
        }
        const struct sfn_poll_cadence *d = &r->svc->cadence;
        if (r->cadence.first_ms == 0)
            r->cadence.first_ms = d->first_ms;
        if (r->cadence.first_for_ms == 0)
            r->cadence.first_for_ms = d->first_for_ms;
        if (r->cadence.then_ms == 0)
            r->cadence.then_ms = d->then_ms;
    }
    in->profile = opt_dup(o.profile);
    in->region = opt_dup(o.region);
    in->endpoint_url = opt_dup(o.endpoint_url);
    for (size_t p = 0; p < ARRAY_LEN(partitions); p++) {
        for (size_t i = 0; i < N_SERVICES; i++) {
            char pattern[96];
            snprintf(pattern, sizeof(pattern), "arn:%s:states:::%s:*", partitions[p],
                     services[i]->name);
            sfn_engine_register_resource(eng, pattern, &integ_ops, &in->regs[i], err);
        }
    }
    return in;
}

void sfn_integrations_free(struct sfn_integrations *in)
{
    if (in == NULL)
        return;
    in->closing = true;
    if (in->http != NULL) {
        aws_http_close(in->http); /* pending calls end with Cancelled on the next pass */
        in->http = NULL;
    }
    /* the client reads the config only to sign, and it signs nothing more */
    aws_config_free(in->cfg);
    in->cfg = NULL;
    /* With no task left, no call is pending and the client has already released curl; else
     * curl is released later, in its close callbacks, and the reference is left (curl counts
     * them, and a process exit releases it). */
    if (in->curl_inited && in->live == 0)
        curl_global_cleanup();
    registry_maybe_free(in);
}
