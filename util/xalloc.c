/* util/xalloc.c - allocation wrappers; out of memory is fatal everywhere (STYLE.md). */
#include "util/xalloc.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(size_t n)
{
    fprintf(stderr, "sfn: out of memory allocating %zu bytes\n", n);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n != 0 ? n : 1);
    if (p == NULL)
        oom(n);
    return p;
}

void *xcalloc(size_t count, size_t size)
{
    void *p = calloc(count != 0 ? count : 1, size != 0 ? size : 1);
    if (p == NULL)
        oom(count * size);
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n != 0 ? n : 1);
    if (q == NULL)
        oom(n);
    return q;
}

char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *xvasprintf(const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    char probe[1];
    int n = vsnprintf(probe, sizeof(probe), fmt, ap2); /* measures */
    va_end(ap2);
    if (n < 0)
        n = 0;
    char *p = xmalloc((size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    return p;
}

char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *p = xvasprintf(fmt, ap);
    va_end(ap);
    return p;
}

/* ---- jansson's allocator ----
 *
 * A state builds a handful of JSON values (an object is a header, a bucket table and one
 * block per member) and the history keeps them, so malloc would serve nearly every one from
 * its slowest path, carving the top of the heap. Blocks of up to POOL_MAX_BLOCK bytes come
 * instead from per-size free lists, refilled by carving chunks of POOL_CHUNK bytes taken
 * from xmalloc: a few instructions each way. A freed block goes back to the list of its
 * size; chunks are never given back (a process keeps its peak of small JSON values). The
 * lists are per thread: a block freed by another thread joins that thread's lists, which is
 * harmless. Blocks are laid out as malloc's: 16-byte aligned, an 8-byte header just before
 * holding the size class (POOL_LARGE: a block from xmalloc, for larger requests).
 * Sanitizer builds keep plain malloc, so ASan and LSan still see every JSON value. */
#if defined(__SANITIZE_ADDRESS__)
#define POOL_OFF 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(leak_sanitizer)
#define POOL_OFF 1
#endif
#endif

#ifndef POOL_OFF
#define POOL_ALIGN 16               /* bytes: malloc's alignment and block granularity */
#define POOL_MAX_BLOCK 512          /* bytes, header included; larger requests use xmalloc */
#define POOL_CLASSES (POOL_MAX_BLOCK / POOL_ALIGN + 1)
#define POOL_CHUNK (256u << 10)     /* bytes carved into blocks at a time */
#define POOL_LARGE 0u               /* header of a block from xmalloc */

struct pool_free {
    struct pool_free *next;
};

struct pool {
    struct pool_free *free[POOL_CLASSES]; /* by class (block bytes / 16): free blocks */
    char *bump;                           /* next unused byte of the current chunk */
    char *end;                            /* end of the current chunk */
    void *chunks;                         /* every chunk, linked through its first word */
};

static _Thread_local struct pool pool;

/* A new block of `cls` * 16 bytes, carved from the current chunk or a new one. */
static void *pool_carve(size_t cls)
{
    size_t size = cls * POOL_ALIGN;
    if ((size_t)(pool.end - pool.bump) < size) {
        char *c = xmalloc(POOL_CHUNK);
        *(void **)c = pool.chunks; /* keeps every chunk reachable, for leak checkers */
        pool.chunks = c;
        /* headers at 8 mod 16, so that the blocks after them are 16-byte aligned */
        pool.bump = c + POOL_ALIGN + (POOL_ALIGN - sizeof(uint64_t));
        pool.end = c + POOL_CHUNK;
    }
    char *b = pool.bump;
    pool.bump += size;
    *(uint64_t *)(void *)b = cls;
    return b + sizeof(uint64_t);
}

static void *json_xmalloc(size_t n)
{
    if (n <= POOL_MAX_BLOCK - sizeof(uint64_t)) {
        /* header + n rounded up to 16, at least 32 bytes (malloc's smallest chunk) */
        size_t cls = (n + sizeof(uint64_t) + POOL_ALIGN - 1) / POOL_ALIGN;
        if (cls < 2)
            cls = 2;
        struct pool_free *b = pool.free[cls];
        if (b == NULL)
            return pool_carve(cls);
        pool.free[cls] = b->next;
        return b;
    }
    char *p = xmalloc(n + POOL_ALIGN);
    *(uint64_t *)(void *)(p + POOL_ALIGN - sizeof(uint64_t)) = POOL_LARGE;
    return p + POOL_ALIGN;
}

static void json_xfree(void *ptr)
{
    if (ptr == NULL)
        return;
    uint64_t cls = ((uint64_t *)ptr)[-1];
    if (cls == POOL_LARGE) {
        free((char *)ptr - POOL_ALIGN);
        return;
    }
    struct pool_free *b = ptr;
    b->next = pool.free[cls];
    pool.free[cls] = b;
}
#else
static void *json_xmalloc(size_t n)
{
    return xmalloc(n);
}

static void json_xfree(void *ptr)
{
    free(ptr);
}
#endif

void xalloc_install_jansson(void)
{
    json_set_alloc_funcs(json_xmalloc, json_xfree);
}
