/* engine/engine.c - the engine object: its clock (real or virtual), one timer heap behind a
 * single uv_timer_t, the run queue drained from a uv_idle_t, the Task resource registry,
 * and the public lifecycle of machines and executions (include/sfn.h). */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/internal.h"
#include "util/json.h"
#include "util/xalloc.h"

#define DRAIN_FRAMES_PER_TURN 4096 /* frames run per idle callback before polling I/O */
#define PERSIST_TURN_NS 4000000  /* with a store: run more frames per turn, up to 4 ms */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t engine_now(struct sfn_engine *eng)
{
    return eng->virtual_clock ? eng->vnow : wall_ms();
}

/* ---- timer heap ---- */

static void heap_swap(struct sfn_engine *eng, size_t a, size_t b)
{
    struct etimer *t = eng->heap[a];
    eng->heap[a] = eng->heap[b];
    eng->heap[b] = t;
    eng->heap[a]->slot = a;
    eng->heap[b]->slot = b;
}

static void heap_up(struct sfn_engine *eng, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (eng->heap[p]->deadline <= eng->heap[i]->deadline)
            break;
        heap_swap(eng, p, i);
        i = p;
    }
}

static void heap_down(struct sfn_engine *eng, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1;
        size_t r = l + 1;
        size_t m = i;
        if (l < eng->n_heap && eng->heap[l]->deadline < eng->heap[m]->deadline)
            m = l;
        if (r < eng->n_heap && eng->heap[r]->deadline < eng->heap[m]->deadline)
            m = r;
        if (m == i)
            return;
        heap_swap(eng, i, m);
        i = m;
    }
}

static void on_uv_timer(uv_timer_t *h);

static void real_timer_rearm(struct sfn_engine *eng)
{
    if (eng->virtual_clock || eng->closing)
        return;
    if (eng->n_heap == 0) {
        uv_timer_stop(&eng->timer);
        return;
    }
    int64_t delay = eng->heap[0]->deadline - wall_ms();
    uv_timer_start(&eng->timer, on_uv_timer, delay > 0 ? (uint64_t)delay : 0, 0);
}

void engine_timer_arm(struct sfn_engine *eng, struct etimer *t, int64_t deadline)
{
    if (t->slot != SIZE_MAX)
        engine_timer_cancel(eng, t);
    if (eng->n_heap == eng->cap_heap) {
        eng->cap_heap = eng->cap_heap != 0 ? eng->cap_heap * 2 : 64;
        eng->heap = xrealloc(eng->heap, eng->cap_heap * sizeof(*eng->heap));
    }
    t->deadline = deadline;
    t->slot = eng->n_heap;
    eng->heap[eng->n_heap++] = t;
    heap_up(eng, t->slot);
    if (t->slot == 0)
        real_timer_rearm(eng);
    if (eng->virtual_clock)
        engine_wake(eng);
}

void engine_timer_cancel(struct sfn_engine *eng, struct etimer *t)
{
    if (t->slot == SIZE_MAX)
        return;
    size_t i = t->slot;
    bool was_first = i == 0;
    eng->n_heap--;
    if (i != eng->n_heap) {
        eng->heap[i] = eng->heap[eng->n_heap];
        eng->heap[i]->slot = i;
        heap_down(eng, i);
        heap_up(eng, eng->heap[i]->slot);
    }
    t->slot = SIZE_MAX;
    if (was_first)
        real_timer_rearm(eng);
}

/* Fires every timer due at `now`. */
static void timers_fire_due(struct sfn_engine *eng, int64_t now)
{
    while (!eng->persist_failed && eng->n_heap > 0 && eng->heap[0]->deadline <= now) {
        struct etimer *t = eng->heap[0];
        engine_timer_cancel(eng, t);
        t->fire(t);
    }
}

static void on_uv_timer(uv_timer_t *h)
{
    struct sfn_engine *eng = container_of(h, struct sfn_engine, timer);
    timers_fire_due(eng, wall_ms());
    real_timer_rearm(eng);
}

/* ---- run queue ---- */

void engine_enqueue(struct sfn_engine *eng, struct frame *f)
{
    engine_dirty(f->ex);
    if (f->queued)
        return;
    f->queued = true;
    dlist_push_back(&eng->rq, &f->rq_link);
    engine_wake(eng);
}

void engine_dequeue(struct sfn_engine *eng, struct frame *f)
{
    if (!f->queued)
        return;
    dlist_remove(&eng->rq, &f->rq_link);
    f->queued = false;
}

static void on_idle(uv_idle_t *h);
static void on_prepare(uv_prepare_t *h);

