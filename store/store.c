/* store/store.c - opening the SQLite store: checks on the directory and the file, one writer
 * at a time (flock), WAL, foreign keys, the durability setting, schema migrations by
 * PRAGMA user_version, and the prepared statements the commit path reuses. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/internal.h"
#include "util/xalloc.h"

/* Schema migrations: migrations[v - 1] takes a database from version v - 1 to v. */
static const char *const migrations[] = {
    /* 1: state machines and their revisions, executions, history, checkpoints */
    "CREATE TABLE state_machines ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  arn TEXT NOT NULL UNIQUE,"
    "  type TEXT NOT NULL CHECK (type IN ('STANDARD', 'EXPRESS')),"
    "  role_arn TEXT,"
    "  created_ms INTEGER NOT NULL,"
    "  revision_id INTEGER"
    ");"
    "CREATE TABLE state_machine_revisions ("
    "  id INTEGER PRIMARY KEY,"
    "  machine_id INTEGER NOT NULL REFERENCES state_machines(id) ON DELETE CASCADE,"
    "  revision INTEGER NOT NULL,"
    "  definition TEXT NOT NULL,"
    "  role_arn TEXT,"
    "  created_ms INTEGER NOT NULL,"
    "  UNIQUE (machine_id, revision)"
    ");"
    "CREATE TABLE executions ("
    "  id INTEGER PRIMARY KEY,"
    "  arn TEXT NOT NULL UNIQUE,"
    "  name TEXT NOT NULL,"
    "  machine_id INTEGER NOT NULL REFERENCES state_machines(id),"
    "  revision_id INTEGER NOT NULL REFERENCES state_machine_revisions(id),"
    "  status TEXT NOT NULL,"
    "  input TEXT NOT NULL,"
    "  output TEXT,"
    "  error TEXT,"
    "  cause TEXT,"
    "  start_ms INTEGER NOT NULL,"
    "  stop_ms INTEGER"
    ");"
    "CREATE INDEX executions_by_machine ON executions (machine_id, start_ms);"
    "CREATE INDEX executions_by_name ON executions (name);"
    "CREATE INDEX executions_running ON executions (status) WHERE status = 'RUNNING';"
    "CREATE TABLE history ("
    "  execution_id INTEGER NOT NULL REFERENCES executions(id) ON DELETE CASCADE,"
    "  id INTEGER NOT NULL,"
    "  type TEXT NOT NULL,"
    "  ts_ms INTEGER NOT NULL,"
    "  event TEXT NOT NULL,"
    "  PRIMARY KEY (execution_id, id)"
    ") WITHOUT ROWID;"
    "CREATE TABLE checkpoints ("
    "  execution_id INTEGER PRIMARY KEY REFERENCES executions(id) ON DELETE CASCADE,"
    "  data TEXT NOT NULL"
    ");",
    /* 2: what the HTTP API (sfnd) keeps beyond executions: a machine's status (DELETING while
     * its executions are stopped), each revision's revisionId, logging and tracing
     * configuration (JSON text; NULL = AWS's defaults), activities, and the tags of machines
     * and activities. Activity tasks and their tokens need no table: a task's state (queued,
     * handed to a worker) is the engine's per-attempt handler state, committed with the
     * execution's checkpoint, and its token is the engine's stable per-attempt token. */
    "ALTER TABLE state_machines ADD COLUMN status TEXT NOT NULL DEFAULT 'ACTIVE';"
    "ALTER TABLE state_machine_revisions ADD COLUMN revision_uuid TEXT;"
    "ALTER TABLE state_machine_revisions ADD COLUMN logging TEXT;"
    "ALTER TABLE state_machine_revisions ADD COLUMN tracing TEXT;"
    "CREATE TABLE activities ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  arn TEXT NOT NULL UNIQUE,"
    "  created_ms INTEGER NOT NULL,"
    "  encryption TEXT"
    ");"
    "CREATE TABLE tags ("
    "  resource_arn TEXT NOT NULL,"
    "  key TEXT NOT NULL,"
    "  value TEXT NOT NULL,"
    "  PRIMARY KEY (resource_arn, key)"
    ") WITHOUT ROWID;",
    /* 3: RedriveExecution (api.md 9.2): how often an execution was redriven and when last.
     * What a redrive resumes is the checkpoint, kept when a Standard execution ends FAILED,
     * ABORTED or TIMED_OUT (with its "redo" frames) instead of being deleted. */
    "ALTER TABLE executions ADD COLUMN redrive_count INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE executions ADD COLUMN redrive_ms INTEGER;",
    /* 4: history in batches: the events one commit adds to an execution are one row (a JSON
     * array of up to STORE_BATCH_EVENTS events, ids first_id..last_id), not a row each: a
     * Pass execution's four events cost one insert instead of four. The view `history` shows
     * one row per event, as the table of versions 1-3 did, to anyone reading the file with
     * sqlite3. */
    "CREATE TABLE history_batches ("
    "  execution_id INTEGER NOT NULL REFERENCES executions(id) ON DELETE CASCADE,"
    "  last_id INTEGER NOT NULL,"
    "  first_id INTEGER NOT NULL,"
    "  events TEXT NOT NULL,"
    "  PRIMARY KEY (execution_id, last_id)"
    ") WITHOUT ROWID;"
    "INSERT INTO history_batches (execution_id, last_id, first_id, events) "
    "  SELECT execution_id, id, id, '[' || event || ']' FROM history;"
    "DROP TABLE history;"
    "CREATE VIEW history (execution_id, id, type, event) AS "
    "  SELECT b.execution_id, b.first_id + j.key, json_extract(j.value, '$.type'), j.value "
    "  FROM history_batches b, json_each(b.events) j;",
};

