/* store/commit.c - the engine's persistence seam: everything a loop turn changed goes into
 * one SQLite transaction (new executions, their new history events, each running
 * execution's checkpoint, each ended execution's record) before the engine lets any effect
 * of the turn out (STYLE.md: persist before you acknowledge). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/internal.h"
#include "util/json.h"
#include "util/xalloc.h"

int64_t store_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Binds the compact text of `v` (borrowed) through the scratch buffer. */
static void bind_json(struct sfn_store *st, sqlite3_stmt *s, int i, const json_t *v)
{
    if (v == NULL) {
        sqlite3_bind_null(s, i);
        return;
    }
    buf_reset(&st->scratch);
    json_compact_append(&st->scratch, v);
    /* static: the scratch buffer is not touched again before the statement is stepped */
    sqlite3_bind_text(s, i, buf_cstr(&st->scratch), (int)st->scratch.len, SQLITE_STATIC);
}

static const char *type_name(enum sfn_machine_type t)
{
    return t == SFN_EXPRESS ? "EXPRESS" : "STANDARD";
}

int store_machine_ensure(struct sfn_store *st, struct sfn_machine *m, const char *role_arn,
                         struct err *err)
{
    if (sfn_machine_persist_id(m) != 0)
        return 0;
    size_t len = 0;
    const char *text = sfn_machine_definition(m, &len);
    int64_t now = store_wall_ms();
    sqlite3_stmt *s = store_stmt(st, ST_FIND_MACHINE);
    sqlite3_bind_text(s, 1, sfn_machine_name(m), -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    int64_t mid = 0;
    if (rc == SQLITE_ROW) {
        mid = sqlite3_column_int64(s, 0);
    } else if (rc != SQLITE_DONE) {
        sqlite3_reset(s);
        return store_db_err(st, err, "cannot record a state machine");
    }
    sqlite3_reset(s);
    int64_t revision = 0;
    if (mid == 0) {
        s = store_stmt(st, ST_INS_MACHINE);
        sqlite3_bind_text(s, 1, sfn_machine_name(m), -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, sfn_machine_arn(m), -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, type_name(sfn_machine_type(m)), -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 4, role_arn, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 5, now);
        if (store_step_done(st, s, err, "cannot record a state machine") != 0)
            return -1;
        mid = sqlite3_last_insert_rowid(st->db);
    } else {
        s = store_stmt(st, ST_CUR_REVISION);
        sqlite3_bind_int64(s, 1, mid);
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            revision = sqlite3_column_int64(s, 1);
            const void *cur = sqlite3_column_blob(s, 2);
            size_t cur_len = (size_t)sqlite3_column_bytes(s, 2);
            if (cur_len == len && (len == 0 || memcmp(cur, text, len) == 0)) {
                sfn_machine_set_persist_id(m, sqlite3_column_int64(s, 0));
                sqlite3_reset(s);
                return 0; /* the same definition: its current revision */
            }
        } else if (rc != SQLITE_DONE) {
            sqlite3_reset(s);
            return store_db_err(st, err, "cannot record a state machine");
        }
        sqlite3_reset(s);
    }
    s = store_stmt(st, ST_INS_REVISION);
    sqlite3_bind_int64(s, 1, mid);
    sqlite3_bind_int64(s, 2, revision + 1);
    sqlite3_bind_text(s, 3, text, (int)len, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, role_arn, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, now);
    if (store_step_done(st, s, err, "cannot record a state machine") != 0)
        return -1;
    int64_t rid = sqlite3_last_insert_rowid(st->db);
    s = store_stmt(st, ST_SET_REVISION);
    sqlite3_bind_int64(s, 1, mid);
    sqlite3_bind_int64(s, 2, rid);
    sqlite3_bind_text(s, 3, role_arn, -1, SQLITE_STATIC);
    if (store_step_done(st, s, err, "cannot record a state machine") != 0)
        return -1;
    sfn_machine_set_persist_id(m, rid);
    return 0;
}

/* Binds an ended execution's status, output, error, cause and stop time from parameter
 * `first` on. */
