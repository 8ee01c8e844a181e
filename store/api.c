/* store/api.c - the reads and writes the HTTP API server (server/) needs beyond read.c: state
 * machines by name or ARN (with their status, revisionId, logging and tracing), in pages, the
 * revision an execution runs, updates (a new revision) and deletion; executions by ARN and one
 * machine's executions in pages (keyset paging on the last ARN returned, so a page never skips
 * or repeats rows while executions are added); activities; tags. Every statement is prepared
 * once, when the store is opened for writing (store.c's table), and kept. Writes are one
 * transaction each, committed before the function returns. */
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"
#include "util/xalloc.h"

/* Kept statement i, reset and cleared; NULL with err set on a read-only store (nothing is
 * prepared there). */
static sqlite3_stmt *stmt(struct sfn_store *st, int i, struct err *err)
{
    if (st->stmt[i] == NULL) {
        err_set(err, STORE_ERR, "the store '%s' was opened read-only", st->path);
        return NULL;
    }
    return store_stmt(st, i);
}

static int tx_begin(struct sfn_store *st, struct err *err)
{
    if (st->fatal)
        return err_set(err, STORE_ERR, "the store '%s' has failed before", st->path);
    sqlite3_stmt *s = stmt(st, ST_BEGIN, err);
    return s == NULL ? -1 : store_step_done(st, s, err, "cannot be written");
}

static int tx_commit(struct sfn_store *st, struct err *err)
{
    if (store_step_done(st, store_stmt(st, ST_COMMIT), err, "cannot be written") == 0)
        return 0;
    if (!sqlite3_get_autocommit(st->db))
        store_step_done(st, store_stmt(st, ST_ROLLBACK), err, "cannot be written");
    return -1;
}

/* Ends a failed transaction; returns -1 (err was set by the failure). */
static int tx_rollback(struct sfn_store *st)
{
    if (!sqlite3_get_autocommit(st->db)) {
        sqlite3_step(store_stmt(st, ST_ROLLBACK));
        sqlite3_reset(st->stmt[ST_ROLLBACK]);
    }
    return -1;
}

static void bind_text(sqlite3_stmt *s, int i, const char *text)
{
    if (text != NULL)
        sqlite3_bind_text(s, i, text, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, i);
}

/* ---- state machines ---- */

/* The columns of store.c's MACHINE_COLS. */
static int emit_machine(sqlite3_stmt *s, const struct store_sink *to)
{
    struct sfn_store_machine_rec m = {
        .name = store_col_text(s, 0),
        .arn = store_col_text(s, 1),
        .type = store_col_text(s, 2),
        .role_arn = store_col_text(s, 3),
        .definition = (const char *)sqlite3_column_blob(s, 4),
        .definition_len = (size_t)sqlite3_column_bytes(s, 4),
        .revision_id = sqlite3_column_int64(s, 5),
        .created_ms = sqlite3_column_int64(s, 6),
        .status = store_col_text(s, 7),
        .logging = store_col_text(s, 8),
        .tracing = store_col_text(s, 9),
        .revision_uuid = store_col_text(s, 10),
        .updated_ms = sqlite3_column_int64(s, 11),
    };
    if (m.definition == NULL)
        m.definition = "";
    return to->fn.machine != NULL ? to->fn.machine(&m, to->arg) : 0;
}

/* Runs a kept statement that finds one machine (already bound) and calls fn (or NULL) with
 * it: 0 found, 1 not found, -1 failed. */
static int get_one_machine(struct sfn_store *st, sqlite3_stmt *s, sfn_store_machine_fn fn,
                           void *arg, struct err *err)
{
    const struct store_sink to = {.fn.machine = fn, .arg = arg};
    return store_one_row(st, s, emit_machine, &to, err);
}

int sfn_store_get_machine(struct sfn_store *st, const char *name_or_arn,
                          sfn_store_machine_fn fn, void *arg, struct err *err)
{
    /* names cannot contain ':' (api.md 2.1), so "arn:" tells an ARN */
    bool by_arn = strncmp(name_or_arn, "arn:", 4) == 0;
    sqlite3_stmt *s = stmt(st, by_arn ? ST_MACHINE_BY_ARN : ST_MACHINE_BY_NAME, err);
    if (s == NULL)
        return -1;
    sqlite3_bind_text(s, 1, name_or_arn, -1, SQLITE_STATIC);
    return get_one_machine(st, s, fn, arg, err);
}

uint64_t sfn_store_machines_gen(const struct sfn_store *st)
{
    return st->machines_gen;
}

