/* store/read.c - what is read back from the store: state machines (recorded and compiled),
 * recovery of every RUNNING execution from its checkpoint, execution listings and the
 * history in pages, never loaded whole. */
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"
#include "util/json.h"
#include "util/xalloc.h"

const char *store_col_text(sqlite3_stmt *s, int i)
{
    return (const char *)sqlite3_column_text(s, i);
}

struct sfn_machine *sfn_store_machine(struct sfn_store *st, struct sfn_engine *eng,
                                      const char *name, const char *text, size_t len,
                                      enum sfn_machine_type type, const char *role_arn,
                                      struct err *err)
{
    if (st->read_only)
        return err_set(err, STORE_ERR, "the store '%s' was opened read-only", st->path), NULL;
    struct sfn_machine *m = sfn_machine_compile(eng, text, len, name, type, err);
    if (m == NULL)
        return NULL;
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db, "SELECT type FROM state_machines WHERE name = ?1", -1, &s,
                           NULL) != SQLITE_OK) {
        store_db_err(st, err, "cannot be read");
        sfn_machine_free(m);
        return NULL;
    }
    sqlite3_bind_text(s, 1, sfn_machine_name(m), -1, SQLITE_STATIC);
    const char *want = type == SFN_EXPRESS ? "EXPRESS" : "STANDARD";
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW && strcmp(store_col_text(s, 0), want) != 0) {
        err_set(err, "StateMachineTypeNotSupported",
                "The state machine '%s' exists with type %s; its type cannot become %s",
                sfn_machine_name(m), store_col_text(s, 0), want);
        sqlite3_finalize(s);
        sfn_machine_free(m);
        return NULL;
    }
    sqlite3_finalize(s);
    if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK ||
        store_machine_ensure(st, m, role_arn, err) != 0 ||
        sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        if (!err->set)
            store_db_err(st, err, "cannot record a state machine");
        if (!sqlite3_get_autocommit(st->db))
            sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
        sfn_machine_free(m);
        return NULL;
    }
    return m;
}

bool sfn_store_execution_exists(struct sfn_store *st, const char *arn)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db, "SELECT 1 FROM executions WHERE arn = ?1", -1, &s, NULL) !=
        SQLITE_OK)
        return false;
    sqlite3_bind_text(s, 1, arn, -1, SQLITE_STATIC);
    bool found = sqlite3_step(s) == SQLITE_ROW;
    sqlite3_finalize(s);
    return found;
}

int sfn_store_recover(struct sfn_store *st, struct sfn_engine *eng,
                      const struct sfn_execution_options *opt, size_t *count, struct err *err)
{
    return sfn_store_recover_each(st, eng, opt, NULL, NULL, count, err);
}

int sfn_store_recover_each(struct sfn_store *st, struct sfn_engine *eng,
                           const struct sfn_execution_options *opt, sfn_store_recovered_fn fn,
                           void *fn_arg, size_t *count, struct err *err)
{
    if (count != NULL)
        *count = 0;
    if (st->eng != eng)
        return err_set(err, STORE_ERR, "attach the engine to the store before recovering");
    static const char sql[] =
        "SELECT e.id, e.revision_id, r.definition, m.name, m.type, c.data "
        "FROM executions e JOIN checkpoints c ON c.execution_id = e.id "
        "JOIN state_machine_revisions r ON r.id = e.revision_id "
        "JOIN state_machines m ON m.id = e.machine_id "
        "WHERE e.status = 'RUNNING' ORDER BY e.revision_id, e.id";
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK)
        return store_db_err(st, err, "cannot be read");
    struct sfn_execution_options o = {0};
    if (opt != NULL)
        o = *opt;
    o.name = NULL;
    struct sfn_machine *m = NULL;
    int64_t m_rev = 0;
    size_t n = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(s, 0);
        int64_t rev = sqlite3_column_int64(s, 1);
        if (m == NULL || rev != m_rev) {
            sfn_machine_free(m);
            enum sfn_machine_type type =
                strcmp(store_col_text(s, 4), "EXPRESS") == 0 ? SFN_EXPRESS : SFN_STANDARD;
            m = sfn_machine_compile(eng, (const char *)sqlite3_column_blob(s, 2),
                                    (size_t)sqlite3_column_bytes(s, 2), store_col_text(s, 3), type,
                                    err);
            if (m == NULL)
                break;
            sfn_machine_set_persist_id(m, rev);
            m_rev = rev;
        }
        json_error_t jerr;
        json_t *cp = json_loadb((const char *)sqlite3_column_blob(s, 5),
                                (size_t)sqlite3_column_bytes(s, 5), JSON_DECODE_ANY, &jerr);
        if (cp == NULL) {
            err_set(err, STORE_ERR, "the store '%s' holds an unreadable checkpoint for "
                    "execution %lld: %s", st->path, (long long)id, jerr.text);
            break;
        }
        struct sfn_execution *ex = sfn_execution_restore(eng, m, cp, &o, err);
        json_decref(cp);
        if (ex == NULL)
            break;
        sfn_execution_set_persist_id(ex, id);
        n++;
        if (fn != NULL)
            fn(ex, fn_arg);
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        store_db_err(st, err, "cannot be read");
    sqlite3_finalize(s);
    sfn_machine_free(m);
    if (count != NULL)
        *count = n;
    return err->set ? -1 : 0;
}