static void bind_end(struct sfn_store *st, sqlite3_stmt *s, int first, struct sfn_execution *ex)
{
    sqlite3_bind_text(s, first, sfn_status_name(sfn_execution_status(ex)), -1, SQLITE_STATIC);
    bind_json(st, s, first + 1, sfn_execution_output(ex));
    const struct err *e = sfn_execution_error(ex);
    if (e->set && e->name[0] != '\0')
        sqlite3_bind_text(s, first + 2, e->name, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, first + 2);
    if (e->set && e->cause != NULL)
        sqlite3_bind_text(s, first + 3, e->cause, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, first + 3);
    sqlite3_bind_int64(s, first + 4, sfn_execution_stop_ms(ex));
}

/* Records a new execution: RUNNING, or already ended when it ended in this same turn (one
 * write instead of an insert and an update). */
static int insert_execution(struct sfn_store *st, struct sfn_execution *ex, struct err *err)
{
    struct sfn_machine *m = sfn_execution_machine(ex);
    if (store_machine_ensure(st, m, NULL, err) != 0)
        return -1;
    bool ended = sfn_execution_status(ex) != SFN_RUNNING;
    sqlite3_stmt *s = store_stmt(st, ended ? ST_INS_EXEC_ENDED : ST_INS_EXEC);
    sqlite3_bind_text(s, 1, sfn_execution_arn(ex), -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, sfn_execution_name(ex), -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, sfn_machine_persist_id(m));
    /* the input's text is bound through the scratch buffer: bind_end's output, which uses it
     * too, must not overwrite it before the step */
    char *input = NULL;
    if (ended) {
        input = json_compact(sfn_execution_input(ex));
        sqlite3_bind_text(s, 4, input, -1, SQLITE_STATIC);
        bind_end(st, s, 6, ex);
    } else {
        bind_json(st, s, 4, sfn_execution_input(ex));
    }
    sqlite3_bind_int64(s, 5, sfn_execution_start_ms(ex));
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    free(input);
    if (rc == SQLITE_CONSTRAINT_UNIQUE)
        return err_set(err, "ExecutionAlreadyExists", "Execution Already Exists: '%s'",
                       sfn_execution_arn(ex));
    if (rc != SQLITE_DONE)
        return store_db_err(st, err, "cannot record an execution");
    sfn_execution_set_persist_id(ex, sqlite3_last_insert_rowid(st->db));
    return 0;
}

/* Records the events added since the last commit, STORE_BATCH_EVENTS to a row (schema 4). */
static int insert_events(struct sfn_store *st, struct sfn_execution *ex, struct err *err)
{
    size_t n = sfn_execution_history_size(ex);
    for (size_t first = sfn_execution_history_committed(ex); first < n;) {
        size_t last = first + STORE_BATCH_EVENTS < n ? first + STORE_BATCH_EVENTS : n;
        buf_reset(&st->scratch);
        buf_putc(&st->scratch, '[');
        for (size_t i = first; i < last; i++) {
            if (i > first)
                buf_putc(&st->scratch, ',');
            if (sfn_execution_event_append(ex, i, true, &st->scratch, NULL) != 0)
                return err_set(err, STORE_ERR, "event %zu of '%s' is no longer in memory",
                               i + 1, sfn_execution_arn(ex));
        }
        buf_putc(&st->scratch, ']');
        sqlite3_stmt *s = store_stmt(st, ST_INS_EVENTS);
        sqlite3_bind_int64(s, 1, sfn_execution_persist_id(ex));
        sqlite3_bind_int64(s, 2, (int64_t)last);      /* event ids count from 1 */
        sqlite3_bind_int64(s, 3, (int64_t)first + 1);
        sqlite3_bind_text(s, 4, buf_cstr(&st->scratch), (int)st->scratch.len, SQLITE_STATIC);
        if (store_step_done(st, s, err, "cannot record history") != 0)
            return -1;
        first = last;
    }
    return 0;
}

