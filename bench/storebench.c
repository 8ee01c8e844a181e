/* bench/storebench.c - the store's figures (issue 3), one measurement per run, one JSON line
 * on stdout:
 *
 *   storebench sqlite DB [COMMITS]
 *       SQLite's own rate of single-row commits in WAL mode with synchronous=FULL (an fsync
 *       per commit) on the disk holding DB: the reference for the durable rates below.
 *   storebench durable DB DEFINITION INPUT EXECUTIONS full|normal|off
 *       starts EXECUTIONS executions of DEFINITION at once on a store and runs them to the
 *       end: durable state transitions per second (states entered, all executions), commits.
 *   storebench wait DB COUNT
 *       starts COUNT executions that enter a one-hour Wait, commits them, and leaves them
 *       RUNNING in DB: resident memory per waiting execution (after malloc_trim).
 *   storebench recover DB
 *       recovers every RUNNING execution of DB: how long it takes, and memory per execution.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include <sqlite3.h>

#include "sfn.h"
#include "tests/unit/testlib.h"

static long rss_kb(void)
{
    long kb = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    char line[256];
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    }
    fclose(f);
    return kb;
}

static double now_s(void)
{
    return (double)uv_hrtime() / 1e9;
}

static int die(const char *what, const struct err *err)
{
    fprintf(stderr, "storebench: %s: %s\n", what, err != NULL && err->cause ? err->cause : "");
    return 2;
}

/* ---- sqlite ---- */

static int bench_sqlite(const char *path, int commits)
{
    unlink(path);
    sqlite3 *db = NULL;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        return die("sqlite3_open", NULL);
    sqlite3_exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
                     "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)", NULL, NULL, NULL);
    sqlite3_stmt *s = NULL;
    sqlite3_prepare_v2(db, "INSERT INTO t (v) VALUES ('a row of about fifty bytes of text ......')",
                       -1, &s, NULL);
    double t0 = now_s();
    for (int i = 0; i < commits; i++) {
        sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
        sqlite3_step(s);
        sqlite3_reset(s);
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    }
    double dt = now_s() - t0;
    sqlite3_finalize(s);
    sqlite3_close(db);
    printf("{\"sqlite_commits_per_s\":%.0f,\"commits\":%d,\"seconds\":%.3f}\n", commits / dt,
           commits, dt);
    return 0;
}

/* ---- durable ---- */

struct counts {
    size_t entered;
    size_t running;
    size_t waiting;
    size_t failed;
};

static void on_event(struct sfn_execution *ex, size_t i, void *arg)
{
    struct counts *c = arg;
    const char *t = sfn_execution_event_type(ex, i);
    size_t n = t != NULL ? strlen(t) : 0;
    if (n > 12 && strcmp(t + n - 12, "StateEntered") == 0)
        c->entered++;
    if (t != NULL && strcmp(t, "WaitStateEntered") == 0)
        c->waiting++;
}

static void on_done(struct sfn_execution *ex, void *arg)
{
    struct counts *c = arg;
    if (sfn_execution_status(ex) != SFN_SUCCEEDED)
        c->failed++;
    c->running--;
    sfn_execution_free(ex);
}

static enum sfn_durability durability_of(const char *s)
{
    return strcmp(s, "off") == 0      ? SFN_DURABILITY_OFF
           : strcmp(s, "normal") == 0 ? SFN_DURABILITY_NORMAL
                                      : SFN_DURABILITY_FULL;
}

struct rig {
    uv_loop_t loop;
    struct sfn_engine *eng;
    struct sfn_store *store;
};

static int rig_open(struct rig *r, const char *path, enum sfn_durability d, bool fresh)
{
    if (fresh) {
        char aux[4200];
        unlink(path);
        snprintf(aux, sizeof(aux), "%s-wal", path);
        unlink(aux);
        snprintf(aux, sizeof(aux), "%s-shm", path);
        unlink(aux);
    }
    uv_loop_init(&r->loop);
    struct sfn_engine_options eo = {false, 0, 1, NULL, NULL, 0};
    r->eng = sfn_engine_new(&r->loop, &eo);
    struct sfn_store_options so = {d, 0, false, NULL, NULL};
    struct err err = ERR_INIT;
    r->store = sfn_store_open(path, &so, &err);
    if (r->store == NULL || sfn_store_attach(r->store, r->eng, &err) != 0)
        return die("store", &err);
    return 0;
}

static void rig_close(struct rig *r)
{
    sfn_engine_free(r->eng);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    uv_loop_close(&r->loop);
    sfn_store_close(r->store);
}