void engine_wake(struct sfn_engine *eng)
{
    if (eng->closing || eng->persist_failed)
        return;
    if (!uv_is_active((uv_handle_t *)&eng->idle))
        uv_idle_start(&eng->idle, on_idle);
    if (!uv_is_active((uv_handle_t *)&eng->prepare))
        uv_prepare_start(&eng->prepare, on_prepare);
}

void engine_dirty(struct sfn_execution *ex)
{
    if (ex->dirty)
        return;
    ex->dirty = true;
    ex->dirty_next = ex->eng->dirty_head;
    ex->eng->dirty_head = ex;
    engine_wake(ex->eng);
}

static void dirty_unlink(struct sfn_execution *ex)
{
    if (!ex->dirty)
        return;
    for (struct sfn_execution **pp = &ex->eng->dirty_head; *pp != NULL;
         pp = &(*pp)->dirty_next) {
        if (*pp == ex) {
            *pp = ex->dirty_next;
            break;
        }
    }
    ex->dirty = false;
    ex->dirty_next = NULL;
}

void engine_defer_start(struct sfn_engine *eng, struct sfn_task *t)
{
    t->deferred = true;
    dlist_push_back(&eng->deferred, &t->deferred_link);
    engine_wake(eng);
}

void engine_undefer_start(struct sfn_engine *eng, struct sfn_task *t)
{
    if (!t->deferred)
        return;
    dlist_remove(&eng->deferred, &t->deferred_link);
    t->deferred = false;
}

/* Commits the executions changed in this turn (persistence on). 0, or -1: the engine has
 * stopped for good. */
static int commit_dirty(struct sfn_engine *eng)
{
    if (eng->persist == NULL || eng->dirty_head == NULL)
        return 0;
    size_t n = 0;
    for (struct sfn_execution *ex = eng->dirty_head; ex != NULL; ex = ex->dirty_next)
        n++;
    if (n > eng->commit_cap) {
        eng->commit_cap = n * 2;
        eng->commit_buf = xrealloc(eng->commit_buf, eng->commit_cap * sizeof(*eng->commit_buf));
    }
    n = 0;
    for (struct sfn_execution *ex = eng->dirty_head; ex != NULL; ex = ex->dirty_next)
        eng->commit_buf[n++] = ex;
    struct err err = ERR_INIT;
    if (eng->persist->commit(eng->persist_arg, eng->commit_buf, n, &err) == 0) {
        for (size_t i = 0; i < n; i++)
            eng->commit_buf[i]->ev_committed = eng->commit_buf[i]->ev_base + eng->commit_buf[i]->n_ev;
        return 0;
    }
    if (!err.set)
        err_set(&err, ASL_ERR_RUNTIME, "the store could not commit");
    err_move(&eng->persist_err, &err);
    eng->persist_failed = true;
    uv_idle_stop(&eng->idle);
    uv_timer_stop(&eng->timer);
    uv_prepare_stop(&eng->prepare);
    return -1;
}

/* Drops the committed events of an execution from memory. */
static void hist_evict(struct sfn_execution *ex)
{
    size_t total = ex->ev_base + ex->n_ev;
    hist_release(ex);
    ex->ev_base = total;
}

static void deliver_done(struct sfn_engine *eng)
{
    while (eng->done_head != NULL) {
        struct sfn_execution *ex = eng->done_head;
        eng->done_head = ex->done_next;
        ex->done_next = NULL;
        ex->done_pending = false;
        if (ex->on_done != NULL)
            ex->on_done(ex, ex->arg); /* may free ex or others */
    }
}

struct walk_busy {
    struct sfn_engine *eng;
    bool busy; /* a live, referenced handle that is not the engine's own */
};

static void on_walk_busy(uv_handle_t *h, void *arg)
{
    struct walk_busy *w = arg;
    if (h == (uv_handle_t *)&w->eng->timer || h == (uv_handle_t *)&w->eng->idle ||
        h == (uv_handle_t *)&w->eng->prepare)
        return;
    if (uv_is_active(h) && uv_has_ref(h) && !uv_is_closing(h))
        w->busy = true;
}

/* Whether anything outside the engine is alive on the loop (a handler's timer or socket, a
 * server): it may still complete an in-flight task, so virtual time must not jump past it.
 * Requests (uv_fs_t, uv_work_t) are not seen; handlers that use them also hold a handle. */
static bool loop_busy_outside(struct sfn_engine *eng)
{
    struct walk_busy w = {eng, false};
    uv_walk(eng->loop, on_walk_busy, &w);
    return w.busy;
}

/* The end of a loop turn: commit what changed (persistence on), then let the turn's effects
 * out: history events to on_event, ended executions to on_done, held task starts. */
