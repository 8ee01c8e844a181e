/* store/api.c - the reads the HTTP API server (server/) needs beyond read.c: a state machine
 * by name or ARN, state machines by name in pages, one machine's executions in pages (keyset
 * paging on the last ARN returned, so a page never skips or repeats rows while executions
 * are added), and recovery that hands each continued execution back to the caller. */
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"
#include "util/xalloc.h"

static const char *col_text(sqlite3_stmt *s, int i)
{
    return (const char *)sqlite3_column_text(s, i);
}

static const char machine_sql[] =
    "SELECT m.name, m.arn, m.type, m.role_arn, r.definition, r.id, m.created_ms "
    "FROM state_machines m JOIN state_machine_revisions r ON r.id = m.revision_id ";

static int emit_machine(sqlite3_stmt *s, sfn_store_machine_fn fn, void *arg)
{
    struct sfn_store_machine_rec m = {
        .name = col_text(s, 0),
        .arn = col_text(s, 1),
        .type = col_text(s, 2),
        .role_arn = col_text(s, 3),
        .definition = (const char *)sqlite3_column_blob(s, 4),
        .definition_len = (size_t)sqlite3_column_bytes(s, 4),
        .revision_id = sqlite3_column_int64(s, 5),
        .created_ms = sqlite3_column_int64(s, 6),
    };
    if (m.definition == NULL)
        m.definition = "";
    return fn(&m, arg);
}

int sfn_store_get_machine(struct sfn_store *st, const char *name_or_arn,
                          sfn_store_machine_fn fn, void *arg, struct err *err)
{
    char sql[512];
    snprintf(sql, sizeof(sql), "%s WHERE m.name = ?1 OR m.arn = ?1 LIMIT 1", machine_sql);
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK)
        return store_db_err(st, err, "cannot be read");
    sqlite3_bind_text(s, 1, name_or_arn, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    int result = 1;
    if (rc == SQLITE_ROW) {
        emit_machine(s, fn, arg);
        result = 0;
    } else if (rc != SQLITE_DONE) {
        result = store_db_err(st, err, "cannot be read");
    }
    sqlite3_finalize(s);
    return result;
}

long sfn_store_list_machines(struct sfn_store *st, const char *after_name, size_t limit,
                             sfn_store_machine_fn fn, void *arg, struct err *err)
{
    char sql[512];
    /* api.md 4: by name, plain code-unit order (BINARY collation compares bytes; UTF-8 byte
     * order equals code-point order) */
    snprintf(sql, sizeof(sql), "%s WHERE (?1 IS NULL OR m.name > ?1) ORDER BY m.name LIMIT ?2",
             machine_sql);
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK)
        return store_db_err(st, err, "cannot be read");
    sqlite3_bind_text(s, 1, after_name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, limit > 0 ? (int64_t)limit : -1);
    long n = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        n++;
        if (emit_machine(s, fn, arg) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    if (rc != SQLITE_DONE)
        n = store_db_err(st, err, "cannot be read");
    sqlite3_finalize(s);
    return n;
}

long sfn_store_page_executions(struct sfn_store *st, const char *machine_arn, const char *status,
                               const char *after_arn, size_t limit, sfn_store_execution_fn fn,
                               void *arg, struct err *err)
{
    sqlite3_stmt *s = NULL;
    int64_t after_start = 0, after_id = 0;
    if (after_arn != NULL) {
        static const char cursor_sql[] =
            "SELECT e.start_ms, e.id FROM executions e JOIN state_machines m "
            "ON m.id = e.machine_id WHERE e.arn = ?1 AND m.arn = ?2";
        if (sqlite3_prepare_v2(st->db, cursor_sql, -1, &s, NULL) != SQLITE_OK)
            return store_db_err(st, err, "cannot be read");
        sqlite3_bind_text(s, 1, after_arn, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, machine_arn, -1, SQLITE_STATIC);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            after_start = sqlite3_column_int64(s, 0);
            after_id = sqlite3_column_int64(s, 1);
        }
        sqlite3_finalize(s);
        s = NULL;
        if (rc == SQLITE_DONE)
            return -2;
        if (rc != SQLITE_ROW)
            return store_db_err(st, err, "cannot be read");
    }
    static const char sql[] =
        "SELECT e.arn, e.name, m.arn, e.status, e.error, e.cause, e.input, e.output, "
        "e.start_ms, e.stop_ms FROM executions e JOIN state_machines m ON m.id = e.machine_id "
        "WHERE m.arn = ?1 AND (?2 IS NULL OR e.status = ?2) "
        "AND (?3 = 0 OR e.start_ms < ?4 OR (e.start_ms = ?4 AND e.id < ?5)) "
        "ORDER BY e.start_ms DESC, e.id DESC LIMIT ?6";
    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK)
        return store_db_err(st, err, "cannot be read");
    sqlite3_bind_text(s, 1, machine_arn, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, status, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 3, after_arn != NULL);
    sqlite3_bind_int64(s, 4, after_start);
    sqlite3_bind_int64(s, 5, after_id);
    sqlite3_bind_int64(s, 6, limit > 0 ? (int64_t)limit : -1);
    long n = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct sfn_store_execution e = {
            .arn = col_text(s, 0),
            .name = col_text(s, 1),
            .machine_arn = col_text(s, 2),
            .status = col_text(s, 3),
            .error = col_text(s, 4),
            .cause = col_text(s, 5),
            .input = col_text(s, 6),
            .output = col_text(s, 7),
            .start_ms = sqlite3_column_int64(s, 8),
            .stop_ms = sqlite3_column_int64(s, 9),
        };
        n++;
        if (fn(&e, arg) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    if (rc != SQLITE_DONE)
        n = store_db_err(st, err, "cannot be read");
    sqlite3_finalize(s);
    return n;
}