static int bench_durable(const char *path, const char *defp, const char *inp, long n,
                         const char *dur)
{
    size_t dlen = 0, ilen = 0;
    char *def = tl_read_file(defp, &dlen);
    char *in = tl_read_file(inp, &ilen);
    if (def == NULL || in == NULL)
        return die("cannot read the workload", NULL);
    json_t *input = json_loadb(in, ilen, JSON_DECODE_ANY, NULL);
    struct rig r;
    if (rig_open(&r, path, durability_of(dur), true) != 0)
        return 2;
    struct err err = ERR_INIT;
    struct sfn_machine *m =
        sfn_store_machine(r.store, r.eng, "bench", def, dlen, SFN_STANDARD, NULL, &err);
    if (m == NULL)
        return die("definition", &err);
    struct counts c = {0, 0, 0, 0};
    struct sfn_execution_options xo = {NULL, NULL, on_done, on_event, &c};
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof(name), "e%ld", i);
        xo.name = name;
        if (sfn_execution_start(r.eng, m, input, &xo, &err) == NULL)
            return die("start", &err);
        c.running++;
    }
    uv_run(&r.loop, UV_RUN_DEFAULT);
    double dt = now_s() - t0;
    printf("{\"durability\":\"%s\",\"executions\":%ld,\"transitions\":%zu,\"seconds\":%.3f,"
           "\"transitions_per_s\":%.0f,\"failed\":%zu}\n",
           dur, n, c.entered, dt, c.entered / dt, c.failed + c.running);
    sfn_machine_free(m);
    rig_close(&r);
    json_decref(input);
    free(def);
    free(in);
    return 0;
}

/* ---- waiting executions ---- */

static const char wait_def[] =
    "{\"StartAt\":\"Hold\",\"States\":{\"Hold\":{\"Type\":\"Wait\",\"Seconds\":3600,"
    "\"Next\":\"Done\"},\"Done\":{\"Type\":\"Pass\",\"End\":true}}}";

static int bench_wait(const char *path, long n)
{
    struct rig r;
    if (rig_open(&r, path, SFN_DURABILITY_NORMAL, true) != 0)
        return 2;
    struct err err = ERR_INIT;
    struct sfn_machine *m = sfn_store_machine(r.store, r.eng, "hold", wait_def,
                                              sizeof(wait_def) - 1, SFN_STANDARD, NULL, &err);
    if (m == NULL)
        return die("definition", &err);
    malloc_trim(0);
    long before = rss_kb();
    struct counts c = {0, 0, 0, 0};
    struct sfn_execution_options xo = {NULL, NULL, on_done, on_event, &c};
    json_t *input = json_pack("{s:s}", "job", "nightly-report");
    double t0 = now_s();
    for (long i = 0; i < n;) {
        for (long k = 0; k < 2000 && i < n; k++, i++) { /* a batch per loop turn */
            char name[32];
            snprintf(name, sizeof(name), "wait-%ld", i);
            xo.name = name;
            if (sfn_execution_start(r.eng, m, input, &xo, &err) == NULL)
                return die("start", &err);
        }
        while (c.waiting < (size_t)i)
            uv_run(&r.loop, UV_RUN_ONCE);
    }
    double dt = now_s() - t0;
    malloc_trim(0);
    long after = rss_kb();
    printf("{\"waiting\":%ld,\"seconds_to_start\":%.3f,\"rss_kb_before\":%ld,"
           "\"rss_kb_after\":%ld,\"bytes_per_waiting_execution\":%.0f}\n",
           n, dt, before, after, (double)(after - before) * 1024.0 / (double)n);
    fflush(stdout);
    json_decref(input);
    sfn_machine_free(m);
    _exit(0); /* leave them RUNNING in the store, as a crash would */
}

static int bench_recover(const char *path)
{
    struct rig r;
    malloc_trim(0);
    long before = rss_kb();
    if (rig_open(&r, path, SFN_DURABILITY_NORMAL, false) != 0)
        return 2;
    struct err err = ERR_INIT;
    size_t n = 0;
    struct counts c = {0, 0, 0, 0};
    struct sfn_execution_options xo = {NULL, NULL, on_done, on_event, &c};
    double t0 = now_s();
    if (sfn_store_recover(r.store, r.eng, &xo, &n, &err) != 0)
        return die("recover", &err);
    double dt = now_s() - t0;
    malloc_trim(0);
    long after = rss_kb();
    printf("{\"recovered\":%zu,\"seconds\":%.3f,\"rss_kb\":%ld,"
           "\"bytes_per_recovered_execution\":%.0f}\n",
           n, dt, after, n > 0 ? (double)(after - before) * 1024.0 / (double)n : 0.0);
    fflush(stdout);
    _exit(0); /* nothing to commit: they are all waiting */
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "sqlite") == 0)
        return bench_sqlite(argv[2], argc > 3 ? atoi(argv[3]) : 300);
    if (argc == 7 && strcmp(argv[1], "durable") == 0)
        return bench_durable(argv[2], argv[3], argv[4], atol(argv[5]), argv[6]);
    if (argc == 4 && strcmp(argv[1], "wait") == 0)
        return bench_wait(argv[2], atol(argv[3]));
    if (argc == 3 && strcmp(argv[1], "recover") == 0)
        return bench_recover(argv[2]);
    fprintf(stderr, "usage: storebench sqlite DB [N] | durable DB DEF INPUT N full|normal|off | "
                    "wait DB N | recover DB\n");
    return 2;
}
