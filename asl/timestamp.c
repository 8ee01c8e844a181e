/* asl/timestamp.c - RFC 3339 timestamps as Step Functions accepts them (asl.md 7.3, 10.4):
 * parsing into an instant, comparing instants, and formatting epoch milliseconds. Choice
 * rules, Wait states and the context object use these. The calendar arithmetic is the
 * proleptic Gregorian days-from-civil algorithm, written out so no libc time zone state
 * is involved. */
#include "asl/asl.h"

#include <stdio.h>

/* Days since 1970-01-01 of the proleptic Gregorian date y-m-d (m 1..12, d 1..31). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;                                      /* [0, 399] */
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;      /* [0, 365] */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;               /* [0, 146096] */
    return era * 146097 + doe - 719468;
}

/* The inverse of days_from_civil. */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;                                         /* [0, 146096] */
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;    /* [0, 399] */
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);                  /* [0, 365] */
    int64_t mp = (5 * doy + 2) / 153;                                       /* [0, 11] */
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Reads exactly `n` decimal digits at *p into *out and advances *p. Returns -1 if any of
 * them is not a digit. */
static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

/* Consumes the character `c` at *p. Returns -1 if it is not there. */
static int expect(const char **p, char c)
{
    if (**p != c)
        return -1;
    (*p)++;
    return 0;
}

/* Grammar (RFC 3339 section 5.6, as Step Functions applies it):
 *   YYYY-MM-DD "T" hh:mm:ss [ "." 1*DIGIT ] ( "Z" / ("+" / "-") hh:mm )
 * Uppercase T and Z only; seconds required; leap seconds (ss = 60) rejected; fractional
 * digits beyond nanoseconds are accepted and truncated. */
int asl_time_parse(const char *text, struct asl_time *out)
{
    const char *p = text;
    int year, month, day, hour, min, sec;
    if (digits(&p, 4, &year) < 0 || expect(&p, '-') < 0 || digits(&p, 2, &month) < 0 ||
        expect(&p, '-') < 0 || digits(&p, 2, &day) < 0 || expect(&p, 'T') < 0 ||
        digits(&p, 2, &hour) < 0 || expect(&p, ':') < 0 || digits(&p, 2, &min) < 0 ||
        expect(&p, ':') < 0 || digits(&p, 2, &sec) < 0)
        return -1;
    if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month))
        return -1;
    if (hour > 23 || min > 59 || sec > 59)
        return -1;

    int32_t nsec = 0;
    if (*p == '.') {
        p++;
        int n = 0;
        for (; *p >= '0' && *p <= '9'; p++, n++) {
            if (n < 9)
                nsec = nsec * 10 + (*p - '0');
        }
        if (n == 0)
            return -1;
        for (; n < 9; n++)
            nsec *= 10;
    }

    int offset = 0; /* seconds east of UTC */
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        int oh, om;
        p++;
        if (digits(&p, 2, &oh) < 0 || expect(&p, ':') < 0 || digits(&p, 2, &om) < 0)
            return -1;
        if (oh > 23 || om > 59)
            return -1;
        offset = sign * (oh * 3600 + om * 60);
    } else {
        return -1;
    }
    if (*p != '\0')
        return -1;

    int64_t days = days_from_civil(year, month, day);
    out->sec = days * 86400 + hour * 3600 + min * 60 + sec - offset;
    out->nsec = nsec;
    return 0;
}

int asl_time_cmp(const struct asl_time *a, const struct asl_time *b)
{
    if (a->sec != b->sec)
        return a->sec < b->sec ? -1 : 1;
    if (a->nsec != b->nsec)
        return a->nsec < b->nsec ? -1 : 1;
    return 0;
}

void asl_time_format_ms(int64_t ms, char *buf, size_t size)
{
    int64_t sec = ms / 1000;
    int64_t frac = ms % 1000;
    if (frac < 0) {
        frac += 1000;
        sec--;
    }
    int64_t days = sec / 86400;
    int64_t rem = sec % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    int64_t y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    snprintf(buf, size, "%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ", (long long)y, m, d,
             (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60), (int)frac);
}
