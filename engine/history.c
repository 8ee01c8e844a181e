/* engine/history.c - history events kept compactly in memory (state names borrowed from the
 * machine, data shared by refcount, nothing serialised) and rendered in AWS's
 * GetExecutionHistory shape on demand (api.md 7.2-7.3). */
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"
#include "util/json.h"
#include "util/xalloc.h"

static const char *const type_names[] = {
#define EV(name) #name,
#include "engine/events.def"
#undef EV
};

/* Lengths of the names, so that serialising an event measures none of its constant parts. */
static const unsigned char type_lens[] = {
#define EV(name) sizeof(#name) - 1,
#include "engine/events.def"
#undef EV
};

const char *hist_type_name(enum ev_type t)
{
    return type_names[t];
}

/* Chunk and offset of in-memory event i: chunk k starts at 16 * (2^k - 1). */
static size_t chunk_of(size_t i, size_t *off)
{
    size_t q = i / 16 + 1;
    size_t k = 0;
    while ((q >> (k + 1)) != 0)
        k++;
    *off = i - 16 * (((size_t)1 << k) - 1);
    return k;
}

struct hevent *hist_at(const struct sfn_execution *ex, size_t i)
{
    size_t off;
    size_t k = chunk_of(i, &off);
    return &ex->ev_chunk[k][off];
}

struct hevent *hist_add(struct sfn_execution *ex, enum ev_type type, int64_t prev)
{
    size_t off;
    size_t k = chunk_of(ex->n_ev, &off);
    if (ex->ev_chunk == NULL)
        ex->ev_chunk = xcalloc(HIST_CHUNKS, sizeof(*ex->ev_chunk));
    if (ex->ev_chunk[k] == NULL)
        ex->ev_chunk[k] = xmalloc(((size_t)16 << k) * sizeof(struct hevent));
    struct hevent *e = &ex->ev_chunk[k][off];
    ex->n_ev++;
    memset(e, 0, sizeof(*e));
    e->id = (int64_t)(ex->ev_base + ex->n_ev);
    e->prev = prev;
    e->ts_ms = engine_now(ex->eng);
    e->type = type;
    e->index = -1;
    engine_dirty(ex); /* on_event is called at the end of the turn, the event complete */
    return e;
}

void hist_release(struct sfn_execution *ex)
{
    for (size_t i = 0; i < ex->n_ev; i++) {
        struct hevent *e = hist_at(ex, i);
        json_decref(e->data);
        json_decref(e->details);
        free(e->error);
        free(e->cause);
    }
    for (size_t k = 0; k < HIST_CHUNKS && ex->ev_chunk != NULL; k++)
        free(ex->ev_chunk[k]);
    free(ex->ev_chunk);
    ex->ev_chunk = NULL;
    ex->n_ev = 0;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s);
    size_t m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Which member carries e->data for this type. */
static const char *data_member(enum ev_type t, const char *tn)
{
    if (t == EV_TaskScheduled)
        return "parameters";
    if (t == EV_ExecutionStarted || t == EV_ActivityScheduled || t == EV_LambdaFunctionScheduled ||
        ends_with(tn, "StateEntered"))
        return "input";
    return "output";
}

static bool has_no_details(enum ev_type t)
{
    switch (t) {
    case EV_ParallelStateStarted:
    case EV_ParallelStateSucceeded:
    case EV_ParallelStateFailed:
    case EV_ParallelStateAborted:
    case EV_MapStateSucceeded:
    case EV_MapStateFailed:
    case EV_MapStateAborted:
    case EV_TaskStateAborted:
    case EV_WaitStateAborted:
    case EV_LambdaFunctionStarted:
    case EV_MapRunSucceeded:
    case EV_MapRunAborted:
        return true;
    default:
        return false;
    }
}

/* The name of the member holding an event's details: "taskScheduledEventDetails". */
static void details_member(const char *tn, char *member, size_t n)
{
    if (ends_with(tn, "StateEntered"))
        snprintf(member, n, "stateEnteredEventDetails");
    else if (ends_with(tn, "StateExited"))
        snprintf(member, n, "stateExitedEventDetails");
    else
        snprintf(member, n, "%c%sEventDetails", tn[0] + ('a' - 'A'), tn + 1);
}