static void on_prepare(uv_prepare_t *h)
{
    struct sfn_engine *eng = container_of(h, struct sfn_engine, prepare);
    if (commit_dirty(eng) != 0)
        return;
    struct sfn_execution *list = eng->dirty_head;
    eng->dirty_head = NULL;
    for (struct sfn_execution *ex = list; ex != NULL; ex = ex->dirty_next)
        ex->dirty = false;
    while (list != NULL) {
        struct sfn_execution *ex = list;
        list = ex->dirty_next;
        ex->dirty_next = NULL;
        size_t total = ex->ev_base + ex->n_ev;
        if (ex->on_event == NULL)
            ex->ev_delivered = total;
        while (ex->ev_delivered < total) /* on_event must not free executions */
            ex->on_event(ex, ex->ev_delivered++, ex->arg);
        if (eng->persist != NULL && !ex->dirty && !eng->keep_history)
            hist_evict(ex);
    }
    deliver_done(eng);
    /* acknowledgements of what is now committed (those registered during the callbacks above
     * wait for the next turn) */
    struct after_commit *ac = eng->ac_head;
    eng->ac_head = eng->ac_tail = NULL;
    while (ac != NULL) {
        struct after_commit *next = ac->next;
        ac->fn(ac->arg);
        free(ac);
        ac = next;
    }
    bool handed = false;
    while (eng->deferred.head != NULL && !eng->persist_failed) {
        struct sfn_task *t = container_of(eng->deferred.head, struct sfn_task, deferred_link);
        engine_undefer_start(eng, t);
        task_hand_over(t, false);
        handed = true;
    }
    if (handed && eng->virtual_clock)
        engine_wake(eng); /* virtual time may now jump past attempts nobody will answer */
    if (eng->dirty_head == NULL && eng->done_head == NULL && eng->deferred.head == NULL &&
        eng->ac_head == NULL)
        uv_prepare_stop(&eng->prepare);
}

static void on_idle(uv_idle_t *h)
{
    struct sfn_engine *eng = container_of(h, struct sfn_engine, idle);
    /* with a store, each turn ends in a commit that rewrites the checkpoint of every changed
     * execution: a longer turn commits less, within PERSIST_TURN_NS so I/O keeps its share */
    uint64_t t0 = eng->persist != NULL ? uv_hrtime() : 0;
    for (int chunk = 0; chunk < 8; chunk++) {
        for (int i = 0; i < DRAIN_FRAMES_PER_TURN && eng->rq.head != NULL; i++) {
            struct frame *f = container_of(eng->rq.head, struct frame, rq_link);
            engine_dequeue(eng, f);
            frame_run(f);
        }
        if (eng->persist == NULL || eng->rq.head == NULL || uv_hrtime() - t0 > PERSIST_TURN_NS)
            break;
    }
    if (!uv_is_active((uv_handle_t *)&eng->prepare) &&
        (eng->dirty_head != NULL || eng->done_head != NULL || eng->deferred.head != NULL))
        uv_prepare_start(&eng->prepare, on_prepare);
    if (eng->rq.head != NULL)
        return;
    /* Tasks in flight whose handlers hold nothing on the loop can never complete (a handler
     * that never answers): without the jump their TimeoutSeconds/HeartbeatSeconds, or the
     * execution's TimeoutSeconds, would never fire and the loop would end with the execution
     * still RUNNING. So in-flight tasks hold virtual time back only while the loop has
     * something else alive. */
    if (eng->virtual_clock && eng->n_heap > 0 && eng->deferred.head == NULL &&
        (eng->inflight == 0 || !loop_busy_outside(eng))) {
        /* nothing runnable and nothing outside: jump to the next deadline */
        if (eng->heap[0]->deadline > eng->vnow)
            eng->vnow = eng->heap[0]->deadline;
        timers_fire_due(eng, eng->vnow);
        return;
    }
    uv_idle_stop(&eng->idle);
}

void engine_exec_done(struct sfn_execution *ex)
{
    struct sfn_engine *eng = ex->eng;
    if (ex->done_pending)
        return;
    ex->done_pending = true;
    ex->done_next = NULL;
    struct sfn_execution **pp = &eng->done_head;
    while (*pp != NULL)
        pp = &(*pp)->done_next;
    *pp = ex;
    engine_wake(eng);
}

/* ---- randomness ---- */

