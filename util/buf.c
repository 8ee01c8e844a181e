/* util/buf.c - growable byte buffer. */
#include "util/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

void buf_init(struct buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void buf_release(struct buf *b)
{
    free(b->data);
    buf_init(b);
}

void buf_reset(struct buf *b)
{
    b->len = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

void buf_grow(struct buf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap != 0 ? b->cap : 64;
    while (cap < b->len + extra + 1)
        cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
    /* one pass when the text fits in the room left (the usual case); else measured, grown
     * and printed again */
    size_t room = b->cap > b->len ? b->cap - b->len : 0;
    va_list ap;
    va_start(ap, fmt);
    va_list ap2;
    va_copy(ap2, ap);
    char probe[1];
    int n = vsnprintf(room > 0 ? b->data + b->len : probe, room > 0 ? room : sizeof(probe), fmt,
                      ap2);
    va_end(ap2);
    if (n > 0 && (size_t)n >= room) {
        buf_grow(b, (size_t)n);
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    }
    if (n > 0)
        b->len += (size_t)n;
    else if (b->data != NULL)
        b->data[b->len] = '\0'; /* what a partial first pass may have written over */
    va_end(ap);
}

const char *buf_cstr(struct buf *b)
{
    if (b->data == NULL)
        return "";
    return b->data;
}

char *buf_detach(struct buf *b)
{
    char *p = b->data != NULL ? b->data : xstrdup("");
    buf_init(b);
    return p;
}
