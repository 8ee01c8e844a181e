/* engine/state_task.c - Task: resolves the effective input and timeouts, hands one attempt
 * to the resource handler registered for its ARN (the single seam every integration, mock,
 * activity and embedder plugs into), enforces TimeoutSeconds/HeartbeatSeconds, and turns
 * the outcome into history events and the state's output (asl.md 10.2-10.3).
 *
 * Three event families (api.md 7.3, 7.5): Task* for integrations, LambdaFunction* for plain
 * function ARNs, Activity* for activity ARNs. An activity attempt is scheduled first and
 * started when a worker takes it (sfn_task_started: ActivityStarted{workerName}); its
 * TimeoutSeconds counts from the scheduling, its HeartbeatSeconds from the start.
 *
 * Task tokens are 256 random bits (getrandom), drawn when the attempt is scheduled and saved
 * with the execution's checkpoint before the start leaves the process (the start waits for
 * the turn's commit), so a token that reached anyone is the token after a restart. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "engine/internal.h"
#include "util/json.h"
#include "util/xalloc.h"

#define TASK_DEFAULT_TIMEOUT_S 99999999LL /* asl.md 10.3: AWS's default, not 60 */

#define TASK_TOKEN_BYTES 32 /* 256 random bits: unguessable (api.md 8.3) */

/* History event types of one resource family. */
struct task_evs {
    enum ev_type scheduled, started, start_failed, succeeded, failed, timed_out;
    bool worker_starts; /* `started` is recorded by sfn_task_started, not at scheduling */
};

static const struct task_evs task_evs = {EV_TaskScheduled, EV_TaskStarted, EV_TaskStartFailed,
                                         EV_TaskSucceeded, EV_TaskFailed, EV_TaskTimedOut,
                                         false};
static const struct task_evs lambda_evs = {
    EV_LambdaFunctionScheduled, EV_LambdaFunctionStarted,   EV_LambdaFunctionStartFailed,
    EV_LambdaFunctionSucceeded, EV_LambdaFunctionFailed,    EV_LambdaFunctionTimedOut,
    false};
/* api.md 7.5: ActivityScheduleFailed when it cannot be scheduled; a failed start after the
 * scheduling is the attempt's failure (ActivityFailed) */
static const struct task_evs activity_evs = {
    EV_ActivityScheduled, EV_ActivityStarted, EV_ActivityFailed,   EV_ActivitySucceeded,
    EV_ActivityFailed,    EV_ActivityTimedOut, true};

static bool is_lambda_function(const char *arn)
{
    return strncmp(arn, "arn:", 4) == 0 && strstr(arn, ":lambda:") != NULL &&
           strstr(arn, ":function:") != NULL;
}

/* arn:<partition>:states:<region>:<account>:activity:<name> (api.md 2.2) */
static bool is_activity(const char *arn)
{
    return strncmp(arn, "arn:", 4) == 0 && strstr(arn, ":states:") != NULL &&
           strstr(arn, ":activity:") != NULL;
}

static const struct task_evs *evs_of(const struct asl_state *st)
{
    if (is_activity(st->resource))
        return &activity_evs;
    return is_lambda_function(st->resource) ? &lambda_evs : &task_evs;
}