/* The API's reads of a state machine and its current (or an execution's) revision; the
 * columns are those of store/api.c's emit_machine. */
#define MACHINE_COLS                                                                          \
    "SELECT m.name, m.arn, m.type, COALESCE(r.role_arn, m.role_arn), r.definition, r.id, "    \
    "m.created_ms, m.status, r.logging, r.tracing, r.revision_uuid, r.created_ms "
#define MACHINE_SQL MACHINE_COLS \
    "FROM state_machines m JOIN state_machine_revisions r ON r.id = m.revision_id "
static const char *const statements[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_INS_EXEC] =
        "INSERT INTO executions (arn, name, machine_id, revision_id, status, input, start_ms) "
        "VALUES (?1, ?2, (SELECT machine_id FROM state_machine_revisions WHERE id = ?3), ?3, "
        "'RUNNING', ?4, ?5)",
    /* an execution that starts and ends within one commit is written once, ended */
    [ST_INS_EXEC_ENDED] =
        "INSERT INTO executions (arn, name, machine_id, revision_id, status, input, start_ms, "
        "output, error, cause, stop_ms) VALUES (?1, ?2, (SELECT machine_id FROM "
        "state_machine_revisions WHERE id = ?3), ?3, ?6, ?4, ?5, ?7, ?8, ?9, ?10)",
    [ST_INS_EVENTS] = "INSERT INTO history_batches (execution_id, last_id, first_id, events) "
                      "VALUES (?1, ?2, ?3, ?4)",
    [ST_PUT_CHECKPOINT] = "INSERT OR REPLACE INTO checkpoints (execution_id, data) VALUES (?1, ?2)",
    [ST_END_EXEC] = "UPDATE executions SET status = ?2, output = ?3, error = ?4, cause = ?5, "
                    "stop_ms = ?6 WHERE id = ?1",
    [ST_REDRIVE_EXEC] = "UPDATE executions SET status = 'RUNNING', output = NULL, error = NULL, "
                        "cause = NULL, stop_ms = NULL, redrive_count = ?2, redrive_ms = ?3 "
                        "WHERE id = ?1",
    [ST_DEL_CHECKPOINT] = "DELETE FROM checkpoints WHERE execution_id = ?1",
    [ST_FIND_MACHINE] = "SELECT id, revision_id FROM state_machines WHERE name = ?1",
    [ST_INS_MACHINE] = "INSERT INTO state_machines (name, arn, type, role_arn, created_ms) "
                       "VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_CUR_REVISION] = "SELECT id, revision, definition FROM state_machine_revisions "
                        "WHERE machine_id = ?1 ORDER BY revision DESC LIMIT 1",
    [ST_INS_REVISION] = "INSERT INTO state_machine_revisions (machine_id, revision, definition, "
                        "role_arn, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_SET_REVISION] = "UPDATE state_machines SET revision_id = ?2, role_arn = ?3 WHERE id = ?1",
    [ST_EXEC_EXISTS] = "SELECT 1 FROM executions WHERE arn = ?1",
    /* store/api.c: the HTTP API's reads and writes (schema 2) */
    [ST_MACHINE_BY_ARN] = MACHINE_SQL "WHERE m.arn = ?1",
    [ST_MACHINE_BY_NAME] = MACHINE_SQL "WHERE m.name = ?1",
    [ST_MACHINE_PAGE] = MACHINE_SQL "WHERE (?1 IS NULL OR m.name > ?1) ORDER BY m.name LIMIT ?2",
    [ST_MACHINE_OF_EXEC] = MACHINE_COLS
        "FROM executions e JOIN state_machines m ON m.id = e.machine_id "
        "JOIN state_machine_revisions r ON r.id = e.revision_id WHERE e.arn = ?1",
    [ST_MACHINE_STATUS] = "UPDATE state_machines SET status = ?2 WHERE arn = ?1",
    [ST_REVISION_CONFIG] = "UPDATE state_machine_revisions SET logging = ?2, tracing = ?3, "
                           "revision_uuid = ?4 WHERE id = ?1",
    [ST_DEL_MACHINE_EXECS] = "DELETE FROM executions WHERE machine_id = "
                             "(SELECT id FROM state_machines WHERE arn = ?1)",
    [ST_DEL_MACHINE] = "DELETE FROM state_machines WHERE arn = ?1",
    [ST_RUNNING_DEFS] = "SELECT DISTINCT r.definition FROM executions e "
                        "JOIN state_machine_revisions r ON r.id = e.revision_id "
                        "WHERE e.status = 'RUNNING'",
    [ST_EXEC_BY_ARN] = STORE_EXEC_COLS "WHERE e.arn = ?1",
    [ST_EXEC_CURSOR] = "SELECT e.start_ms, e.id FROM executions e JOIN state_machines m "
                       "ON m.id = e.machine_id WHERE e.arn = ?1 AND m.arn = ?2",
    [ST_EXEC_PAGE] = STORE_EXEC_COLS
        "WHERE m.arn = ?1 AND (?2 IS NULL OR e.status = ?2) "
        "AND (?7 IS NULL OR (?7 = 'REDRIVEN') = (e.redrive_count > 0)) "
        "AND (?3 = 0 OR e.start_ms < ?4 OR (e.start_ms = ?4 AND e.id < ?5)) "
        "ORDER BY e.start_ms DESC, e.id DESC LIMIT ?6",
    [ST_INS_ACTIVITY] = "INSERT OR IGNORE INTO activities (name, arn, created_ms, encryption) "
                        "VALUES (?1, ?2, ?3, ?4)",
    [ST_ACTIVITY_BY_ARN] = "SELECT id, name, arn, created_ms, encryption FROM activities "
                           "WHERE arn = ?1",
    [ST_ACTIVITY_PAGE] = "SELECT id, name, arn, created_ms, encryption FROM activities "
                         "WHERE id > ?1 ORDER BY id LIMIT ?2",
    [ST_DEL_ACTIVITY] = "DELETE FROM activities WHERE arn = ?1",
    [ST_PUT_TAG] = "INSERT OR REPLACE INTO tags (resource_arn, key, value) VALUES (?1, ?2, ?3)",
    [ST_DEL_TAG] = "DELETE FROM tags WHERE resource_arn = ?1 AND key = ?2",
    [ST_DEL_TAGS] = "DELETE FROM tags WHERE resource_arn = ?1",
    [ST_LIST_TAGS] = "SELECT key, value FROM tags WHERE resource_arn = ?1 ORDER BY key",
    [ST_COUNT_TAGS] = "SELECT count(*) FROM tags WHERE resource_arn = ?1",
};