json_t *hist_event_json(const struct sfn_execution *ex, const struct hevent *e, bool data)
{
    (void)ex;
    const char *tn = type_names[e->type];
    json_t *o = json_object();
    json_object_set_new(o, "timestamp", json_real((double)e->ts_ms / 1000.0));
    json_object_set_new(o, "type", json_string(tn));
    json_object_set_new(o, "id", json_integer(e->id));
    json_object_set_new(o, "previousEventId", json_integer(e->prev));
    if (has_no_details(e->type))
        return o;

    char member[96];
    details_member(tn, member, sizeof(member));
    json_t *d = json_object();
    if (e->name != NULL)
        json_object_set_new(d, "name", json_string(e->name));
    if (e->details != NULL)
        json_object_update(d, e->details);
    if (e->type == EV_MapStateStarted && e->index >= 0)
        json_object_set_new(d, "length", json_integer(e->index));
    else if (e->index >= 0)
        json_object_set_new(d, "index", json_integer(e->index));
    if (e->data != NULL && data) {
        const char *dm = data_member(e->type, tn);
        char *text = json_compact(e->data);
        json_object_set_new(d, dm, json_string(text));
        free(text);
        if (strcmp(dm, "parameters") != 0) {
            char dd[32];
            snprintf(dd, sizeof(dd), "%sDetails", dm);
            json_object_set_new(d, dd, json_pack("{s:b}", "truncated", 0));
        }
    }
    if (e->has_error) {
        if (e->error != NULL)
            json_object_set_new(d, "error", json_string(e->error));
        if (e->cause != NULL)
            json_object_set_new(d, "cause", json_string(e->cause));
    }
    json_object_set_new(o, member, d);
    return o;
}

/* Whether type name tn (tl bytes) ends with `suffix`. */
static bool type_ends_with(const char *tn, size_t tl, const char *suffix, size_t n)
{
    return tl >= n && memcmp(tn + tl - n, suffix, n) == 0;
}

/* Starts a member of an object being written: `lit` is its quoted key and colon. */
static void key_lit(struct buf *b, const char *lit, size_t n, bool *first)
{
    if (!*first)
        buf_putc(b, ',');
    *first = false;
    buf_add(b, lit, n);
}

#define KEY_LIT(b, lit, first) key_lit(b, lit, sizeof(lit) - 1, first)

/* The same text as json_compact(hist_event_json(...)), written straight into `b` once per
 * event at commit time: the constant parts are literals, the data is escaped in one pass. */
void hist_event_append(const struct hevent *e, bool data, struct buf *b)
{
    const char *tn = type_names[e->type];
    size_t tl = type_lens[e->type];
    buf_add(b, "{\"timestamp\":", 13);
    json_real_append(b, (double)e->ts_ms / 1000.0);
    buf_add(b, ",\"type\":\"", 9); /* type names need no escapes */
    buf_add(b, tn, tl);
    buf_add(b, "\",\"id\":", 7);
    json_integer_append(b, e->id);
    buf_add(b, ",\"previousEventId\":", 19);
    json_integer_append(b, e->prev);
    if (has_no_details(e->type)) {
        buf_putc(b, '}');
        return;
    }
    bool entered = type_ends_with(tn, tl, "StateEntered", 12);
    if (entered) {
        buf_puts(b, ",\"stateEnteredEventDetails\":{");
    } else if (type_ends_with(tn, tl, "StateExited", 11)) {
        buf_puts(b, ",\"stateExitedEventDetails\":{");
    } else {
        buf_add(b, ",\"", 2);
        buf_putc(b, (char)(tn[0] + ('a' - 'A')));
        buf_add(b, tn + 1, tl - 1);
        buf_puts(b, "EventDetails\":{");
    }
    bool first = true;
    if (e->name != NULL) {
        KEY_LIT(b, "\"name\":", &first);
        json_string_append(b, e->name, strlen(e->name));
    }
    if (e->details != NULL) {
        const char *key;
        json_t *v;
        json_object_foreach(e->details, key, v) {
            if (!first)
                buf_putc(b, ',');
            first = false;
            json_string_append(b, key, strlen(key));
            buf_putc(b, ':');
            json_compact_append(b, v);
        }
    }
    if (e->index >= 0) {
        if (e->type == EV_MapStateStarted)
            KEY_LIT(b, "\"length\":", &first);
        else
            KEY_LIT(b, "\"index\":", &first);
        json_integer_append(b, e->index);
    }
    if (e->data != NULL && data) {
        /* data_member()'s choice */
        if (e->type == EV_TaskScheduled) {
            KEY_LIT(b, "\"parameters\":", &first);
            json_compact_string_append(b, e->data);
        } else if (e->type == EV_ExecutionStarted || e->type == EV_ActivityScheduled ||
                   e->type == EV_LambdaFunctionScheduled || entered) {
            KEY_LIT(b, "\"input\":", &first);
            json_compact_string_append(b, e->data);
            buf_puts(b, ",\"inputDetails\":{\"truncated\":false}");
        } else {
            KEY_LIT(b, "\"output\":", &first);
            json_compact_string_append(b, e->data);
            buf_puts(b, ",\"outputDetails\":{\"truncated\":false}");
        }
    }
    if (e->has_error) {
        if (e->error != NULL) {
            KEY_LIT(b, "\"error\":", &first);
            json_string_append(b, e->error, strlen(e->error));
        }
        if (e->cause != NULL) {
            KEY_LIT(b, "\"cause\":", &first);
            json_string_append(b, e->cause, strlen(e->cause));
        }
    }
    buf_add(b, "}}", 2);
}