/* Adds resourceType/resource (api.md 7.3, 7.5) to an event's details. */
static void resource_details(const struct asl_state *st, struct hevent *e)
{
    if (is_lambda_function(st->resource) || is_activity(st->resource)) {
        /* only the scheduling names the function or activity */
        if (e->type == EV_LambdaFunctionScheduled || e->type == EV_ActivityScheduled) {
            if (e->details == NULL)
                e->details = json_object();
            json_object_set_new(e->details, "resource", json_string(st->resource));
        }
        return;
    }
    const char *arn = st->resource;
    static const char prefix[] = "arn:aws:states:::";
    json_t *d = e->details != NULL ? e->details : json_object();
    e->details = d;
    if (strncmp(arn, prefix, sizeof(prefix) - 1) == 0) {
        const char *rest = arn + sizeof(prefix) - 1;
        const char *colon = strchr(rest, ':');
        if (colon != NULL && strncmp(rest, "aws-sdk:", 8) == 0)
            colon = strchr(colon + 1, ':');
        if (colon != NULL) {
            json_object_set_new(d, "resourceType", json_stringn(rest, (size_t)(colon - rest)));
            json_object_set_new(d, "resource", json_string(colon + 1));
            return;
        }
    }
    /* a custom resource: its ARN's service field, and the whole ARN */
    const char *svc = strchr(arn, ':');
    svc = svc != NULL ? strchr(svc + 1, ':') : NULL;
    const char *end = svc != NULL ? strchr(svc + 1, ':') : NULL;
    if (svc != NULL && end != NULL)
        json_object_set_new(d, "resourceType", json_stringn(svc + 1, (size_t)(end - svc - 1)));
    else
        json_object_set_new(d, "resourceType", json_string("custom"));
    json_object_set_new(d, "resource", json_string(arn));
}

static struct hevent *task_event(struct frame *f, enum ev_type type)
{
    struct hevent *e = frame_event(f, type);
    resource_details(f->st, e);
    return e;
}

static struct hevent *task_error_event(struct frame *f, enum ev_type type, const struct err *err)
{
    struct hevent *e = task_event(f, type);
    e->has_error = true;
    e->error = err->name[0] != '\0' ? xstrdup(err->name) : NULL;
    e->cause = err->cause != NULL ? xstrdup(err->cause) : NULL;
    return e;
}

/* TimeoutSecondsPath / HeartbeatSecondsPath: a positive integer, else States.Runtime. */
static int seconds_from_path(struct frame *f, const struct asl_path *p, json_t *input,
                             int64_t *out, struct err *err)
{
    struct asl_scope s;
    frame_scope(f, &s, input);
    json_t *v = asl_path_eval(p, &s, err);
    if (v == NULL)
        return -1;
    int rc = 0;
    if (!json_is_integer(v) || json_integer_value(v) <= 0) {
        char *text = json_compact(v);
        rc = err_set(err, ASL_ERR_RUNTIME, "The value of '%s' must be a positive integer: %s",
                     asl_path_text(p), text);
        free(text);
    } else {
        *out = json_integer_value(v);
    }
    json_decref(v);
    return rc;
}

/* Fills `buf` from the kernel's CSPRNG (getrandom, else /dev/urandom). A system without
 * either cannot issue safe tokens: that is fatal, not an error a state machine could catch. */
static void random_bytes(unsigned char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(buf + got, n - got, 0);
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        break;
    }
    if (got == n)
        return;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    while (fd >= 0 && got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r > 0)
            got += (size_t)r;
        else if (!(r < 0 && errno == EINTR))
            break;
    }
    if (fd >= 0)
        close(fd);
    if (got != n)
        abort(); /* no randomness at all: tokens would be guessable */
}

/* A new task token: TASK_TOKEN_BYTES random bytes as lowercase hex (64 characters: within
 * SendTask*'s 1..2048 and usable as is in any idempotency token). Caller frees. */
static char *task_token_new(void)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[TASK_TOKEN_BYTES];
    random_bytes(raw, sizeof(raw));
    char *tok = xmalloc(2 * sizeof(raw) + 1);
    for (size_t i = 0; i < sizeof(raw); i++) {
        tok[2 * i] = hex[raw[i] >> 4];
        tok[2 * i + 1] = hex[raw[i] & 15];
    }
    tok[2 * sizeof(raw)] = '\0';
    return tok;
}

bool task_job_run(const struct asl_state *st)
{
    /* arn:<partition>:states:::<service>:<action>.sync (or .sync:2): not an activity ARN,
     * whatever its name */
    const char *r = st->resource;
    size_t n = strlen(r);
    return strstr(r, ":::") != NULL &&
           ((n > 5 && strcmp(r + n - 5, ".sync") == 0) || strstr(r, ".sync:") != NULL);
}