int store_step_done(struct sfn_store *st, sqlite3_stmt *s, struct err *err, const char *what)
{
    int rc = sqlite3_step(s);
    int result = rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : store_db_err(st, err, what);
    sqlite3_reset(s);
    return result;
}

long store_rows(struct sfn_store *st, sqlite3_stmt *s, store_emit_fn emit,
                const struct store_sink *to, struct err *err)
{
    long n = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        n++;
        if (emit(s, to) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    if (rc != SQLITE_DONE)
        n = store_db_err(st, err, "cannot be read");
    sqlite3_reset(s);
    return n;
}

int store_one_row(struct sfn_store *st, sqlite3_stmt *s, store_emit_fn emit,
                  const struct store_sink *to, struct err *err)
{
    long n = store_rows(st, s, emit, to, err);
    return n < 0 ? -1 : n == 0 ? 1 : 0;
}

int store_db_err(struct sfn_store *st, struct err *err, const char *what)
{
    int code = st->db != NULL ? sqlite3_extended_errcode(st->db) : SQLITE_ERROR;
    const char *msg = st->db != NULL ? sqlite3_errmsg(st->db) : sqlite3_errstr(code);
    int prim = code & 0xff;
    if (prim == SQLITE_FULL)
        return err_set(err, STORE_ERR, "the store '%s' %s: the disk or the database is full (%s)",
                       st->path, what, msg);
    if (prim == SQLITE_NOTADB || prim == SQLITE_CORRUPT)
        return err_set(err, STORE_ERR, "the store '%s' %s: the file is not an sfn database or is "
                       "corrupt (%s)", st->path, what, msg);
    if (prim == SQLITE_READONLY || prim == SQLITE_PERM || prim == SQLITE_CANTOPEN)
        return err_set(err, STORE_ERR, "the store '%s' %s: it cannot be written (%s)", st->path,
                       what, msg);
    if (prim == SQLITE_BUSY || prim == SQLITE_LOCKED)
        return err_set(err, STORE_ERR, "the store '%s' %s: the database is locked by another "
                       "process (%s)", st->path, what, msg);
    return err_set(err, STORE_ERR, "the store '%s' %s: %s", st->path, what, msg);
}

sqlite3_stmt *store_stmt(struct sfn_store *st, int i)
{
    /* every statement that writes state_machines: what readers cached of a machine is stale
     * after it (sfn_store_machines_gen). A new such statement must be listed here */
    if (i == ST_INS_MACHINE || i == ST_SET_REVISION || i == ST_MACHINE_STATUS ||
        i == ST_DEL_MACHINE)
        st->machines_gen++;
    sqlite3_stmt *s = st->stmt[i];
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return s;
}

static int exec_sql(struct sfn_store *st, const char *sql, struct err *err, const char *what)
{
    char *msg = NULL;
    if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) == SQLITE_OK)
        return 0;
    sqlite3_free(msg);
    return store_db_err(st, err, what);
}

