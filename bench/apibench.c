/* bench/apibench.c - a load generator for sfnd's HTTP API (make bench, bench/api.py).
 *
 * Opens N keep-alive connections to 127.0.0.1:PORT, each with exactly one request in flight
 * (no pipelining): StartExecution of --arn with no name (sfnd makes a unique one) and a small
 * input. Runs for --seconds after a short warm-up, then prints one JSON line: requests,
 * seconds, requests/s, p50/p99/max latency in ms, errors (non-200 answers). epoll on
 * non-blocking sockets; one thread. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util/xalloc.h"

#define RBUF_SIZE 65536

struct bconn {
    int fd;
    char *req;       /* the request bytes: shared, or owned with --named */
    size_t req_len;
    size_t sent;     /* bytes of req written */
    char rbuf[RBUF_SIZE];
    size_t rlen;
    double t_sent;   /* when the request was started, s */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int usage(void)
{
    fprintf(stderr, "usage: apibench --port PORT --arn STATE_MACHINE_ARN [--conns N] "
            "[--seconds S] [--warmup S] [--named]\n");
    return 2;
}

/* The next request of `c`: the shared one, or a StartExecution with the next name. */
static void conn_next(struct bconn *c, const char *shared, size_t shared_len, const char *arn,
                      int port, bool named, unsigned long *serial)
{
    c->sent = 0;
    if (!named) {
        c->req = (char *)shared;
        c->req_len = shared_len;
        return;
    }
    free(c->req);
    char body[512];
    snprintf(body, sizeof(body), "{\"stateMachineArn\":\"%s\",\"name\":\"r%012lu\","
             "\"input\":\"{\\\"n\\\":1}\"}", arn, (*serial)++);
    c->req = xasprintf("POST / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                       "X-Amz-Target: AWSStepFunctions.StartExecution\r\n"
                       "Content-Type: application/x-amz-json-1.0\r\n"
                       "Content-Length: %zu\r\n\r\n%s", port, strlen(body), body);
    c->req_len = strlen(c->req);
}

/* Writes what is left of the request; -1 on a socket error. */
static int conn_flush(struct bconn *c)
{
    while (c->sent < c->req_len) {
        ssize_t n = send(c->fd, c->req + c->sent, c->req_len - c->sent, MSG_NOSIGNAL);
        if (n < 0)
            return errno == EAGAIN ? 0 : -1;
        c->sent += (size_t)n;
    }
    return 0;
}

/* The length of a complete answer at the start of rbuf, 0 when incomplete; *status gets
 * its status code. */
static size_t answer_len(const struct bconn *c, int *status)
{
    const char *end = NULL;
    for (size_t i = 3; i < c->rlen; i++) {
        if (memcmp(c->rbuf + i - 3, "\r\n\r\n", 4) == 0) {
            end = c->rbuf + i + 1;
            break;
        }
    }
    if (end == NULL)
        return 0;
    size_t head = (size_t)(end - c->rbuf);
    size_t body = 0;
    for (const char *p = c->rbuf; p < end; p++) {
        if ((p == c->rbuf || p[-1] == '\n') && strncasecmp(p, "content-length:", 15) == 0) {
            body = strtoul(p + 15, NULL, 10);
            break;
        }
    }
    if (c->rlen < head + body)
        return 0;
    *status = (c->rlen > 12) ? (int)strtol(c->rbuf + 9, NULL, 10) : 0;
    return head + body;
}