uint64_t engine_rand(struct sfn_engine *eng)
{
    /* xorshift64*: quality enough for jitter and UUIDs of a local engine */
    uint64_t x = eng->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    eng->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

uint64_t engine_rand_cb(void *arg)
{
    return engine_rand(arg);
}

/* ---- engine lifecycle ---- */

struct sfn_engine *sfn_engine_new(uv_loop_t *loop, const struct sfn_engine_options *opt)
{
    struct sfn_engine *eng = xcalloc(1, sizeof(*eng));
    eng->loop = loop;
    uv_timer_init(loop, &eng->timer);
    uv_idle_init(loop, &eng->idle);
    uv_prepare_init(loop, &eng->prepare);
    eng->virtual_clock = opt != NULL && opt->virtual_clock;
    eng->vnow = opt != NULL && opt->clock_start_ms > 0 ? opt->clock_start_ms : wall_ms();
    eng->retry_wait_ms = opt != NULL ? opt->retry_wait_ms : -1;
    uint64_t seed = opt != NULL ? opt->seed : 0;
    if (seed == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = ((uint64_t)ts.tv_sec * 1000000007ULL) ^ (uint64_t)ts.tv_nsec ^
               ((uint64_t)(uintptr_t)eng << 16);
    }
    eng->rng = seed != 0 ? seed : 0x9E3779B97F4A7C15ULL;
    json_sizer_init(&eng->sizer);
    eng->region = xstrdup(opt != NULL && opt->region != NULL ? opt->region : "us-east-1");
    eng->account = xstrdup(opt != NULL && opt->account != NULL ? opt->account : "123456789012");
    return eng;
}

static void on_engine_close(uv_handle_t *h)
{
    struct sfn_engine *eng = h->data;
    if (--eng->closing > 0)
        return;
    json_sizer_release(&eng->sizer);
    err_clear(&eng->persist_err);
    while (eng->ac_head != NULL) { /* never called: the engine is gone */
        struct after_commit *next = eng->ac_head->next;
        free(eng->ac_head);
        eng->ac_head = next;
    }
    free(eng->commit_buf);
    free(eng->heap);
    for (size_t i = 0; i < eng->n_res; i++) {
        free(eng->res[i]->pattern);
        free(eng->res[i]);
    }
    free(eng->res);
    free(eng->region);
    free(eng->account);
    free(eng);
}

void sfn_engine_free(struct sfn_engine *eng)
{
    if (eng == NULL)
        return;
    if (eng->persist != NULL && !eng->persist_failed)
        commit_dirty(eng);
    while (eng->execs.head != NULL) {
        struct sfn_execution *ex = container_of(eng->execs.head, struct sfn_execution, link);
        ex->on_done = NULL;
        if (eng->persist != NULL && ex->status == SFN_RUNNING)
            sfn_execution_release(ex); /* a later process continues it */
        else
            sfn_execution_free(ex);
    }
    eng->closing = 3;
    eng->timer.data = eng;
    eng->idle.data = eng;
    eng->prepare.data = eng;
    uv_close((uv_handle_t *)&eng->timer, on_engine_close);
    uv_close((uv_handle_t *)&eng->idle, on_engine_close);
    uv_close((uv_handle_t *)&eng->prepare, on_engine_close);
}

/* ---- resources ---- */

static int register_resource(struct sfn_engine *eng, const char *pattern,
                             const struct sfn_resource_ops *ops, void *arg, bool first,
                             struct err *err)
{
    size_t n = pattern != NULL ? strlen(pattern) : 0;
    if (n == 0 || ops == NULL || ops->start == NULL)
        return err_set(err, "States.Runtime", "cannot register a resource without a pattern and "
                                              "a start function");
    eng->res = xrealloc(eng->res, (eng->n_res + 1) * sizeof(*eng->res));
    struct resource *r = xcalloc(1, sizeof(*r));
    eng->res[eng->n_res++] = r;
    r->prefix = pattern[n - 1] == '*';
    r->pattern = xstrndup(pattern, r->prefix ? n - 1 : n);
    r->ops = ops;
    r->arg = arg;
    r->first = first;
    return 0;
}

int sfn_engine_register_resource(struct sfn_engine *eng, const char *pattern,
                                 const struct sfn_resource_ops *ops, void *arg,
                                 struct err *err)
{
    return register_resource(eng, pattern, ops, arg, false, err);
}

int sfn_engine_register_resource_first(struct sfn_engine *eng, const char *pattern,
                                       const struct sfn_resource_ops *ops, void *arg,
                                       struct err *err)
{
    return register_resource(eng, pattern, ops, arg, true, err);
}

/* The latest registration matching `arn`, those marked first before the others, skipping
 * those with ops `skip` (may be NULL). */
static const struct resource *resource_match(struct sfn_engine *eng, const char *arn,
                                             const struct sfn_resource_ops *skip)
{
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = eng->n_res; i-- > 0;) {
            const struct resource *r = eng->res[i];
            if (r->first != (pass == 0) || r->ops == skip)
                continue;
            if (r->prefix ? strncmp(arn, r->pattern, strlen(r->pattern)) == 0
                          : strcmp(arn, r->pattern) == 0)
                return r;
        }
    }
    return NULL;
}