static const char list_sql[] = STORE_EXEC_COLS;

int store_emit_execution(sqlite3_stmt *s, const struct store_sink *to)
{
    struct sfn_store_execution e = {
        .arn = store_col_text(s, 0),
        .name = store_col_text(s, 1),
        .machine_arn = store_col_text(s, 2),
        .status = store_col_text(s, 3),
        .error = store_col_text(s, 4),
        .cause = store_col_text(s, 5),
        .input = store_col_text(s, 6),
        .output = store_col_text(s, 7),
        .start_ms = sqlite3_column_int64(s, 8),
        .stop_ms = sqlite3_column_int64(s, 9),
        .redrive_count = sqlite3_column_int64(s, 10),
        .redrive_ms = sqlite3_column_int64(s, 11),
    };
    return to->fn.execution != NULL ? to->fn.execution(&e, to->arg) : 0;
}

int sfn_store_list_executions(struct sfn_store *st, const char *machine_name,
                              const char *status, sfn_store_execution_fn fn, void *arg,
                              struct err *err)
{
    char sql[512];
    snprintf(sql, sizeof(sql), "%s WHERE (?1 IS NULL OR m.name = ?1) AND "
             "(?2 IS NULL OR e.status = ?2) ORDER BY e.start_ms DESC, e.id DESC", list_sql);
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK)
        return store_db_err(st, err, "cannot be read");
    sqlite3_bind_text(s, 1, machine_name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, status, -1, SQLITE_STATIC);
    const struct store_sink to = {.fn.execution = fn, .arg = arg};
    long n = store_rows(st, s, store_emit_execution, &to, err);
    sqlite3_finalize(s);
    return n < 0 ? -1 : 0;
}

int sfn_store_get_execution(struct sfn_store *st, const char *arn_or_name,
                            sfn_store_execution_fn fn, void *arg, struct err *err)
{
    char sql[512];
    snprintf(sql, sizeof(sql), "%s WHERE e.arn = ?1 OR e.name = ?1 "
             "ORDER BY (e.arn = ?1) DESC, e.id DESC LIMIT 1", list_sql);
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK)
        return store_db_err(st, err, "cannot be read");
    sqlite3_bind_text(s, 1, arn_or_name, -1, SQLITE_STATIC);
    const struct store_sink to = {.fn.execution = fn, .arg = arg};
    int result = store_one_row(st, s, store_emit_execution, &to, err);
    sqlite3_finalize(s);
    return result;
}

/* includeExecutionData = false: the events keep their shape without the data members. */
static void strip_data(json_t *event)
{
    static const char *const members[] = {"input", "inputDetails", "output", "outputDetails",
                                          "parameters"};
    const char *key;
    json_t *v;
    json_object_foreach(event, key, v) {
        if (json_is_object(v)) {
            for (size_t i = 0; i < ARRAY_LEN(members); i++)
                json_object_del(v, members[i]);
        }
    }
}

long sfn_store_history(struct sfn_store *st, const char *arn, int64_t after_id, bool reverse,
                       size_t limit, bool include_data, sfn_store_event_fn fn, void *arg,
                       struct err *err)
{
    /* rows of history_batches (schema 4) in order; each holds the events first_id..last_id,
     * of which those past the cursor are emitted */
    const char *sql =
        reverse ? "SELECT b.first_id, b.events FROM history_batches b JOIN executions e "
                  "ON e.id = b.execution_id WHERE e.arn = ?1 AND b.first_id < ?2 "
                  "ORDER BY b.last_id DESC"
                : "SELECT b.first_id, b.events FROM history_batches b JOIN executions e "
                  "ON e.id = b.execution_id WHERE e.arn = ?1 AND b.last_id > ?2 "
                  "ORDER BY b.last_id";
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK)
        return store_db_err(st, err, "cannot be read");
    int64_t cursor = after_id > 0 ? after_id : (reverse ? INT64_MAX : 0);
    sqlite3_bind_text(s, 1, arn, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, cursor);
    long total = 0;
    bool stop = false;
    int rc = SQLITE_DONE;
    while (!stop && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t first = sqlite3_column_int64(s, 0);
        json_error_t jerr;
        json_t *batch = json_loadb((const char *)sqlite3_column_blob(s, 1),
                                   (size_t)sqlite3_column_bytes(s, 1), 0, &jerr);
        if (!json_is_array(batch)) {
            err_set(err, STORE_ERR, "the store '%s' holds unreadable events from %lld: %s",
                    st->path, (long long)first, batch == NULL ? jerr.text : "not a list");
            json_decref(batch);
            sqlite3_finalize(s);
            return -1;
        }
        size_t n = json_array_size(batch);
        for (size_t k = 0; k < n && !stop; k++) {
            size_t i = reverse ? n - 1 - k : k;
            int64_t id = first + (int64_t)i;
            if (reverse ? id >= cursor : id <= cursor)
                continue;
            json_t *e = json_array_get(batch, i);
            if (!include_data)
                strip_data(e);
            total++;
            stop = fn(e, arg) != 0 || (limit > 0 && (size_t)total >= limit);
        }
        json_decref(batch);
    }
    if (!stop && rc != SQLITE_DONE) {
        store_db_err(st, err, "cannot be read");
        sqlite3_finalize(s);
        return -1;
    }
    sqlite3_finalize(s);
    return total;
}

