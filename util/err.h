/* util/err.h - the error value every fallible function fills: an ASL error name, which
 * Retry and Catch match, and a cause, which only people read. */
#ifndef SFN_UTIL_ERR_H
#define SFN_UTIL_ERR_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#define ERR_NAME_MAX 256 /* longest error name kept; AWS caps error names at 256 chars */

struct err {
    bool set;                 /* an error was recorded (name may still be empty) */
    char name[ERR_NAME_MAX];  /* "States.Timeout", a Fail state's Error; "" when absent */
    char *cause;              /* owned, may be NULL (a Fail state without Cause) */
};

#define ERR_INIT {false, {0}, NULL}

/* Makes *err an unset error like ERR_INIT, without zeroing the name buffer: for hot paths
 * where an error is rare. */
static inline void err_init(struct err *err)
{
    err->set = false;
    err->name[0] = '\0';
    err->cause = NULL;
}

/* Records an error unless one is already set (first error wins). `name` may be NULL for
 * "no error name"; `fmt` may be NULL for "no cause". Always returns -1. */
int err_set(struct err *err, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int err_vset(struct err *err, const char *name, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
/* Like err_set with the cause taken verbatim (may be NULL). Returns -1. */
int err_set_raw(struct err *err, const char *name, const char *cause);
/* Replaces whatever err holds. Returns -1. */
int err_reset(struct err *err, const char *name, const char *cause);
/* Frees the cause and marks err unset. */
void err_clear(struct err *err);
/* Moves src into dst (dst is cleared first); src is left unset. */
void err_move(struct err *dst, struct err *src);
/* Copies src into dst (dst is cleared first). */
void err_copy(struct err *dst, const struct err *src);

#endif