const struct resource *engine_resource_find(struct sfn_engine *eng, const char *arn)
{
    return resource_match(eng, arn, NULL);
}

int sfn_engine_resource_next(struct sfn_engine *eng, const char *arn,
                             const struct sfn_resource_ops *skip,
                             const struct sfn_resource_ops **ops, void **arg)
{
    const struct resource *r = resource_match(eng, arn, skip);
    if (r == NULL)
        return -1;
    *ops = r->ops;
    *arg = r->arg;
    return 0;
}

/* ---- machines ---- */

struct diag_cb {
    sfn_diag_fn fn;
    void *arg;
};

int sfn_validate(const char *text, size_t len, enum sfn_machine_type type, sfn_diag_fn fn,
                 void *arg)
{
    struct asl_diags d;
    asl_diags_init(&d);
    asl_validate(text, len, type == SFN_EXPRESS ? ASL_EXPRESS : ASL_STANDARD, &d);
    int n = (int)d.n;
    for (size_t i = 0; i < d.n && fn != NULL; i++)
        fn(d.v[i].code, d.v[i].message, d.v[i].location, arg);
    asl_diags_release(&d);
    return n;
}

struct sfn_machine *sfn_machine_compile(struct sfn_engine *eng, const char *text, size_t len,
                                        const char *name, enum sfn_machine_type type,
                                        struct err *err)
{
    struct asl_diags d;
    asl_diags_init(&d);
    struct asl_machine *m =
        asl_machine_compile(text, len, type == SFN_EXPRESS ? ASL_EXPRESS : ASL_STANDARD, &d);
    if (m == NULL) {
        char *msg = asl_diags_render(&d);
        err_set(err, "InvalidDefinition", "Invalid State Machine Definition: '%s'", msg);
        free(msg);
        asl_diags_release(&d);
        return NULL;
    }
    asl_diags_release(&d);
    struct sfn_machine *sm = xcalloc(1, sizeof(*sm));
    sm->eng = eng;
    sm->m = m;
    sm->name = xstrdup(name != NULL && name[0] != '\0' ? name : "StateMachine");
    sm->arn = xasprintf("arn:aws:states:%s:%s:stateMachine:%s", eng->region, eng->account,
                        sm->name);
    sm->refs = 1;
    sm->text = xmalloc(len + 1);
    memcpy(sm->text, text, len);
    sm->text[len] = '\0';
    sm->text_len = len;
    sm->type = type;
    sm->ctx_machine = json_object();
    json_object_set_new(sm->ctx_machine, "Id", json_string(sm->arn));
    json_object_set_new(sm->ctx_machine, "Name", json_string(sm->name));
    return sm;
}

static void machine_unref(struct sfn_machine *sm)
{
    if (--sm->refs > 0)
        return;
    asl_machine_free(sm->m);
    json_decref(sm->ctx_machine);
    free(sm->text);
    free(sm->name);
    free(sm->arn);
    free(sm);
}

void sfn_machine_free(struct sfn_machine *m)
{
    if (m != NULL)
        machine_unref(m);
}

const char *sfn_machine_arn(const struct sfn_machine *m)
{
    return m->arn;
}

const char *sfn_machine_name(const struct sfn_machine *m)
{
    return m->name;
}

enum sfn_machine_type sfn_machine_type(const struct sfn_machine *m)
{
    return m->type;
}

const char *sfn_machine_definition(const struct sfn_machine *m, size_t *len)
{
    if (len != NULL)
        *len = m->text_len;
    return m->text;
}

int64_t sfn_machine_persist_id(const struct sfn_machine *m)
{
    return m->persist_id;
}

void sfn_machine_set_persist_id(struct sfn_machine *m, int64_t id)
{
    m->persist_id = id;
}

/* ---- executions ---- */

static const char *const status_names[] = {
    [SFN_RUNNING] = "RUNNING", [SFN_SUCCEEDED] = "SUCCEEDED", [SFN_FAILED] = "FAILED",
    [SFN_TIMED_OUT] = "TIMED_OUT", [SFN_ABORTED] = "ABORTED",
};

const char *sfn_status_name(enum sfn_status s)
{
    return status_names[s];
}

static void uuid_v4(struct sfn_engine *eng, char out[37])
{
    static const char hex[] = "0123456789abcdef";
    uint64_t a = engine_rand(eng);
    uint64_t b = engine_rand(eng);
    unsigned char bytes[16];
    for (int i = 0; i < 8; i++) {
        bytes[i] = (unsigned char)(a >> (8 * i));
        bytes[8 + i] = (unsigned char)(b >> (8 * i));
    }
    bytes[6] = (unsigned char)((bytes[6] & 0x0f) | 0x40);
    bytes[8] = (unsigned char)((bytes[8] & 0x3f) | 0x80);
    int j = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[j++] = '-';
        out[j++] = hex[bytes[i] >> 4];
        out[j++] = hex[bytes[i] & 15];
    }
    out[j] = '\0';
}

