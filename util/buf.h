/* util/buf.h - a growable byte buffer, always NUL-terminated. */
#ifndef SFN_UTIL_BUF_H
#define SFN_UTIL_BUF_H

#include <stddef.h>
#include <string.h>

struct buf {
    char *data;  /* owned; NUL-terminated when len > 0 or after buf_cstr() */
    size_t len;  /* bytes used, excluding the NUL */
    size_t cap;  /* bytes allocated */
};

#define BUF_INIT {NULL, 0, 0}

void buf_init(struct buf *b);
void buf_release(struct buf *b);
void buf_reset(struct buf *b);
void buf_grow(struct buf *b, size_t extra);
/* buf_add, buf_puts and buf_putc are inline: every serialiser calls them per piece */
static inline void buf_add(struct buf *b, const void *data, size_t n)
{
    if (b->len + n + 1 > b->cap)
        buf_grow(b, n);
    memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static inline void buf_puts(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

static inline void buf_putc(struct buf *b, char c)
{
    if (b->len + 2 > b->cap)
        buf_grow(b, 1);
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
}

void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Returns the contents as a C string (never NULL). */
const char *buf_cstr(struct buf *b);
/* Hands the contents to the caller (free() it) and resets the buffer. */
char *buf_detach(struct buf *b);

#endif
