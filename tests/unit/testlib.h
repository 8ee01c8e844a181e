/* tests/unit/testlib.h - shared by the C test programs: counting, and the reader for
 * STYLE.md's data files (blocks of lines separated by blank lines; "#" lines are comments;
 * a "%%FAIL" line before a block marks a case whose last line is an expected error name).
 * Each program ends with "N passed, N failed" as its last line (tests/run.sh adds them). */
#ifndef SFN_TESTLIB_H
#define SFN_TESTLIB_H

#include <dirent.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tl {
    int passed;
    int failed;
};

struct tl_block {
    const char *file; /* the data file */
    int line;         /* line of the block's first line */
    bool fail;        /* preceded by %%FAIL */
    char **lines;     /* the block's lines (without newline) */
    size_t n;         /* number of lines */
};

static inline void tl_check(struct tl *t, bool ok, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static inline void tl_check(struct tl *t, bool ok, const char *where, const char *fmt, ...)
{
    if (ok) {
        t->passed++;
        return;
    }
    t->failed++;
    fprintf(stdout, "FAIL %s: ", where);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
}

static inline int tl_finish(struct tl *t)
{
    printf("%d passed, %d failed\n", t->passed, t->failed);
    return t->failed == 0 ? 0 : 1;
}

/* Reads a whole file. Returns a NUL-terminated malloc'd buffer (free() it) and its length in
 * *len (may be NULL), or NULL when it cannot be read. */
static inline char *tl_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 4096;
    size_t n = 0;
    char *data = malloc(cap);
    size_t got;
    while (data != NULL && (got = fread(data + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (n + 1 == cap) {
            cap *= 2;
            data = realloc(data, cap);
        }
    }
    fclose(f);
    if (data == NULL)
        abort();
    data[n] = '\0';
    if (len != NULL)
        *len = n;
    return data;
}

/* Calls fn for each block of `path`. Returns -1 if the file cannot be read. */
static inline int tl_each_block(const char *path, void (*fn)(const struct tl_block *, void *),
                                void *arg)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    struct tl_block b = {path, 0, false, NULL, 0};
    int lineno = 0;
    for (;;) {
        len = getline(&line, &cap, f);
        lineno++;
        bool end = len < 0;
        if (!end && len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        if (!end && line[0] == '#')
            continue;
        if (!end && strcmp(line, "%%FAIL") == 0) {
            b.fail = true;
            continue;
        }
        if (end || len == 0) {
            if (b.n > 0)
                fn(&b, arg);
            for (size_t i = 0; i < b.n; i++)
                free(b.lines[i]);
            free(b.lines);
            b.lines = NULL;
            b.n = 0;
            b.fail = false;
            if (end)
                break;
            continue;
        }
        if (b.n == 0)
            b.line = lineno;
        b.lines = realloc(b.lines, (b.n + 1) * sizeof(char *));
        b.lines[b.n++] = strdup(line);
    }
    free(line);
    fclose(f);
    return 0;
}

/* Calls fn(path) for each file in dir whose name ends in `suffix`, in name order. */
static inline int tl_each_file(const char *dir, const char *suffix,
                               void (*fn)(const char *path, void *), void *arg)
{
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    if (n < 0)
        return -1;
    size_t sl = strlen(suffix);
    for (int i = 0; i < n; i++) {
        const char *nm = names[i]->d_name;
        size_t l = strlen(nm);
        if (nm[0] != '.' && l >= sl && strcmp(nm + l - sl, suffix) == 0) {
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", dir, nm);
            fn(path, arg);
        }
        free(names[i]);
    }
    free(names);
    return 0;
}

#endif