#define EXPRESS_MAX_S 300 /* api.md 10: an Express execution lasts at most 5 minutes */

static void on_exec_timeout(struct etimer *t)
{
    struct sfn_execution *ex = container_of(t, struct sfn_execution, timeout);
    if (ex->status != SFN_RUNNING)
        return;
    /* asl.md 12: TIMED_OUT at exactly start + timeout, even mid-state; one event */
    if (exec_redrivable(ex) && ex->redo == NULL)
        ex->redo = frame_redo_json(ex->root);
    frame_abort(ex->root, false);
    ex->status = SFN_TIMED_OUT;
    ex->stop_ms = engine_now(ex->eng);
    err_reset(&ex->err, ASL_ERR_TIMEOUT, NULL);
    struct hevent *e = hist_add(ex, EV_ExecutionTimedOut, 0);
    e->has_error = true;
    e->error = xstrdup(ASL_ERR_TIMEOUT);
    engine_exec_done(ex);
}

json_t *exec_context(struct sfn_execution *ex)
{
    if (ex->ctx_execution != NULL)
        return ex->ctx_execution;
    /* built when a state first reads $$: a waiting execution does not carry it */
    char ts[40];
    asl_time_format_ms(ex->start_ms, ts, sizeof(ts));
    json_t *c = json_object();
    json_object_set_new(c, "Id", json_string(ex->arn));
    json_object_set(c, "Input", ex->input);
    json_object_set_new(c, "StartTime", json_string(ts));
    json_object_set_new(c, "Name", json_string(ex->name));
    json_object_set_new(c, "RoleArn", json_string(ex->role_arn));
    if (ex->sm->m->type == ASL_STANDARD) /* asl.md 4.5: absent in synchronous Express runs */
        json_object_set_new(c, "RedriveCount", json_integer(ex->redrive_count));
    if (ex->redrive_ms > 0) {
        asl_time_format_ms(ex->redrive_ms, ts, sizeof(ts));
        json_object_set_new(c, "RedriveTime", json_string(ts));
    }
    ex->ctx_execution = c;
    return c;
}

/* The concatenation of parts[0..n) as a new string. */
static char *str_concat(const char *const *parts, size_t n)
{
    size_t len[8];
    size_t total = 0;
    assert(n <= ARRAY_LEN(len));
    for (size_t i = 0; i < n; i++) {
        len[i] = strlen(parts[i]);
        total += len[i];
    }
    char *out = xmalloc(total + 1);
    char *p = out;
    for (size_t i = 0; i < n; i++) {
        memcpy(p, parts[i], len[i]);
        p += len[i];
    }
    *p = '\0';
    return out;
}

struct sfn_execution *exec_alloc(struct sfn_engine *eng, struct sfn_machine *m, const char *name,
                                 const char *role_arn, json_t *input, int64_t start_ms,
                                 const struct sfn_execution_options *opt)
{
    struct sfn_execution *ex = xcalloc(1, sizeof(*ex));
    ex->eng = eng;
    ex->sm = m;
    m->refs++;
    if (name != NULL) {
        engine_rand(eng); /* what uuid_v4 draws: a seeded run's later draws stay the same */
        engine_rand(eng);
        ex->name = xstrdup(name);
    } else {
        char uuid[37];
        uuid_v4(eng, uuid);
        ex->name = xstrdup(uuid);
    }
    if (m->m->type == ASL_EXPRESS) { /* api.md 2.2 */
        char run[37];
        uuid_v4(eng, run);
        ex->arn = xasprintf("arn:aws:states:%s:%s:express:%s:%s:%s", eng->region, eng->account,
                            m->name, ex->name, run);
    } else { /* at every start: no printf */
        const char *parts[] = {"arn:aws:states:", eng->region, ":", eng->account, ":execution:",
                               m->name, ":", ex->name};
        ex->arn = str_concat(parts, ARRAY_LEN(parts));
    }
    ex->role_arn = xstrdup(role_arn != NULL ? role_arn : "arn:aws:iam::123456789012:role/sfn-local");
    ex->input = json_incref(input != NULL ? input : json_object());
    if (input == NULL)
        json_decref(ex->input); /* json_object() was already a new reference */
    ex->start_ms = start_ms;
    ex->status = SFN_RUNNING;
    ex->timeout.slot = SIZE_MAX;
    ex->timeout.fire = on_exec_timeout;
    if (opt != NULL) {
        ex->on_done = opt->on_done;
        ex->on_event = opt->on_event;
        ex->arg = opt->arg;
    }
    dlist_push_front(&eng->execs, &ex->link);
    return ex;
}