/* ---- redrive (api.md 9.2) ---- */

int sfn_store_redrive(struct sfn_store *st, struct sfn_engine *eng, const char *arn,
                      const struct sfn_execution_options *opt, struct sfn_execution **out,
                      struct err *err)
{
    *out = NULL;
    if (st->eng != eng)
        return err_set(err, STORE_ERR, "attach the engine to the store before redriving");
    static const char sql[] =
        "SELECT e.id, e.revision_id, r.definition, m.name, m.type, c.data, e.status, m.status, "
        "e.stop_ms FROM executions e JOIN state_machine_revisions r ON r.id = e.revision_id "
        "JOIN state_machines m ON m.id = e.machine_id "
        "LEFT JOIN checkpoints c ON c.execution_id = e.id WHERE e.arn = ?1";
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK)
        return store_db_err(st, err, "cannot be read");
    sqlite3_bind_text(s, 1, arn, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(s);
        return rc == SQLITE_DONE ? 1 : store_db_err(st, err, "cannot be read");
    }
    const char *status = store_col_text(s, 6);
    const char *mstatus = store_col_text(s, 7);
    /* api.md 6.3: the reasons AWS gives */
    if (strcmp(status, "FAILED") != 0 && strcmp(status, "ABORTED") != 0 &&
        strcmp(status, "TIMED_OUT") != 0)
        err_set(err, "ExecutionNotRedrivable", "Execution is %s and cannot be redriven", status);
    else if (strcmp(store_col_text(s, 4), "EXPRESS") == 0)
        err_set(err, "ExecutionNotRedrivable", "Execution cannot be redriven");
    else if (store_wall_ms() - sqlite3_column_int64(s, 8) > SFN_REDRIVE_PERIOD_MS)
        err_set(err, "ExecutionNotRedrivable", "Execution redrivable period exceeded");
    else if (mstatus != NULL && strcmp(mstatus, "DELETING") == 0)
        err_set(err, "ExecutionNotRedrivable", "State machine is in DELETING status");
    else if (sqlite3_column_type(s, 5) == SQLITE_NULL)
        err_set(err, "ExecutionNotRedrivable",
                "Execution was started before the launch of RedriveExecution");
    json_t *cp = NULL;
    if (!err->set) {
        json_error_t jerr;
        cp = json_loadb((const char *)sqlite3_column_blob(s, 5),
                        (size_t)sqlite3_column_bytes(s, 5), JSON_DECODE_ANY, &jerr);
        if (cp == NULL)
            err_set(err, STORE_ERR, "the store '%s' holds an unreadable checkpoint for '%s': %s",
                    st->path, arn, jerr.text);
        else if (json_integer_value(json_object_get(cp, "n_events")) >= 24999)
            err_set(err, "ExecutionNotRedrivable", "Execution history event limit exceeded");
    }
    struct sfn_machine *m = NULL;
    if (!err->set) {
        m = sfn_machine_compile(eng, (const char *)sqlite3_column_blob(s, 2),
                                (size_t)sqlite3_column_bytes(s, 2), store_col_text(s, 3),
                                SFN_STANDARD, err);
        if (m != NULL)
            sfn_machine_set_persist_id(m, sqlite3_column_int64(s, 1));
    }
    int64_t id = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    if (m != NULL) {
        struct sfn_execution_options o = {0};
        if (opt != NULL)
            o = *opt;
        o.name = NULL;
        *out = sfn_execution_redrive(eng, m, cp, &o, err);
        if (*out != NULL)
            sfn_execution_set_persist_id(*out, id);
        sfn_machine_free(m);
    }
    json_decref(cp);
    return *out != NULL ? 0 : -1;
}