static void task_free(struct sfn_engine *eng, struct sfn_task *t)
{
    if (t->job)
        dlist_remove(&eng->jobs, &t->job_link);
    json_decref(t->state);
    json_decref(t->input);
    json_decref(t->output);
    err_clear(&t->err);
    free(t->token);
    free(t);
}

void task_abandon(struct frame *f)
{
    struct sfn_task *t = f->task;
    if (t == NULL)
        return;
    f->task = NULL;
    if (t->deferred) { /* never handed over: nothing to cancel */
        engine_undefer_start(f->ex->eng, t);
        f->ex->eng->inflight--;
    } else if (t->started && !t->done) {
        f->ex->eng->inflight--;
        t->frame = NULL;
        if (f->ex->releasing) {
            if (t->res != NULL && t->res->ops->detach != NULL)
                t->res->ops->detach(t, t->res->arg);
        } else if (t->res != NULL && t->res->ops->cancel != NULL) {
            t->res->ops->cancel(t, t->res->arg);
        }
    }
    task_free(f->ex->eng, t);
}

static void task_run(struct frame *f)
{
    const struct asl_state *st = f->st;
    struct sfn_execution *ex = f->ex;
    struct sfn_engine *eng = ex->eng;
    const struct task_evs *evs = evs_of(st);
    struct err err = ERR_INIT;

    struct sfn_task *t = xcalloc(1, sizeof(*t));
    t->frame = f;
    t->attempt = f->retry_total;
    t->token = task_token_new();
    if (task_job_run(st)) { /* listed from scheduling (or restore) to the end */
        t->job = true;
        dlist_push_front(&eng->jobs, &t->job_link);
    }
    f->task = t; /* before Parameters: $$.Task.Token may be read there */
    json_decref(f->ctx);
    f->ctx = NULL;

    json_t *eff = frame_effective_input(f, &err);
    if (eff == NULL) {
        frame_state_failed(f, &err, true);
        return;
    }
    t->input = eff;
    t->timeout_s = st->timeout_s;
    t->heartbeat_s = st->heartbeat_s;
    if ((st->timeout_path != NULL &&
         seconds_from_path(f, st->timeout_path, f->input, &t->timeout_s, &err) != 0) ||
        (st->heartbeat_path != NULL &&
         seconds_from_path(f, st->heartbeat_path, f->input, &t->heartbeat_s, &err) != 0)) {
        frame_state_failed(f, &err, true);
        return;
    }

    t->res = engine_resource_find(eng, st->resource);
    if (t->res != NULL && t->res->ops->check != NULL &&
        t->res->ops->check(t, t->res->arg, &err) != 0) {
        /* api.md 7.5 (a deleted activity): no event but the state's failure */
        frame_state_failed(f, &err, true);
        return;
    }
    if (t->res == NULL && evs == &activity_evs) {
        err_set(&err, ASL_ERR_TASK_FAILED,
                "The activity '%s' cannot be scheduled: no handler is registered for it",
                st->resource);
        task_error_event(f, EV_ActivityScheduleFailed, &err);
        frame_state_failed(f, &err, false);
        return;
    }

    struct hevent *e = task_event(f, evs->scheduled);
    e->data = json_incref(eff);
    if (evs == &task_evs)
        json_object_set_new(e->details, "region", json_string(eng->region));
    if (st->has_timeout)
        json_object_set_new(e->details, "timeoutInSeconds", json_integer(t->timeout_s));
    if (st->has_heartbeat)
        json_object_set_new(e->details, "heartbeatInSeconds", json_integer(t->heartbeat_s));

    if (t->res == NULL) {
        err_set(&err, ASL_ERR_TASK_FAILED,
                "The resource '%s' is not supported: no handler is registered for it",
                st->resource);
        task_error_event(f, evs->start_failed, &err);
        frame_state_failed(f, &err, false);
        return;
    }
    int64_t now = engine_now(eng);
    int64_t timeout = t->timeout_s > 0 ? t->timeout_s : TASK_DEFAULT_TIMEOUT_S;
    engine_timer_arm(eng, &f->timer, now + timeout * 1000);
    if (!evs->worker_starts) {
        task_event(f, evs->started);
        t->taken = true;
        if (t->heartbeat_s > 0)
            engine_timer_arm(eng, &f->hb_timer, now + t->heartbeat_s * 1000);
    }
    f->phase = FR_TASK;
    eng->inflight++;
    t->started = true;
    if (eng->persist != NULL) {
        /* persist before the effect: the start goes out after this turn's commit */
        engine_defer_start(eng, t);
        return;
    }
    t->in_start = true;
    int rc = t->res->ops->start(t, t->res->arg, &err);
    t->in_start = false;
    if (rc != 0) {
        if (!t->done) {
            t->done = true;
            eng->inflight--;
            err_move(&t->err, &err);
            t->err.set = true;
        }
        err_clear(&err);
        f->phase = FR_TASK_DONE;
    }
    if (f->phase == FR_TASK_DONE)
        state_task_ops.on_task(f);
}