struct sfn_execution *sfn_execution_start(struct sfn_engine *eng, struct sfn_machine *m,
                                          json_t *input, const struct sfn_execution_options *opt,
                                          struct err *err)
{
    if (input != NULL && json_sizer_size(&eng->sizer, input, ASL_PAYLOAD_MAX) > ASL_PAYLOAD_MAX)
        return err_set(err, ASL_ERR_DATA_LIMIT,
                       "The execution input exceeds the maximum number of bytes service limit."),
               NULL;
    struct sfn_execution *ex =
        exec_alloc(eng, m, opt != NULL ? opt->name : NULL, opt != NULL ? opt->role_arn : NULL,
                   input, engine_now(eng), opt);
    struct hevent *e = hist_add(ex, EV_ExecutionStarted, 0);
    e->data = json_incref(ex->input);
    json_t *role = json_string(ex->role_arn); /* json_pack("{s:s}") without the format */
    if (role != NULL) {
        e->details = json_object();
        json_object_set_new_nocheck(e->details, "roleArn", role);
    }
    ex->root = frame_new(ex, NULL, FRAME_ROOT, 0, &m->m->top, json_incref(ex->input));
    int64_t limit = m->m->timeout_s;
    if (m->type == SFN_EXPRESS && (limit <= 0 || limit > EXPRESS_MAX_S))
        limit = EXPRESS_MAX_S;
    if (limit > 0)
        engine_timer_arm(eng, &ex->timeout, ex->start_ms + limit * 1000);
    engine_enqueue(eng, ex->root);
    return ex;
}

/* Ends a running execution from outside: every frame aborted, then `type` recorded. */
static void execution_end(struct sfn_execution *ex, enum sfn_status status, enum ev_type type,
                          const char *error, const char *cause)
{
    if (ex->status != SFN_RUNNING)
        return;
    if (exec_redrivable(ex) && ex->redo == NULL)
        ex->redo = frame_redo_json(ex->root); /* api.md 9.2: where a redrive resumes */
    frame_abort(ex->root, true);
    int64_t prev = type == EV_ExecutionAborted ? 0 : ex->root->last_event; /* api.md 7.4 */
    engine_timer_cancel(ex->eng, &ex->timeout);
    ex->status = status;
    ex->stop_ms = engine_now(ex->eng);
    err_clear(&ex->err);
    if (error != NULL || cause != NULL)
        err_set_raw(&ex->err, error, cause);
    struct hevent *e = hist_add(ex, type, prev);
    if (error != NULL || cause != NULL) {
        e->has_error = true;
        e->error = error != NULL ? xstrdup(error) : NULL;
        e->cause = cause != NULL ? xstrdup(cause) : NULL;
    }
    engine_exec_done(ex);
}

void sfn_execution_stop(struct sfn_execution *ex, const char *error, const char *cause)
{
    execution_end(ex, SFN_ABORTED, EV_ExecutionAborted, error, cause);
}

void sfn_execution_fail(struct sfn_execution *ex, const char *error, const char *cause)
{
    execution_end(ex, SFN_FAILED, EV_ExecutionFailed, error, cause);
}

void sfn_execution_free(struct sfn_execution *ex)
{
    if (ex == NULL)
        return;
    struct sfn_engine *eng = ex->eng;
    if (ex->status == SFN_RUNNING) {
        ex->on_done = NULL;
        sfn_execution_stop(ex, NULL, NULL);
    }
    if (ex->dirty && eng->persist != NULL && !eng->persist_failed) {
        /* what changed in this turn (a stop, the last events) is committed first */
        struct err err = ERR_INIT;
        struct sfn_execution *one[1] = {ex};
        if (eng->persist->commit(eng->persist_arg, one, 1, &err) != 0) {
            err_move(&eng->persist_err, &err);
            eng->persist_failed = true;
        }
        err_clear(&err);
    }
    dirty_unlink(ex);
    engine_timer_cancel(eng, &ex->timeout);
    for (struct sfn_execution **pp = &eng->done_head; *pp != NULL; pp = &(*pp)->done_next) {
        if (*pp == ex) {
            *pp = ex->done_next;
            break;
        }
    }
    if (ex->root != NULL)
        frame_free(ex->root);
    dlist_remove(&eng->execs, &ex->link);
    hist_release(ex);
    json_decref(ex->input);
    json_decref(ex->output);
    json_decref(ex->ctx_execution);
    json_decref(ex->redo);
    err_clear(&ex->err);
    free(ex->name);
    free(ex->arn);
    free(ex->role_arn);
    machine_unref(ex->sm);
    free(ex);
}

