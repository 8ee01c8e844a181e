/* util/xalloc.h - allocation that never returns NULL: out of memory aborts. */
#ifndef SFN_UTIL_XALLOC_H
#define SFN_UTIL_XALLOC_H

#include <stdarg.h>
#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
/* Installs jansson's allocator, once, before any json_t is made: small blocks from per-thread
 * pools (xalloc.c), larger ones from xmalloc; out of memory aborts. What jansson itself
 * hands out to be freed (json_dumps) must then go to jansson's free function, not free():
 * use json_compact() (util/json.h) instead. */
void xalloc_install_jansson(void);

#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