/* Reads one integer PRAGMA. */
static int pragma_int(struct sfn_store *st, const char *sql, int64_t *out, struct err *err)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK)
        return store_db_err(st, err, "cannot be opened");
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return store_db_err(st, err, "cannot be opened");
    return 0;
}

/* The directory must exist and be writable; an existing file must be a writable file. */
static int check_path(const char *path, bool read_only, struct err *err)
{
    char *copy = xstrdup(path);
    char *dir = dirname(copy);
    struct stat sb;
    int rc = 0;
    if (stat(path, &sb) == 0) {
        if (!S_ISREG(sb.st_mode))
            rc = err_set(err, STORE_ERR, "cannot open the store '%s': it is not a regular file",
                         path);
        else if (!read_only && access(path, R_OK | W_OK) != 0)
            rc = err_set(err, STORE_ERR, "cannot open the store '%s': the file is read-only",
                         path);
        else if (!read_only && access(dir, W_OK | X_OK) != 0)
            rc = err_set(err, STORE_ERR, "cannot open the store '%s': the directory '%s' is not "
                         "writable (SQLite keeps its write-ahead log next to the file)", path, dir);
    } else if (read_only) {
        rc = err_set(err, STORE_ERR, "cannot open the store '%s': %s", path, strerror(errno));
    } else if (stat(dir, &sb) != 0) {
        rc = err_set(err, STORE_ERR, "cannot open the store '%s': the directory '%s' does not "
                     "exist", path, dir);
    } else if (!S_ISDIR(sb.st_mode)) {
        rc = err_set(err, STORE_ERR, "cannot open the store '%s': '%s' is not a directory", path,
                     dir);
    } else if (access(dir, W_OK | X_OK) != 0) {
        rc = err_set(err, STORE_ERR, "cannot open the store '%s': the directory '%s' is not "
                     "writable", path, dir);
    }
    free(copy);
    return rc;
}