long sfn_store_list_machines(struct sfn_store *st, const char *after_name, size_t limit,
                             sfn_store_machine_fn fn, void *arg, struct err *err)
{
    /* api.md 4: by name, plain code-unit order (BINARY collation compares bytes; UTF-8 byte
     * order equals code-point order) */
    sqlite3_stmt *s = stmt(st, ST_MACHINE_PAGE, err);
    if (s == NULL)
        return -1;
    bind_text(s, 1, after_name);
    sqlite3_bind_int64(s, 2, limit > 0 ? (int64_t)limit : -1);
    const struct store_sink to = {.fn.machine = fn, .arg = arg};
    return store_rows(st, s, emit_machine, &to, err);
}

int sfn_store_execution_machine(struct sfn_store *st, const char *exec_arn,
                                sfn_store_machine_fn fn, void *arg, struct err *err)
{
    sqlite3_stmt *s = stmt(st, ST_MACHINE_OF_EXEC, err);
    if (s == NULL)
        return -1;
    sqlite3_bind_text(s, 1, exec_arn, -1, SQLITE_STATIC);
    return get_one_machine(st, s, fn, arg, err);
}

int sfn_store_running_definitions(struct sfn_store *st,
                                  void (*fn)(const char *text, size_t len, void *arg), void *arg,
                                  struct err *err)
{
    sqlite3_stmt *s = stmt(st, ST_RUNNING_DEFS, err);
    if (s == NULL)
        return -1;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *text = (const char *)sqlite3_column_blob(s, 0);
        fn(text != NULL ? text : "", (size_t)sqlite3_column_bytes(s, 0), arg);
    }
    int result = rc == SQLITE_DONE ? 0 : store_db_err(st, err, "cannot be read");
    sqlite3_reset(s);
    return result;
}

/* Sets the logging, tracing and revisionId of revision `rid`. */
static int revision_config(struct sfn_store *st, int64_t rid, const char *logging,
                           const char *tracing, const char *uuid, struct err *err)
{
    sqlite3_stmt *s = store_stmt(st, ST_REVISION_CONFIG);
    sqlite3_bind_int64(s, 1, rid);
    bind_text(s, 2, logging);
    bind_text(s, 3, tracing);
    bind_text(s, 4, uuid);
    return store_step_done(st, s, err, "cannot record a state machine");
}