void task_hand_over(struct sfn_task *t, bool resume)
{
    struct frame *f = t->frame;
    struct sfn_engine *eng = f->ex->eng;
    struct err err = ERR_INIT;
    int rc;
    if (resume && (t->res == NULL || t->res->ops->resume == NULL)) {
        rc = err_set(&err, ASL_ERR_TASK_FAILED,
                     "The task of state '%s' on resource '%s' was in flight before a restart "
                     "and its handler cannot resume it; it is not started again",
                     f->st->name, f->st->resource);
    } else {
        t->in_start = true;
        rc = resume ? t->res->ops->resume(t, t->res->arg, &err)
                    : t->res->ops->start(t, t->res->arg, &err);
        t->in_start = false;
    }
    if (rc != 0 && !t->done) {
        t->done = true;
        eng->inflight--;
        err_move(&t->err, &err);
        t->err.set = true;
    }
    err_clear(&err);
    if (t->done) {
        f->phase = FR_TASK_DONE;
        engine_enqueue(eng, f);
    }
}

static void task_on_done(struct frame *f)
{
    struct sfn_task *t = f->task;
    const struct task_evs *evs = evs_of(f->st);
    struct sfn_engine *eng = f->ex->eng;
    engine_timer_cancel(eng, &f->timer);
    engine_timer_cancel(eng, &f->hb_timer);
    f->phase = FR_READY;
    f->task = NULL;
    if (t->err.set) {
        struct err err = ERR_INIT;
        err_move(&err, &t->err);
        task_free(eng, t);
        task_error_event(f, evs->failed, &err);
        frame_state_failed(f, &err, false);
        return;
    }
    json_t *result = t->output;
    t->output = NULL;
    task_free(eng, t);
    struct err err = ERR_INIT;
    if (json_sizer_size(&eng->sizer, result, ASL_PAYLOAD_MAX) > ASL_PAYLOAD_MAX) {
        json_decref(result);
        err_set(&err, ASL_ERR_DATA_LIMIT,
                "The state/task '%s' returned a result with a size exceeding the maximum number "
                "of bytes service limit.",
                f->st->resource);
        frame_state_failed(f, &err, false);
        return;
    }
    struct hevent *e = task_event(f, evs->succeeded);
    e->data = json_incref(result);
    json_t *out;
    if (frame_finish_result(f, f->input, result, &out, &err) != 0) {
        frame_state_failed(f, &err, true);
        return;
    }
    frame_state_done(f, out);
}