void sfn_execution_release(struct sfn_execution *ex)
{
    if (ex == NULL)
        return;
    struct sfn_engine *eng = ex->eng;
    if (ex->dirty && eng->persist != NULL && !eng->persist_failed) {
        struct err err = ERR_INIT;
        struct sfn_execution *one[1] = {ex};
        if (eng->persist->commit(eng->persist_arg, one, 1, &err) != 0) {
            err_move(&eng->persist_err, &err);
            eng->persist_failed = true;
        }
        err_clear(&err);
    }
    dirty_unlink(ex);
    ex->releasing = true;
    ex->on_done = NULL;
    if (ex->status == SFN_RUNNING)
        ex->status = SFN_ABORTED; /* in memory only: nothing is recorded */
    sfn_execution_free(ex);
}

enum sfn_status sfn_execution_status(const struct sfn_execution *ex)
{
    return ex->status;
}

const char *sfn_execution_arn(const struct sfn_execution *ex)
{
    return ex->arn;
}

json_t *sfn_execution_output(const struct sfn_execution *ex)
{
    return ex->status == SFN_SUCCEEDED ? ex->output : NULL;
}

const struct err *sfn_execution_error(const struct sfn_execution *ex)
{
    return &ex->err;
}

size_t sfn_execution_history_size(const struct sfn_execution *ex)
{
    return ex->ev_base + ex->n_ev;
}

size_t sfn_execution_history_first(const struct sfn_execution *ex)
{
    return ex->ev_base;
}

size_t sfn_execution_history_committed(const struct sfn_execution *ex)
{
    return ex->ev_committed;
}

json_t *sfn_execution_event(const struct sfn_execution *ex, size_t i, bool include_data)
{
    if (i < ex->ev_base || i - ex->ev_base >= ex->n_ev)
        return NULL;
    return hist_event_json(ex, hist_at(ex, i - ex->ev_base), include_data);
}

int sfn_execution_event_append(const struct sfn_execution *ex, size_t i, bool include_data,
                               struct buf *out, int64_t *ts_ms)
{
    if (i < ex->ev_base || i - ex->ev_base >= ex->n_ev)
        return -1;
    const struct hevent *e = hist_at(ex, i - ex->ev_base);
    hist_event_append(e, include_data, out);
    if (ts_ms != NULL)
        *ts_ms = e->ts_ms;
    return 0;
}

const char *sfn_execution_event_type(const struct sfn_execution *ex, size_t i)
{
    if (i < ex->ev_base || i - ex->ev_base >= ex->n_ev)
        return NULL;
    return hist_type_name(hist_at(ex, i - ex->ev_base)->type);
}

const char *sfn_execution_name(const struct sfn_execution *ex)
{
    return ex->name;
}

struct sfn_machine *sfn_execution_machine(const struct sfn_execution *ex)
{
    return ex->sm;
}

json_t *sfn_execution_input(const struct sfn_execution *ex)
{
    return ex->input;
}

int64_t sfn_execution_start_ms(const struct sfn_execution *ex)
{
    return ex->start_ms;
}

int64_t sfn_execution_stop_ms(const struct sfn_execution *ex)
{
    return ex->status == SFN_RUNNING ? 0 : ex->stop_ms;
}

int64_t sfn_execution_persist_id(const struct sfn_execution *ex)
{
    return ex->persist_id;
}

void sfn_execution_set_persist_id(struct sfn_execution *ex, int64_t id)
{
    ex->persist_id = id;
}

void sfn_engine_after_commit(struct sfn_engine *eng, void (*fn)(void *arg), void *arg)
{
    struct after_commit *ac = xmalloc(sizeof(*ac));
    ac->fn = fn;
    ac->arg = arg;
    ac->next = NULL;
    if (eng->ac_tail != NULL)
        eng->ac_tail->next = ac;
    else
        eng->ac_head = ac;
    eng->ac_tail = ac;
    if (!eng->closing && !eng->persist_failed &&
        !uv_is_active((uv_handle_t *)&eng->prepare))
        uv_prepare_start(&eng->prepare, on_prepare);
}

void sfn_engine_keep_history(struct sfn_engine *eng, bool keep)
{
    eng->keep_history = keep;
}

void sfn_engine_set_persist(struct sfn_engine *eng, const struct sfn_persist_ops *ops,
                            void *arg)
{
    eng->persist = ops;
    eng->persist_arg = arg;
}

const struct err *sfn_engine_persist_error(const struct sfn_engine *eng)
{
    return eng->persist_err.set ? &eng->persist_err : NULL;
}