int main(int argc, char **argv)
{
    int port = 0;
    const char *arn = NULL;
    int nconns = 32;
    double seconds = 5.0;
    double warmup = 1.0;
    bool named = false; /* names of our own, in increasing order; else sfnd makes UUIDs */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--named") == 0) {
            named = true;
            continue;
        }
        if (i + 1 >= argc)
            return usage();
        if (strcmp(argv[i], "--port") == 0)
            port = (int)strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--arn") == 0)
            arn = argv[++i];
        else if (strcmp(argv[i], "--conns") == 0)
            nconns = (int)strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--seconds") == 0)
            seconds = strtod(argv[++i], NULL);
        else if (strcmp(argv[i], "--warmup") == 0)
            warmup = strtod(argv[++i], NULL);
        else
            return usage();
    }
    if (port <= 0 || arn == NULL || nconns < 1 || seconds <= 0)
        return usage();

    char *body = xasprintf("{\"stateMachineArn\":\"%s\",\"input\":\"{\\\"n\\\":1}\"}", arn);
    char *req = xasprintf("POST / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                          "X-Amz-Target: AWSStepFunctions.StartExecution\r\n"
                          "Content-Type: application/x-amz-json-1.0\r\n"
                          "Content-Length: %zu\r\n\r\n%s", port, strlen(body), body);
    size_t req_len = strlen(req);
    unsigned long serial = 0;

    int ep = epoll_create1(0);
    struct bconn *conns = xcalloc((size_t)nconns, sizeof(*conns));
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    double t0 = now_s();
    for (int i = 0; i < nconns; i++) {
        struct bconn *c = &conns[i];
        c->fd = socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
            perror("apibench: connect");
            return 1;
        }
        fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
        conn_next(c, req, req_len, arn, port, named, &serial);
        c->t_sent = now_s();
        if (conn_flush(c) != 0) {
            perror("apibench: send");
            return 1;
        }
    }
    size_t cap = 1 << 20, n = 0;
    double *lat = xmalloc(cap * sizeof(*lat));
    unsigned long errors = 0, total = 0, answers = 0; /* answers: warm-up included */
    double start = t0 + warmup;
    double stop = start + seconds;
    struct epoll_event evs[256];
    int open = nconns;
    while (open > 0) {
        double t = now_s();
        int timeout = (int)((stop - t) * 1000) + 1;
        if (t >= stop)
            break;
        int k = epoll_wait(ep, evs, 256, timeout);
        for (int e = 0; e < k; e++) {
            struct bconn *c = evs[e].data.ptr;
            ssize_t got = recv(c->fd, c->rbuf + c->rlen, RBUF_SIZE - c->rlen, 0);
            if (got <= 0) {
                if (got < 0 && errno == EAGAIN)
                    continue;
                fprintf(stderr, "apibench: the server closed a connection\n");
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                c->fd = -1;
                open--;
                continue;
            }
            c->rlen += (size_t)got;
            int status = 0;
            size_t len = answer_len(c, &status);
            if (len == 0)
                continue;
            double done = now_s();
            answers++;
            memmove(c->rbuf, c->rbuf + len, c->rlen - len);
            c->rlen -= len;
            if (done >= start && c->t_sent >= start) {
                total++;
                if (status != 200) {
                    if (errors++ == 0)
                        fprintf(stderr, "apibench: status %d\n", status);
                }
                if (n == cap) {
                    cap *= 2;
                    lat = xrealloc(lat, cap * sizeof(*lat));
                }
                lat[n++] = (done - c->t_sent) * 1000.0;
            }
            conn_next(c, req, req_len, arn, port, named, &serial);
            c->t_sent = done;
            if (conn_flush(c) != 0) {
                perror("apibench: send");
                return 1;
            }
        }
    }
    double elapsed = now_s() - start;
    if (elapsed > seconds)
        elapsed = seconds;
    qsort(lat, n, sizeof(*lat), cmp_double);
    double p50 = n > 0 ? lat[n / 2] : 0;
    double p99 = n > 0 ? lat[(size_t)((double)n * 0.99)] : 0;
    double max = n > 0 ? lat[n - 1] : 0;
    printf("{\"requests\": %lu, \"seconds\": %.3f, \"rps\": %.1f, \"p50_ms\": %.3f, "
           "\"p99_ms\": %.3f, \"max_ms\": %.3f, \"errors\": %lu, \"conns\": %d, "
           "\"answers\": %lu}\n", total, elapsed, (double)total / elapsed, p50, p99, max, errors,
           nconns, answers);
    for (int i = 0; i < nconns; i++) {
        if (conns[i].fd >= 0)
            close(conns[i].fd);
        if (named)
            free(conns[i].req);
    }
    close(ep);
    free(lat);
    free(conns);
    free(req);
    free(body);
    return errors > 0 || open < nconns ? 1 : 0;
}