static void task_on_timer(struct frame *f)
{
    if (f->phase != FR_TASK)
        return;
    const struct task_evs *evs = evs_of(f->st);
    task_abandon(f);
    engine_timer_cancel(f->ex->eng, &f->timer);
    engine_timer_cancel(f->ex->eng, &f->hb_timer);
    f->phase = FR_READY;
    struct err err = ERR_INIT;
    err_set_raw(&err, ASL_ERR_TIMEOUT, NULL); /* asl.md 10.3: heartbeats too */
    task_error_event(f, evs->timed_out, &err);
    frame_state_failed(f, &err, false);
    if (f->phase == FR_READY || f->phase == FR_DONE)
        engine_enqueue(f->ex->eng, f);
}

static void task_abort(struct frame *f, bool events)
{
    if (events && (f->phase == FR_TASK || f->phase == FR_TASK_DONE || f->phase == FR_BACKOFF))
        frame_emit(f, EV_TaskStateAborted);
}

const struct state_ops state_task_ops = {
    .run = task_run,
    .on_timer = task_on_timer,
    .on_task = task_on_done,
    .abort = task_abort,
};

int task_restore(struct frame *f, json_t *snap, struct err *err)
{
    (void)err;
    struct sfn_engine *eng = f->ex->eng;
    struct sfn_task *t = xcalloc(1, sizeof(*t));
    t->frame = f;
    t->token = xstrdup(json_string_value(json_object_get(snap, "token")) != NULL
                           ? json_string_value(json_object_get(snap, "token"))
                           : "");
    t->attempt = (int)json_integer_value(json_object_get(snap, "attempt"));
    t->input = json_incref(json_object_get(snap, "input"));
    t->timeout_s = json_integer_value(json_object_get(snap, "timeout_s"));
    t->heartbeat_s = json_integer_value(json_object_get(snap, "heartbeat_s"));
    t->taken = json_is_true(json_object_get(snap, "taken")) || !evs_of(f->st)->worker_starts;
    t->res = engine_resource_find(eng, f->st->resource);
    f->task = t;
    if (task_job_run(f->st)) {
        t->job = true;
        dlist_push_front(&eng->jobs, &t->job_link);
    }
    json_t *failed = json_object_get(snap, "failed");
    json_t *output = json_object_get(snap, "output");
    if (failed != NULL || output != NULL) { /* completed, not yet consumed */
        t->done = true;
        t->started = true;
        if (failed != NULL)
            err_set_raw(&t->err, json_string_value(json_object_get(failed, "error")),
                        json_string_value(json_object_get(failed, "cause")));
        else
            t->output = json_incref(output);
        f->phase = FR_TASK_DONE;
        return 0;
    }
    if (f->phase != FR_TASK)
        return 0; /* the attempt had not been handed over yet */
    json_t *hs = json_object_get(snap, "state");
    if (hs != NULL && !json_is_null(hs))
        t->state = json_incref(hs);
    t->started = true;
    eng->inflight++;
    task_hand_over(t, true);
    return 0;
}

/* ---- the handler's side of an attempt (include/sfn.h) ---- */

static void task_complete(struct sfn_task *t)
{
    struct frame *f = t->frame;
    t->done = true;
    f->ex->eng->inflight--;
    if (t->in_start) {
        f->phase = FR_TASK_DONE; /* task_run consumes it when start returns */
        return;
    }
    f->phase = FR_TASK_DONE;
    engine_enqueue(f->ex->eng, f);
}

void sfn_task_succeed(struct sfn_task *t, json_t *output)
{
    if (t->done || t->frame == NULL)
        return;
    t->output = json_incref(output != NULL ? output : json_null());
    task_complete(t);
}

void sfn_task_fail(struct sfn_task *t, const char *error, const char *cause)
{
    if (t->done || t->frame == NULL)
        return;
    err_set_raw(&t->err, error, cause);
    task_complete(t);
}