/* Sets each tag of `tags` on `arn` (inside a transaction); TooManyTags past `max`. */
static int put_tags(struct sfn_store *st, const char *arn, json_t *tags, size_t max,
                    struct err *err)
{
    size_t i;
    json_t *t;
    json_array_foreach(tags, i, t) {
        const char *key = json_string_value(json_object_get(t, "key"));
        const char *value = json_string_value(json_object_get(t, "value"));
        if (key == NULL)
            continue;
        sqlite3_stmt *s = store_stmt(st, ST_PUT_TAG);
        sqlite3_bind_text(s, 1, arn, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, value != NULL ? value : "", -1, SQLITE_STATIC);
        if (store_step_done(st, s, err, "cannot record tags") != 0)
            return -1;
    }
    sqlite3_stmt *s = store_stmt(st, ST_COUNT_TAGS);
    sqlite3_bind_text(s, 1, arn, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    int64_t n = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    if (rc != SQLITE_ROW)
        return store_db_err(st, err, "cannot record tags");
    if ((size_t)n > max)
        return err_set(err, "TooManyTags", "the resource would have %lld tags, more than %zu",
                       (long long)n, max);
    return 0;
}

struct sfn_machine *sfn_store_create_machine(struct sfn_store *st, struct sfn_engine *eng,
                                             const char *name, const char *text, size_t len,
                                             enum sfn_machine_type type,
                                             const struct sfn_store_machine_config *cfg,
                                             struct err *err)
{
    struct sfn_machine *m = sfn_machine_compile(eng, text, len, name, type, err);
    if (m == NULL)
        return NULL;
    if (tx_begin(st, err) != 0) {
        sfn_machine_free(m);
        return NULL;
    }
    sqlite3_stmt *s = store_stmt(st, ST_MACHINE_BY_NAME);
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    int found = get_one_machine(st, s, NULL, NULL, err);
    if (found == 0)
        err_set(err, "StateMachineAlreadyExists", "the state machine '%s' exists", name);
    if (found != 1 || store_machine_ensure(st, m, cfg->role_arn, err) != 0 ||
        revision_config(st, sfn_machine_persist_id(m), cfg->logging, cfg->tracing, NULL,
                        err) != 0 ||
        (cfg->tags != NULL && put_tags(st, sfn_machine_arn(m), cfg->tags, SIZE_MAX, err) != 0) ||
        tx_commit(st, err) != 0) {
        tx_rollback(st);
        sfn_machine_free(m);
        return NULL;
    }
    return m;
}

/* The current revision of machine `arn`, copied out of a callback. */
struct cur_rev {
    bool found;
    char *name, *role_arn, *logging, *tracing, *definition;
    size_t definition_len;
};

static char *dup_or_null(const char *s)
{
    return s != NULL ? xstrdup(s) : NULL;
}

static int on_cur_rev(const struct sfn_store_machine_rec *m, void *arg)
{
    struct cur_rev *c = arg;
    c->found = true;
    c->name = xstrdup(m->name);
    c->role_arn = dup_or_null(m->role_arn);
    c->logging = dup_or_null(m->logging);
    c->tracing = dup_or_null(m->tracing);
    c->definition = xstrndup(m->definition, m->definition_len);
    c->definition_len = m->definition_len;
    return 0;
}

static void cur_rev_release(struct cur_rev *c)
{
    free(c->name);
    free(c->role_arn);
    free(c->logging);
    free(c->tracing);
    free(c->definition);
}

static bool same_text(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Inserts revision `next` of machine `mid` with the given members and makes it current. */
static int insert_revision(struct sfn_store *st, int64_t mid, const char *text, size_t len,
                           const char *role, const char *logging, const char *tracing,
                           const char *uuid, struct err *err)
{
    sqlite3_stmt *s = store_stmt(st, ST_CUR_REVISION);
    sqlite3_bind_int64(s, 1, mid);
    int rc = sqlite3_step(s);
    int64_t revision = rc == SQLITE_ROW ? sqlite3_column_int64(s, 1) : 0;
    sqlite3_reset(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return store_db_err(st, err, "cannot record a state machine");
    s = store_stmt(st, ST_INS_REVISION);
    sqlite3_bind_int64(s, 1, mid);
    sqlite3_bind_int64(s, 2, revision + 1);
    sqlite3_bind_text(s, 3, text, (int)len, SQLITE_STATIC);
    bind_text(s, 4, role);
    sqlite3_bind_int64(s, 5, store_wall_ms());
    if (store_step_done(st, s, err, "cannot record a state machine") != 0)
        return -1;
    int64_t rid = sqlite3_last_insert_rowid(st->db);
    if (revision_config(st, rid, logging, tracing, uuid, err) != 0)
        return -1;
    s = store_stmt(st, ST_SET_REVISION);
    sqlite3_bind_int64(s, 1, mid);
    sqlite3_bind_int64(s, 2, rid);
    bind_text(s, 3, role);
    return store_step_done(st, s, err, "cannot record a state machine");
}

int sfn_store_update_machine(struct sfn_store *st, const char *arn, const char *text, size_t len,
                             const struct sfn_store_machine_config *cfg,
                             const char *revision_uuid, sfn_store_machine_fn fn, void *arg,
                             struct err *err)
{
    if (tx_begin(st, err) != 0)
        return -1;
    struct cur_rev cur = {0};
    sqlite3_stmt *s = store_stmt(st, ST_MACHINE_BY_ARN);
    sqlite3_bind_text(s, 1, arn, -1, SQLITE_STATIC);
    int rc = get_one_machine(st, s, on_cur_rev, &cur, err);
    if (rc != 0) {
        tx_rollback(st);
        cur_rev_release(&cur);
        return rc;
    }
    const char *new_text = text != NULL ? text : cur.definition;
    size_t new_len = text != NULL ? len : cur.definition_len;
    const char *role = cfg->role_arn != NULL ? cfg->role_arn : cur.role_arn;
    const char *logging = cfg->logging != NULL ? cfg->logging : cur.logging;
    const char *tracing = cfg->tracing != NULL ? cfg->tracing : cur.tracing;
    /* api.md 5.3: values equal to the current revision make no new revision */
    bool same = new_len == cur.definition_len && memcmp(new_text, cur.definition, new_len) == 0 &&
                same_text(role, cur.role_arn) && same_text(logging, cur.logging) &&
                same_text(tracing, cur.tracing);
    int64_t mid = 0;
    if (!same) {
        s = store_stmt(st, ST_FIND_MACHINE);
        sqlite3_bind_text(s, 1, cur.name, -1, SQLITE_STATIC);
        if (sqlite3_step(s) == SQLITE_ROW)
            mid = sqlite3_column_int64(s, 0);
        sqlite3_reset(s);
    }
    if ((!same && (mid == 0 || insert_revision(st, mid, new_text, new_len, role, logging,
                                               tracing, revision_uuid, err) != 0)) ||
        tx_commit(st, err) != 0) {
        if (!err->set)
            store_db_err(st, err, "cannot record a state machine");
        tx_rollback(st);
        cur_rev_release(&cur);
        return -1;
    }
    cur_rev_release(&cur);
    s = store_stmt(st, ST_MACHINE_BY_ARN);
    sqlite3_bind_text(s, 1, arn, -1, SQLITE_STATIC);
    return get_one_machine(st, s, fn, arg, err) < 0 ? -1 : 0;
}

int sfn_store_machine_set_status(struct sfn_store *st, const char *arn, const char *status,
                                 struct err *err)
{
    sqlite3_stmt *s = stmt(st, ST_MACHINE_STATUS, err);
    if (s == NULL)
        return -1;
    sqlite3_bind_text(s, 1, arn, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, status, -1, SQLITE_STATIC);
    if (store_step_done(st, s, err, "cannot record a state machine") != 0)
        return -1;
    return sqlite3_changes(st->db) > 0 ? 0 : 1;
}

int sfn_store_delete_machine(struct sfn_store *st, const char *arn, struct err *err)
{
    if (tx_begin(st, err) != 0)
        return -1;
    static const int steps[] = {ST_DEL_TAGS, ST_DEL_MACHINE_EXECS, ST_DEL_MACHINE};
    int changed = 0;
    for (size_t i = 0; i < ARRAY_LEN(steps); i++) {
        sqlite3_stmt *s = store_stmt(st, steps[i]);
        sqlite3_bind_text(s, 1, arn, -1, SQLITE_STATIC);
        if (store_step_done(st, s, err, "cannot delete a state machine") != 0)
            return tx_rollback(st);
        changed = sqlite3_changes(st->db); /* of the last step: the machine's row */
    }
    if (tx_commit(st, err) != 0)
        return -1;
    return changed > 0 ? 0 : 1;
}

/* ---- executions ---- */

int sfn_store_find_execution(struct sfn_store *st, const char *arn, sfn_store_execution_fn fn,
                             void *arg, struct err *err)
{
    sqlite3_stmt *s = stmt(st, ST_EXEC_BY_ARN, err);
    if (s == NULL)
        return -1;
    sqlite3_bind_text(s, 1, arn, -1, SQLITE_STATIC);
    const struct store_sink to = {.fn.execution = fn, .arg = arg};
    return store_one_row(st, s, store_emit_execution, &to, err);
}

long sfn_store_page_executions(struct sfn_store *st, const char *machine_arn, const char *status,
                               const char *redrive, const char *after_arn, size_t limit, sfn_store_execution_fn fn,
                               void *arg, struct err *err)
{
    int64_t after_start = 0, after_id = 0;
    if (after_arn != NULL) {
        sqlite3_stmt *c = stmt(st, ST_EXEC_CURSOR, err);
        if (c == NULL)
            return -1;
        sqlite3_bind_text(c, 1, after_arn, -1, SQLITE_STATIC);
        sqlite3_bind_text(c, 2, machine_arn, -1, SQLITE_STATIC);
        int rc = sqlite3_step(c);
        if (rc == SQLITE_ROW) {
            after_start = sqlite3_column_int64(c, 0);
            after_id = sqlite3_column_int64(c, 1);
        }
        sqlite3_reset(c);
        if (rc == SQLITE_DONE)
            return -2;
        if (rc != SQLITE_ROW)
            return store_db_err(st, err, "cannot be read");
    }
    sqlite3_stmt *s = stmt(st, ST_EXEC_PAGE, err);
    if (s == NULL)
        return -1;
    sqlite3_bind_text(s, 1, machine_arn, -1, SQLITE_STATIC);
    bind_text(s, 2, status);
    sqlite3_bind_int(s, 3, after_arn != NULL);
    sqlite3_bind_int64(s, 4, after_start);
    sqlite3_bind_int64(s, 5, after_id);
    sqlite3_bind_int64(s, 6, limit > 0 ? (int64_t)limit : -1);
    bind_text(s, 7, redrive);
    const struct store_sink to = {.fn.execution = fn, .arg = arg};
    return store_rows(st, s, store_emit_execution, &to, err);
}

/* ---- activities ---- */

static int emit_activity(sqlite3_stmt *s, const struct store_sink *to)
{
    struct sfn_store_activity_rec a = {
        .id = sqlite3_column_int64(s, 0),
        .name = store_col_text(s, 1),
        .arn = store_col_text(s, 2),
        .created_ms = sqlite3_column_int64(s, 3),
        .encryption = store_col_text(s, 4),
    };
    return to->fn.activity != NULL ? to->fn.activity(&a, to->arg) : 0;
}

static int get_one_activity(struct sfn_store *st, const char *arn, sfn_store_activity_fn fn,
                            void *arg, struct err *err)
{
    sqlite3_stmt *s = stmt(st, ST_ACTIVITY_BY_ARN, err);
    if (s == NULL)
        return -1;
    sqlite3_bind_text(s, 1, arn, -1, SQLITE_STATIC);
    const struct store_sink to = {.fn.activity = fn, .arg = arg};
    return store_one_row(st, s, emit_activity, &to, err);
}

int sfn_store_create_activity(struct sfn_store *st, const char *name, const char *arn,
                              int64_t created_ms, const char *encryption, json_t *tags,
                              sfn_store_activity_fn fn, void *arg, struct err *err)
{
    if (tx_begin(st, err) != 0)
        return -1;
    sqlite3_stmt *s = store_stmt(st, ST_INS_ACTIVITY);
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, arn, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, created_ms);
    bind_text(s, 4, encryption);
    if (store_step_done(st, s, err, "cannot record an activity") != 0)
        return tx_rollback(st);
    bool created = sqlite3_changes(st->db) > 0;
    if ((created && tags != NULL && put_tags(st, arn, tags, SIZE_MAX, err) != 0) ||
        tx_commit(st, err) != 0)
        return tx_rollback(st);
    int rc = get_one_activity(st, arn, fn, arg, err);
    if (rc != 0)
        return rc < 0 ? -1 : err_set(err, STORE_ERR, "the activity '%s' vanished", arn);
    return created ? 0 : 1;
}

int sfn_store_get_activity(struct sfn_store *st, const char *arn, sfn_store_activity_fn fn,
                           void *arg, struct err *err)
{
    return get_one_activity(st, arn, fn, arg, err);
}

int sfn_store_delete_activity(struct sfn_store *st, const char *arn, struct err *err)
{
    if (tx_begin(st, err) != 0)
        return -1;
    sqlite3_stmt *s = store_stmt(st, ST_DEL_ACTIVITY);
    sqlite3_bind_text(s, 1, arn, -1, SQLITE_STATIC);
    if (store_step_done(st, s, err, "cannot delete an activity") != 0)
        return tx_rollback(st);
    int changed = sqlite3_changes(st->db);
    s = store_stmt(st, ST_DEL_TAGS);
    sqlite3_bind_text(s, 1, arn, -1, SQLITE_STATIC);
    if (store_step_done(st, s, err, "cannot delete an activity") != 0)
        return tx_rollback(st);
    if (tx_commit(st, err) != 0)
        return -1;
    return changed > 0 ? 0 : 1;
}

long sfn_store_list_activities(struct sfn_store *st, int64_t after_id, size_t limit,
                               sfn_store_activity_fn fn, void *arg, struct err *err)
{
    sqlite3_stmt *s = stmt(st, ST_ACTIVITY_PAGE, err);
    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, after_id);
    sqlite3_bind_int64(s, 2, limit > 0 ? (int64_t)limit : -1);
    const struct store_sink to = {.fn.activity = fn, .arg = arg};
    return store_rows(st, s, emit_activity, &to, err);
}

/* ---- tags ---- */

int sfn_store_tag(struct sfn_store *st, const char *arn, json_t *tags, size_t max,
                  struct err *err)
{
    if (tx_begin(st, err) != 0)
        return -1;
    if (put_tags(st, arn, tags, max, err) != 0 || tx_commit(st, err) != 0)
        return tx_rollback(st);
    return 0;
}

int sfn_store_untag(struct sfn_store *st, const char *arn, json_t *keys, struct err *err)
{
    if (tx_begin(st, err) != 0)
        return -1;
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k) {
        if (!json_is_string(k))
            continue;
        sqlite3_stmt *s = store_stmt(st, ST_DEL_TAG);
        sqlite3_bind_text(s, 1, arn, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, json_string_value(k), -1, SQLITE_STATIC);
        if (store_step_done(st, s, err, "cannot delete tags") != 0)
            return tx_rollback(st);
    }
    return tx_commit(st, err);
}

long sfn_store_list_tags(struct sfn_store *st, const char *arn,
                         void (*fn)(const char *key, const char *value, void *arg), void *arg,
                         struct err *err)
{
    sqlite3_stmt *s = stmt(st, ST_LIST_TAGS, err);
    if (s == NULL)
        return -1;
    sqlite3_bind_text(s, 1, arn, -1, SQLITE_STATIC);
    long n = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        n++;
        fn(store_col_text(s, 0), store_col_text(s, 1), arg);
    }
    if (rc != SQLITE_DONE)
        n = store_db_err(st, err, "cannot be read");
    sqlite3_reset(s);
    return n;
}