/* One writer per file: the lock is held on the database file itself until close. The file
 * is created here, so that it gets mode 0600. */
static int take_lock(struct sfn_store *st, struct err *err)
{
    st->lock_fd = open(st->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (st->lock_fd < 0)
        return err_set(err, STORE_ERR, "cannot open the store '%s': %s", st->path,
                       strerror(errno));
    if (flock(st->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(st->lock_fd);
        st->lock_fd = -1;
        if (e == EWOULDBLOCK)
            return err_set(err, STORE_ERR, "the store '%s' is in use by another sfn process "
                           "(only one may run its executions at a time)", st->path);
        return err_set(err, STORE_ERR, "cannot lock the store '%s': %s", st->path, strerror(e));
    }
    return 0;
}

/* Checks, before anything is written, that the file is ours and not from a newer sfn;
 * *version gets its schema version. */
static int schema_check(struct sfn_store *st, int64_t *version_out, struct err *err)
{
    int64_t version = 0, app = 0, tables = 0;
    if (pragma_int(st, "PRAGMA user_version", &version, err) != 0 ||
        pragma_int(st, "PRAGMA application_id", &app, err) != 0 ||
        pragma_int(st, "SELECT count(*) FROM sqlite_master", &tables, err) != 0)
        return -1;
    if ((app != 0 && app != STORE_APPLICATION_ID) || (app == 0 && tables > 0))
        return err_set(err, STORE_ERR, "the store '%s' is not an sfn database (it is an SQLite "
                       "database of another application)", st->path);
    if (version > STORE_SCHEMA_VERSION)
        return err_set(err, STORE_ERR, "the store '%s' has schema version %lld, newer than this "
                       "sfn understands (%d): use the sfn that wrote it, or a newer one",
                       st->path, (long long)version, STORE_SCHEMA_VERSION);
    *version_out = version;
    return 0;
}

static int schema_migrate(struct sfn_store *st, int64_t version, struct err *err)
{
    if (version == STORE_SCHEMA_VERSION)
        return 0;
    if (st->read_only)
        return err_set(err, STORE_ERR, "the store '%s' has schema version %lld and needs a "
                       "migration: open it for writing once (sfn resume)", st->path,
                       (long long)version);
    if (exec_sql(st, "BEGIN IMMEDIATE", err, "cannot be migrated") != 0)
        return -1;
    for (int64_t v = version + 1; v <= STORE_SCHEMA_VERSION; v++) {
        if (exec_sql(st, migrations[v - 1], err, "cannot be migrated") != 0) {
            sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
            return -1;
        }
    }
    char sql[128];
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d; PRAGMA application_id = %d;",
             STORE_SCHEMA_VERSION, STORE_APPLICATION_ID);
    if (exec_sql(st, sql, err, "cannot be migrated") != 0 ||
        exec_sql(st, "COMMIT", err, "cannot be migrated") != 0) {
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return 0;
}

static int settings(struct sfn_store *st, struct err *err)
{
    if (st->read_only)
        return 0;
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db, "PRAGMA journal_mode = WAL", -1, &s, NULL) != SQLITE_OK)
        return store_db_err(st, err, "cannot be opened");
    int rc = sqlite3_step(s);
    bool wal = rc == SQLITE_ROW &&
               strcmp((const char *)sqlite3_column_text(s, 0), "wal") == 0;
    sqlite3_finalize(s);
    if (rc != SQLITE_ROW)
        return store_db_err(st, err, "cannot be opened");
    if (!wal)
        return err_set(err, STORE_ERR, "the store '%s' cannot use write-ahead logging here",
                       st->path);
    static const char *const sync[] = {
        [SFN_DURABILITY_FULL] = "PRAGMA synchronous = FULL",
        [SFN_DURABILITY_NORMAL] = "PRAGMA synchronous = NORMAL",
        [SFN_DURABILITY_OFF] = "PRAGMA synchronous = OFF",
    };
    if (exec_sql(st, sync[st->opt.durability], err, "cannot be opened") != 0)
        return -1;
    /* a Map's checkpoint is rewritten every turn: keep its pages in memory, read through
     * mmap rather than pread copies */
    if (exec_sql(st, "PRAGMA cache_size = -16384; PRAGMA mmap_size = 268435456", err,
                 "cannot be opened") != 0)
        return -1;
    if (st->opt.max_bytes > 0) {
        int64_t page = 4096;
        if (pragma_int(st, "PRAGMA page_size", &page, err) != 0)
            return -1;
        char sql[96];
        snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %lld",
                 (long long)(st->opt.max_bytes / (page > 0 ? page : 4096)));
        if (exec_sql(st, sql, err, "cannot be opened") != 0)
            return -1;
    }
    return 0;
}

