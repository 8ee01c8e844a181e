/* store/internal.h - the SQLite store's private structure, shared by its files: store.c
 * (opening, schema migrations, settings), commit.c (the engine's persistence seam: one
 * transaction per loop turn), read.c (recovery, listings, paged history), api.c (the HTTP
 * API's reads and writes). */
#ifndef SFN_STORE_INTERNAL_H
#define SFN_STORE_INTERNAL_H

#include <sqlite3.h>
#include <stdbool.h>

#include "sfn.h"
#include "util/buf.h"
#include "util/err.h"

#define STORE_SCHEMA_VERSION 4
#define STORE_APPLICATION_ID 0x73666e64 /* "sfnd" */
#define STORE_ERR "States.Runtime"      /* err name of store failures */
#define STORE_BATCH_EVENTS 64            /* most events in one row of history_batches */

enum {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_INS_EXEC,
    ST_INS_EXEC_ENDED,
    ST_INS_EVENTS,
    ST_PUT_CHECKPOINT,
    ST_END_EXEC,
    ST_DEL_CHECKPOINT,
    ST_REDRIVE_EXEC,
    ST_FIND_MACHINE,
    ST_INS_MACHINE,
    ST_CUR_REVISION,
    ST_INS_REVISION,
    ST_SET_REVISION,
    ST_EXEC_EXISTS,
    /* store/api.c (the HTTP API) */
    ST_MACHINE_BY_ARN,
    ST_MACHINE_BY_NAME,
    ST_MACHINE_PAGE,
    ST_MACHINE_OF_EXEC,
    ST_MACHINE_STATUS,
    ST_REVISION_CONFIG,
    ST_DEL_MACHINE_EXECS,
    ST_DEL_MACHINE,
    ST_RUNNING_DEFS,
    ST_EXEC_BY_ARN,
    ST_EXEC_CURSOR,
    ST_EXEC_PAGE,
    ST_INS_ACTIVITY,
    ST_ACTIVITY_BY_ARN,
    ST_ACTIVITY_PAGE,
    ST_DEL_ACTIVITY,
    ST_PUT_TAG,
    ST_DEL_TAG,
    ST_DEL_TAGS,
    ST_LIST_TAGS,
    ST_COUNT_TAGS,
    ST_COUNT
};

struct sfn_store {
    sqlite3 *db;
    char *path;
    int lock_fd;                 /* flock'ed while a writer has the file open, or -1 */
    bool read_only;
    struct sfn_store_options opt;
    struct sfn_engine *eng;      /* attached engine, or NULL */
    sqlite3_stmt *stmt[ST_COUNT];
    bool fatal;                  /* a commit failed: nothing more is written */
    uint64_t machines_gen;       /* bumped by each statement that writes state_machines */
    struct buf scratch;          /* reused serialisation buffer */
    struct store_wal *wal;       /* the checkpoint thread (store/wal.c), or NULL */
};

/* The columns store_emit_execution reads, in its order. */
#define STORE_EXEC_COLS                                                                       \
    "SELECT e.arn, e.name, m.arn, e.status, e.error, e.cause, e.input, e.output, e.start_ms, " \
    "e.stop_ms, e.redrive_count, e.redrive_ms FROM executions e JOIN state_machines m ON m.id = e.machine_id "

/* Column i as text (NULL for NULL). */
const char *store_col_text(sqlite3_stmt *s, int i);
/* Where the rows of a read go: the caller's callback (NULL: rows are only counted), typed by
 * what the rows are, and its argument. */
struct store_sink {
    union {
        sfn_store_machine_fn machine;
        sfn_store_execution_fn execution;
        sfn_store_activity_fn activity;
    } fn;
    void *arg;
};
/* Hands the current row to a sink; nonzero stops the read. */
typedef int (*store_emit_fn)(sqlite3_stmt *s, const struct store_sink *to);
/* Steps `s` (bound) through its rows, handing each to emit until it returns nonzero, then
 * resets it. Returns the number of rows handed over, or -1 with err set. */
long store_rows(struct sfn_store *st, sqlite3_stmt *s, store_emit_fn emit,
                const struct store_sink *to, struct err *err);
/* store_rows for a read of one row: 0 found, 1 not found, -1 failed. */
int store_one_row(struct sfn_store *st, sqlite3_stmt *s, store_emit_fn emit,
                  const struct store_sink *to, struct err *err);
/* The execution on the current row of a STORE_EXEC_COLS query, to to->fn.execution. */
int store_emit_execution(sqlite3_stmt *s, const struct store_sink *to);
/* The wall clock, epoch ms (creation dates). */
int64_t store_wall_ms(void);

/* Sets err from the database's last error, with a lead-in ("cannot commit"). Returns -1. */
int store_db_err(struct sfn_store *st, struct err *err, const char *what);
/* Steps a statement that returns no row (or whose row is not wanted), then resets it;
 * err gets the database's error with the lead-in `what`. */
int store_step_done(struct sfn_store *st, sqlite3_stmt *s, struct err *err, const char *what);
/* Prepared statement i, reset and cleared for binding. */
sqlite3_stmt *store_stmt(struct sfn_store *st, int i);
/* Finds or records the machine and revision of `m`; sets its persist id (the revision id). */
int store_machine_ensure(struct sfn_store *st, struct sfn_machine *m, const char *role_arn,
                         struct err *err);
/* Starts the thread that checkpoints the WAL off the commit path (store/wal.c). */
int store_wal_start(struct sfn_store *st, struct err *err);
/* Stops and joins it (nothing if it was not started). */
void store_wal_stop(struct sfn_store *st);
/* The engine's commit callback (struct sfn_persist_ops). */
int store_commit(void *arg, struct sfn_execution *const *changed, size_t n, struct err *err);

#endif
