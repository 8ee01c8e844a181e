/* store/wal.c - WAL checkpoints off the commit path.
 *
 * SQLite's automatic checkpoint runs inside the COMMIT that crosses its threshold: that commit
 * copies the WAL's pages into the database file and syncs it, and every answer waiting for
 * it waits too (the p99 of sfnd's API). Instead, the writer's WAL hook wakes a thread that
 * holds a second connection to the same file and runs PASSIVE checkpoints there: they never
 * block the writer. The writer restarts the WAL from its beginning only when a checkpoint
 * has copied all of it, which a thread chasing a busy writer rarely manages: so when the WAL
 * passes STORE_WAL_HARD pages, the writer itself copies the remainder (the frames since the
 * thread's last run) while the thread is idle, and the WAL stays bounded. */
#include <pthread.h>
#include <stdlib.h>

#include "store/internal.h"

#define STORE_WAL_SOFT 1000  /* WAL pages that wake the checkpoint thread (4 MB of 4 KiB pages) */
#define STORE_WAL_HARD 8000  /* WAL pages past which the writer finishes the thread's work */

struct store_wal {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool want;          /* a checkpoint is asked for */
    bool busy;          /* the thread is checkpointing */
    bool stop;
    sqlite3 *db;        /* the thread's own connection */
    uint64_t runs;      /* checkpoints run by the thread */
};

static void *wal_main(void *arg)
{
    struct store_wal *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->want && !w->stop)
            pthread_cond_wait(&w->cv, &w->mu);
        if (w->stop)
            break;
        w->want = false;
        w->busy = true;
        pthread_mutex_unlock(&w->mu);
        /* PASSIVE: copies what no reader needs and never waits on the writer; SQLITE_BUSY
         * (another checkpoint running) is harmless, the next wake-up retries */
        sqlite3_wal_checkpoint_v2(w->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        pthread_mutex_lock(&w->mu);
        w->busy = false;
        w->runs++;
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* The writer's WAL hook: called after each commit with the WAL's size in pages. */
static int on_wal(void *arg, sqlite3 *db, const char *name, int pages)
{
    struct sfn_store *st = arg;
    struct store_wal *w = st->wal;
    if (pages < STORE_WAL_SOFT)
        return SQLITE_OK;
    pthread_mutex_lock(&w->mu);
    bool idle = !w->busy && !w->want;
    if (idle && pages < STORE_WAL_HARD) {
        w->want = true;
        pthread_cond_signal(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    if (idle && pages >= STORE_WAL_HARD)
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    return SQLITE_OK;
}

int store_wal_start(struct sfn_store *st, struct err *err)
{
    static const char *const sync[] = {
        [SFN_DURABILITY_FULL] = "PRAGMA synchronous = FULL",
        [SFN_DURABILITY_NORMAL] = "PRAGMA synchronous = NORMAL",
        [SFN_DURABILITY_OFF] = "PRAGMA synchronous = OFF",
    };
    struct store_wal *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return err_set(err, STORE_ERR, "the store '%s' cannot be opened: out of memory",
                       st->path);
    if (sqlite3_open_v2(st->path, &w->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK ||
        sqlite3_exec(w->db, sync[st->opt.durability], NULL, NULL, NULL) != SQLITE_OK) {
        err_set(err, STORE_ERR, "the store '%s' cannot be opened for checkpoints: %s",
                st->path, w->db != NULL ? sqlite3_errmsg(w->db) : "out of memory");
        sqlite3_close(w->db);
        free(w);
        return -1;
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (pthread_create(&w->thread, NULL, wal_main, w) != 0) {
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        sqlite3_close(w->db);
        free(w);
        return err_set(err, STORE_ERR, "the store '%s' cannot start its checkpoint thread",
                       st->path);
    }
    st->wal = w;
    sqlite3_wal_hook(st->db, on_wal, st); /* replaces SQLite's automatic checkpoint */
    return 0;
}

void store_wal_stop(struct sfn_store *st)
{
    struct store_wal *w = st->wal;
    if (w == NULL)
        return;
    sqlite3_wal_hook(st->db, NULL, NULL);
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    sqlite3_close(w->db);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
    st->wal = NULL;
}