/* Whether the events to commit start with ExecutionRedriven (sfn_execution_redrive). */
static bool redriven_now(struct sfn_execution *ex)
{
    size_t i = sfn_execution_history_committed(ex);
    return i < sfn_execution_history_size(ex) &&
           strcmp(sfn_execution_event_type(ex, i), "ExecutionRedriven") == 0;
}

/* A redriven execution's record is RUNNING again (api.md 9.2). */
static int redrive_row(struct sfn_store *st, struct sfn_execution *ex, struct err *err)
{
    sqlite3_stmt *s = store_stmt(st, ST_REDRIVE_EXEC);
    sqlite3_bind_int64(s, 1, sfn_execution_persist_id(ex));
    sqlite3_bind_int64(s, 2, sfn_execution_redrive_count(ex));
    sqlite3_bind_int64(s, 3, sfn_execution_redrive_ms(ex));
    return store_step_done(st, s, err, "cannot record a redrive");
}

static int commit_one(struct sfn_store *st, struct sfn_execution *ex, struct err *err)
{
    bool fresh = sfn_execution_persist_id(ex) == 0;
    if (fresh && insert_execution(st, ex, err) != 0)
        return -1;
    if (insert_events(st, ex, err) != 0)
        return -1;
    int64_t id = sfn_execution_persist_id(ex);
    enum sfn_status status = sfn_execution_status(ex);
    if (status == SFN_RUNNING) {
        if (sfn_execution_redrive_count(ex) > 0 && redriven_now(ex) &&
            redrive_row(st, ex, err) != 0)
            return -1;
        json_t *cp = sfn_execution_checkpoint(ex);
        sqlite3_stmt *s = store_stmt(st, ST_PUT_CHECKPOINT);
        sqlite3_bind_int64(s, 1, id);
        bind_json(st, s, 2, cp);
        json_decref(cp);
        return store_step_done(st, s, err, "cannot record a checkpoint");
    }
    if (fresh)
        return 0; /* inserted ended, and never had a checkpoint */
    sqlite3_stmt *s = store_stmt(st, ST_END_EXEC);
    sqlite3_bind_int64(s, 1, id);
    bind_end(st, s, 2, ex);
    if (store_step_done(st, s, err, "cannot record an execution") != 0)
        return -1;
    if (status != SFN_SUCCEEDED && sfn_machine_type(sfn_execution_machine(ex)) == SFN_STANDARD) {
        /* api.md 9.2: the last checkpoint, with where a redrive resumes */
        json_t *cp = sfn_execution_checkpoint(ex);
        s = store_stmt(st, ST_PUT_CHECKPOINT);
        sqlite3_bind_int64(s, 1, id);
        bind_json(st, s, 2, cp);
        json_decref(cp);
        return store_step_done(st, s, err, "cannot record a checkpoint");
    }
    s = store_stmt(st, ST_DEL_CHECKPOINT);
    sqlite3_bind_int64(s, 1, id);
    return store_step_done(st, s, err, "cannot record an execution");
}

int store_commit(void *arg, struct sfn_execution *const *changed, size_t n, struct err *err)
{
    struct sfn_store *st = arg;
    if (st->fatal)
        return err_set(err, STORE_ERR, "the store '%s' has failed before", st->path);
    if (store_step_done(st, store_stmt(st, ST_BEGIN), err, "cannot commit") != 0)
        goto failed;
    for (size_t i = 0; i < n; i++) {
        if (commit_one(st, changed[i], err) != 0) {
            sqlite3_step(store_stmt(st, ST_ROLLBACK));
            sqlite3_reset(st->stmt[ST_ROLLBACK]);
            goto failed;
        }
    }
    if (store_step_done(st, store_stmt(st, ST_COMMIT), err, "cannot commit") != 0) {
        if (!sqlite3_get_autocommit(st->db)) {
            sqlite3_step(store_stmt(st, ST_ROLLBACK));
            sqlite3_reset(st->stmt[ST_ROLLBACK]);
        }
        goto failed;
    }
    return 0;
failed:
    /* the file keeps everything up to the previous commit; the engine stops */
    st->fatal = true;
    if (st->opt.on_fatal != NULL)
        st->opt.on_fatal(err, st->opt.arg);
    return -1;
}