struct sfn_task *sfn_engine_job_task(struct sfn_engine *eng, const char *token)
{
    for (struct dlink *l = eng->jobs.head; l != NULL && token != NULL; l = l->next) {
        struct sfn_task *t = container_of(l, struct sfn_task, job_link);
        if (t->frame != NULL && !t->done && t->started && strcmp(t->token, token) == 0)
            return t;
    }
    return NULL;
}

void sfn_task_take_over(struct sfn_task *t)
{
    if (t->done || t->frame == NULL || t->res == NULL)
        return;
    /* "Step Functions stops monitoring the job" (integrations.md 1.5): the handler lets go
     * as on a shutdown, without cancelling anything */
    const struct resource *res = t->res;
    t->res = NULL;
    if (res->ops->detach != NULL)
        res->ops->detach(t, res->arg);
    t->data = NULL;
}

void sfn_task_started(struct sfn_task *t, const char *worker_name)
{
    struct frame *f = t->frame;
    if (t->done || f == NULL || t->taken)
        return;
    t->taken = true;
    struct sfn_engine *eng = f->ex->eng;
    const struct task_evs *evs = evs_of(f->st);
    struct hevent *e = task_event(f, evs->started);
    if (evs == &activity_evs) { /* api.md 7.3: {} when the worker gave no name */
        if (e->details == NULL)
            e->details = json_object();
        if (worker_name != NULL)
            json_object_set_new(e->details, "workerName", json_string(worker_name));
    }
    if (t->heartbeat_s > 0) /* the first heartbeat is due one period after the start */
        engine_timer_arm(eng, &f->hb_timer, engine_now(eng) + t->heartbeat_s * 1000);
    engine_dirty(f->ex);
}

bool sfn_task_taken(const struct sfn_task *t)
{
    return t->taken;
}

void sfn_task_heartbeat(struct sfn_task *t)
{
    struct frame *f = t->frame;
    if (t->done || f == NULL || t->heartbeat_s <= 0)
        return;
    struct sfn_engine *eng = f->ex->eng;
    engine_timer_arm(eng, &f->hb_timer, engine_now(eng) + t->heartbeat_s * 1000);
    engine_dirty(f->ex);
}

void sfn_task_set_state(struct sfn_task *t, json_t *state)
{
    json_t *old = t->state;
    t->state = state != NULL ? json_incref(state) : NULL;
    json_decref(old);
    if (t->frame != NULL)
        engine_dirty(t->frame->ex);
}

json_t *sfn_task_state(const struct sfn_task *t)
{
    return t->state;
}

void sfn_task_submitted(struct sfn_task *t, json_t *output)
{
    struct frame *f = t->frame;
    if (t->done || f == NULL)
        return;
    struct hevent *e = task_event(f, EV_TaskSubmitted);
    e->data = json_incref(output != NULL ? output : json_object());
}

const char *sfn_task_resource(const struct sfn_task *t)
{
    return t->frame != NULL ? t->frame->st->resource : "";
}

const char *sfn_task_state_name(const struct sfn_task *t)
{
    return t->frame != NULL ? t->frame->st->name : "";
}

bool sfn_task_has_credentials(const struct sfn_task *t)
{
    return t->frame != NULL && t->frame->st->credentials != NULL;
}

const char *sfn_task_execution_arn(const struct sfn_task *t)
{
    return t->frame != NULL ? t->frame->ex->arn : "";
}

json_t *sfn_task_input(const struct sfn_task *t)
{
    return t->input;
}

const char *sfn_task_token(const struct sfn_task *t)
{
    return t->token;
}

int sfn_task_attempt(const struct sfn_task *t)
{
    return t->attempt;
}

int64_t sfn_task_timeout_seconds(const struct sfn_task *t)
{
    return t->timeout_s;
}

int64_t sfn_task_heartbeat_seconds(const struct sfn_task *t)
{
    return t->heartbeat_s;
}

void sfn_task_set_data(struct sfn_task *t, void *data)
{
    t->data = data;
}

void *sfn_task_data(const struct sfn_task *t)
{
    return t->data;
}