struct sfn_store *sfn_store_open(const char *path, const struct sfn_store_options *opt,
                                 struct err *err)
{
    if (path == NULL || path[0] == '\0')
        return err_set(err, STORE_ERR, "no store path given"), NULL;
    struct sfn_store *st = xcalloc(1, sizeof(*st));
    st->path = xstrdup(path);
    st->lock_fd = -1;
    if (opt != NULL)
        st->opt = *opt;
    if (st->opt.durability > SFN_DURABILITY_OFF)
        st->opt.durability = SFN_DURABILITY_FULL;
    st->read_only = st->opt.read_only;
    buf_init(&st->scratch);
    if (check_path(path, st->read_only, err) != 0 ||
        (!st->read_only && take_lock(st, err) != 0)) {
        sfn_store_close(st);
        return NULL;
    }
    int flags = (st->read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) |
                SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path, &st->db, flags, NULL) != SQLITE_OK) {
        store_db_err(st, err, "cannot be opened");
        sfn_store_close(st);
        return NULL;
    }
    sqlite3_extended_result_codes(st->db, 1);
    sqlite3_busy_timeout(st->db, 5000);
    int64_t version = 0;
    if (exec_sql(st, "PRAGMA foreign_keys = ON", err, "cannot be opened") != 0 ||
        schema_check(st, &version, err) != 0 || settings(st, err) != 0 ||
        schema_migrate(st, version, err) != 0) {
        sfn_store_close(st);
        return NULL;
    }
    for (int i = 0; i < ST_COUNT && !st->read_only; i++) {
        if (sqlite3_prepare_v3(st->db, statements[i], -1, SQLITE_PREPARE_PERSISTENT,
                               &st->stmt[i], NULL) != SQLITE_OK) {
            store_db_err(st, err, "cannot be opened");
            sfn_store_close(st);
            return NULL;
        }
    }
    if (!st->read_only && store_wal_start(st, err) != 0) {
        sfn_store_close(st);
        return NULL;
    }
    return st;
}

void sfn_store_close(struct sfn_store *st)
{
    if (st == NULL)
        return;
    /* the engine was freed first (its last commit came through here) */
    store_wal_stop(st);
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(st->stmt[i]);
    if (st->db != NULL)
        sqlite3_close(st->db);
    if (st->lock_fd >= 0)
        close(st->lock_fd); /* after SQLite's own descriptors: this releases the flock */
    buf_release(&st->scratch);
    free(st->path);
    free(st);
}

static const struct sfn_persist_ops store_persist_ops = {.commit = store_commit};

int sfn_store_attach(struct sfn_store *st, struct sfn_engine *eng, struct err *err)
{
    if (st->read_only)
        return err_set(err, STORE_ERR, "the store '%s' was opened read-only", st->path);
    if (st->eng != NULL && st->eng != eng)
        return err_set(err, STORE_ERR, "the store '%s' is already attached to an engine",
                       st->path);
    st->eng = eng;
    sfn_engine_set_persist(eng, &store_persist_ops, st);
    return 0;
}
