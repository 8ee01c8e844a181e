/* util/err.c - struct err: first error wins, causes are owned strings. */
#include "util/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

static void err_name_put(struct err *err, const char *name)
{
    if (name == NULL) {
        err->name[0] = '\0';
        return;
    }
    size_t n = strlen(name);
    if (n >= sizeof(err->name))
        n = sizeof(err->name) - 1;
    memcpy(err->name, name, n);
    err->name[n] = '\0';
}

int err_vset(struct err *err, const char *name, const char *fmt, va_list ap)
{
    if (err == NULL || err->set)
        return -1;
    err->set = true;
    err_name_put(err, name);
    err->cause = fmt != NULL ? xvasprintf(fmt, ap) : NULL;
    return -1;
}

int err_set(struct err *err, const char *name, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_vset(err, name, fmt, ap);
    va_end(ap);
    return -1;
}

int err_set_raw(struct err *err, const char *name, const char *cause)
{
    if (err == NULL || err->set)
        return -1;
    err->set = true;
    err_name_put(err, name);
    err->cause = cause != NULL ? xstrdup(cause) : NULL;
    return -1;
}

int err_reset(struct err *err, const char *name, const char *cause)
{
    err_clear(err);
    return err_set_raw(err, name, cause);
}

void err_clear(struct err *err)
{
    if (err == NULL)
        return;
    free(err->cause);
    err->cause = NULL;
    err->name[0] = '\0';
    err->set = false;
}

void err_move(struct err *dst, struct err *src)
{
    err_clear(dst);
    *dst = *src;
    src->set = false;
    src->name[0] = '\0';
    src->cause = NULL;
}

void err_copy(struct err *dst, const struct err *src)
{
    err_clear(dst);
    if (!src->set)
        return;
    dst->set = true;
    memcpy(dst->name, src->name, sizeof(dst->name));
    dst->cause = src->cause != NULL ? xstrdup(src->cause) : NULL;
}
