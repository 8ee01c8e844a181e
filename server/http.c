/* server/http.c - HTTP/1.1 connections of sfnd on a libuv loop, parsed by http-parser.
 *
 * A connection handles one request at a time: when a request is complete the parser is
 * paused; the handler answers (server_reply), the answer is written, and only then is the
 * rest of what the client sent parsed. Reading goes on meanwhile only while nothing read is
 * left unparsed (bytes that arrive then stop it until the answer is written, unless the
 * answer is already out and only its write callback is due; an EOF then still gets the
 * answer). An answer released by the commit hook is written with uv_try_write and, when
 * taken whole, finished at once. So pipelined requests are answered in order, a connection holds
 * at most one read buffer, one request and one answer, and a slow or hostile client costs
 * only its own connection (limits and timeouts in server.h).
 *
 * Replies that acknowledge a change wait for the engine's commit: each is held (a `struct
 * held` ticket) until the commit hook (sfn_engine_after_commit, set by main.c) calls back
 * after the commit of everything changed so far. An idle handle keeps the loop from blocking
 * in poll while replies wait. A ticket outlives a connection that closes meanwhile.
 *
 * A handler may also park its request (GetActivityTask's long poll, server_req_defer) and
 * answer later. While parked, a connection whose bytes are all parsed watches for EOF, so a
 * client that goes away is reported (on_gone); bytes that arrive meanwhile stay unparsed in
 * the read buffer until the answer is written. */
#include <assert.h>
#include <http_parser.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "server/server.h"
#include "util/buf.h"
#include "util/xalloc.h"

#define READ_BUF_SIZE (16 * 1024)
#define KEEP_BUF_MAX (64 * 1024) /* a request buffer larger than this is freed between requests */

enum conn_state {
    CONN_READING,  /* reading and parsing (idle, or a request partly received) */
    CONN_HANDLING, /* a complete request is being answered */
    CONN_DEFERRED, /* the handler parked the request and answers later */
    CONN_WAITING,  /* the answer waits for the engine's commit */
    CONN_WRITING,  /* the answer is being written */
    CONN_CLOSING,  /* uv_close called */
};

struct server_req {
    struct conn *conn;
    struct buf url;         /* request target */
    struct buf headers;     /* "name\0value\0" pairs */
    bool in_value;          /* the last header callback was a value */
    size_t header_bytes;    /* request line and headers so far */
    struct buf body;
    char id[37];            /* x-amzn-RequestId */
    bool replied;
    void (*on_gone)(void *arg); /* parked: the connection closed before the answer */
    void *gone_arg;
};

/* A reply waiting for the commit hook's call. */
struct held {
    struct server *srv;
    struct conn *conn;        /* NULL once the connection closed or was answered otherwise */
    struct held *next, *prev; /* server's list, so that tickets never called are freed */
};

struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    struct server *srv;
    enum conn_state state;
    int handles;              /* open uv handles; freed when both are closed */
    http_parser parser;
    struct server_req req;
    bool in_request;          /* the first byte of a request has been parsed */
    bool keep_alive;          /* the current request allows another after it */
    int reject;               /* a limit was exceeded: status to answer, then close */
    char *rbuf;               /* READ_BUF_SIZE bytes */
    size_t roff, rlen;        /* unparsed bytes rbuf[roff .. rlen) */
    struct buf out;           /* the answer being written or waiting */
    bool close_after;         /* close once the answer is written */
    uv_write_t wreq;
    struct held *held;        /* CONN_WAITING: the ticket the commit hook calls back */
    struct conn *next, *prev; /* server's list of connections */
};

struct server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    bool listening;
    uv_idle_t idle;           /* keeps the loop turning while replies wait */
    int handles;              /* open handles of the server itself */
    server_handler_fn fn;
    void *arg;
    struct conn *conns;
    size_t n_conns;
    size_t n_waiting;         /* connections in CONN_WAITING */
    struct held *held;        /* tickets given to the commit hook and not called back yet */
    void (*after_commit)(void *arg, void (*fn)(void *), void *fn_arg);
    void *commit_arg;
    bool commit_failed;
    bool closing;
    void (*on_closed)(void *arg);
    void *closed_arg;
    uint64_t rng;
    int port;
    struct server_limits lim;
    size_t body_bytes;        /* request bodies held by all connections (SERVER_BODY_BUDGET) */
};

/* Every state change of a connection goes through here; the allowed ones are:
 * READING -> HANDLING -> (DEFERRED ->) (WAITING ->) WRITING -> READING, and anything ->
 * CLOSING. */
static void conn_set_state(struct conn *c, enum conn_state to)
{
    static const unsigned allowed[] = {
        [CONN_READING] = 1u << CONN_HANDLING | 1u << CONN_CLOSING,
        [CONN_HANDLING] = 1u << CONN_DEFERRED | 1u << CONN_WAITING | 1u << CONN_WRITING |
                          1u << CONN_CLOSING,
        [CONN_DEFERRED] = 1u << CONN_WAITING | 1u << CONN_WRITING | 1u << CONN_CLOSING,
        [CONN_WAITING] = 1u << CONN_WRITING | 1u << CONN_CLOSING,
        [CONN_WRITING] = 1u << CONN_READING | 1u << CONN_CLOSING,
        [CONN_CLOSING] = 0,
    };
    assert(allowed[c->state] & (1u << to));
    c->state = to;
}

static void conn_parse(struct conn *c);
static void conn_close(struct conn *c);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b);

/* ---- request ids ---- */

static uint64_t next_rand(struct server *srv)
{
    uint64_t x = srv->rng; /* xorshift64*: request ids only need to be distinct */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    srv->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static void make_uuid(struct server *srv, char out[37])
{
    uint64_t a = next_rand(srv), b = next_rand(srv);
    unsigned char u[16];
    for (int i = 0; i < 8; i++) {
        u[i] = (unsigned char)(a >> (i * 8));
        u[8 + i] = (unsigned char)(b >> (i * 8));
    }
    u[6] = (unsigned char)((u[6] & 0x0f) | 0x40);
    u[8] = (unsigned char)((u[8] & 0x3f) | 0x80);
    static const char hex[] = "0123456789abcdef";
    size_t j = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[j++] = '-';
        out[j++] = hex[u[i] >> 4];
        out[j++] = hex[u[i] & 15];
    }
    out[j] = '\0';
}

/* ---- requests ---- */

/* Empties a request buffer; a large one is freed, so that an idle connection holds little. */
static void req_buf_reset(struct buf *b)
{
    if (b->cap > KEEP_BUF_MAX)
        buf_release(b);
    else
        buf_reset(b);
}

static void req_reset(struct server_req *r)
{
    r->conn->srv->body_bytes -= r->body.len;
    req_buf_reset(&r->url);
    req_buf_reset(&r->headers);
    req_buf_reset(&r->body);
    r->in_value = false;
    r->header_bytes = 0;
    r->replied = false;
    r->on_gone = NULL;
    r->gone_arg = NULL;
    r->id[0] = '\0';
}

const char *server_req_method(const struct server_req *req)
{
    return http_method_str((enum http_method)req->conn->parser.method);
}

const char *server_req_header(const struct server_req *req, const char *name)
{
    const char *p = req->headers.data;
    const char *end = p + req->headers.len;
    while (p != NULL && p < end) {
        const char *value = p + strlen(p) + 1;
        if (value >= end)
            break;
        if (strcasecmp(p, name) == 0)
            return value;
        p = value + strlen(value) + 1;
    }
    return NULL;
}

const char *server_req_header_each(const struct server_req *req, size_t *pos,
                                   const char **value)
{
    if (*pos >= req->headers.len)
        return NULL;
    const char *name = req->headers.data + *pos;
    const char *v = name + strlen(name) + 1;
    if (v >= req->headers.data + req->headers.len)
        return NULL;
    *value = v;
    *pos = (size_t)(v + strlen(v) + 1 - req->headers.data);
    return name;
}

const char *server_req_url(const struct server_req *req)
{
    return req->url.len > 0 ? req->url.data : "/";
}

const char *server_req_body(const struct server_req *req, size_t *len)
{
    *len = req->body.len;
    return req->body.len > 0 ? req->body.data : "";
}

const char *server_req_id(const struct server_req *req)
{
    return req->id;
}

/* ---- timers ---- */

static void on_conn_timer(uv_timer_t *t)
{
    struct conn *c = container_of(t, struct conn, timer);
    conn_close(c); /* idle, stalled request or unread answer: the client is gone */
}

static void conn_arm(struct conn *c, uint64_t ms)
{
    uv_timer_start(&c->timer, on_conn_timer, ms, 0);
}

/* ---- writing ---- */

/* The status line of an answer, with the header every answer carries. */
static const char *status_line(int status)
{
#define CT "\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: "
    switch (status) {
    case 200: return "HTTP/1.1 200 OK" CT;
    case 400: return "HTTP/1.1 400 Bad Request" CT;
    case 404: return "HTTP/1.1 404 Not Found" CT;
    case 403: return "HTTP/1.1 403 Forbidden" CT;
    case 413: return "HTTP/1.1 413 Payload Too Large" CT;
    case 500: return "HTTP/1.1 500 Internal Server Error" CT;
    case 503: return "HTTP/1.1 503 Service Unavailable" CT;
    default: return NULL;
    }
#undef CT
}

/* The answer is written (or its write failed: status != 0): the connection reads and
 * parses the next request, or closes. */
static void conn_written(struct conn *c, int status)
{
    buf_reset(&c->out);
    if (status != 0 || c->close_after || c->srv->closing) {
        conn_close(c);
        return;
    }
    conn_set_state(c, CONN_READING);
    req_reset(&c->req);
    c->in_request = false;
    conn_arm(c, c->srv->lim.idle_timeout_ms);
    http_parser_pause(&c->parser, 0);
    conn_parse(c);
}

static void on_write(uv_write_t *w, int status)
{
    struct conn *c = container_of(w, struct conn, wreq);
    if (c->state == CONN_CLOSING)
        return;
    conn_written(c, status);
}

/* Writes the answer in c->out. `settled`: no handler is running for this connection (the
 * commit hook's callback), so an answer that write() takes whole is finished here at once:
 * no write request, no callback on the next loop turn, and none of the epoll_ctl call
 * libuv makes after each uv_write. That needs nothing left to parse (conn_parse then only
 * makes sure reading goes on) and the connection staying open. */
static void conn_send(struct conn *c, bool settled)
{
    conn_set_state(c, CONN_WRITING);
    size_t off = 0;
    if (settled && c->roff >= c->rlen && !c->close_after && !c->srv->closing) {
        uv_buf_t all = uv_buf_init(c->out.data, (unsigned int)c->out.len);
        int n = uv_try_write((uv_stream_t *)&c->tcp, &all, 1);
        if (n == (int)c->out.len) {
            conn_written(c, 0);
            return;
        }
        if (n < 0 && n != UV_EAGAIN) {
            conn_close(c);
            return;
        }
        off = n > 0 ? (size_t)n : 0; /* the rest goes the usual way */
    }
    conn_arm(c, c->srv->closing ? 2000 : SERVER_WRITE_TIMEOUT_MS);
    uv_buf_t b = uv_buf_init(c->out.data + off, (unsigned int)(c->out.len - off));
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0)
        conn_close(c);
}

/* Builds the whole answer into c->out (on every request's path: no printf). */
static void conn_answer(struct conn *c, int status, const char *error_type, const char *body,
                        size_t len)
{
    buf_reset(&c->out);
    const char *line = status_line(status);
    if (line != NULL)
        buf_puts(&c->out, line);
    else
        buf_printf(&c->out, "HTTP/1.1 %d Error\r\nContent-Type: application/x-amz-json-1.0\r\n"
                   "Content-Length: ", status);
    char digits[24];
    size_t n = sizeof(digits);
    size_t v = len;
    do {
        digits[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    buf_add(&c->out, digits + n, sizeof(digits) - n);
    if (c->req.id[0] == '\0')
        make_uuid(c->srv, c->req.id);
    buf_puts(&c->out, "\r\nx-amzn-RequestId: ");
    buf_puts(&c->out, c->req.id);
    buf_puts(&c->out, "\r\n");
    if (error_type != NULL) {
        buf_puts(&c->out, "x-amzn-ErrorType: ");
        buf_puts(&c->out, error_type);
        buf_puts(&c->out, "\r\n");
    }
    if (c->close_after)
        buf_puts(&c->out, "Connection: close\r\n");
    buf_puts(&c->out, "\r\n");
    buf_add(&c->out, body, len);
}

static void on_idle(uv_idle_t *h)
{
    (void)h; /* only keeps the loop from blocking in poll while replies wait */
}

/* Takes a connection out of CONN_WAITING (its answer is sent or dropped). */
static void waiting_remove(struct conn *c)
{
    if (c->state != CONN_WAITING)
        return;
    if (--c->srv->n_waiting == 0)
        uv_idle_stop(&c->srv->idle);
}

static void held_unlink(struct held *h)
{
    if (h->prev != NULL)
        h->prev->next = h->next;
    else
        h->srv->held = h->next;
    if (h->next != NULL)
        h->next->prev = h->prev;
}

/* The commit hook's callback: the change the held reply reports is committed. */
static void on_committed(void *arg)
{
    struct held *h = arg;
    struct conn *c = h->conn;
    held_unlink(h);
    free(h);
    if (c == NULL)
        return; /* the client went away meanwhile */
    c->held = NULL;
    waiting_remove(c);
    conn_send(c, true); /* in the engine's commit: no handler runs */
}

void server_reply(struct server_req *req, int status, const char *error_type, const char *body,
                  size_t len, bool after_commit)
{
    struct conn *c = req->conn;
    if (req->replied || c->state == CONN_CLOSING)
        return;
    req->replied = true;
    req->on_gone = NULL;
    c->close_after = c->close_after || !c->keep_alive;
    struct server *srv = c->srv;
    if (after_commit && srv->commit_failed) { /* no commit will come */
        static const char failed[] = "{\"__type\":\"InternalFailure\",\"message\":\"the store "
                                     "failed: the change was not recorded\"}";
        c->close_after = true;
        conn_answer(c, 500, "InternalFailure", failed, sizeof(failed) - 1);
        conn_send(c, false);
        return;
    }
    conn_answer(c, status, error_type, body, len);
    if (!after_commit || srv->after_commit == NULL) {
        conn_send(c, false);
        return;
    }
    conn_set_state(c, CONN_WAITING);
    uv_timer_stop(&c->timer);
    if (srv->n_waiting++ == 0)
        uv_idle_start(&srv->idle, on_idle);
    struct held *h = xcalloc(1, sizeof(*h));
    h->srv = srv;
    h->conn = c;
    h->next = srv->held;
    if (srv->held != NULL)
        srv->held->prev = h;
    srv->held = h;
    c->held = h;
    srv->after_commit(srv->commit_arg, on_committed, h);
}

void server_req_defer(struct server_req *req, void (*on_gone)(void *arg), void *arg)
{
    struct conn *c = req->conn;
    assert(c->state == CONN_HANDLING && !req->replied);
    req->on_gone = on_gone;
    req->gone_arg = arg;
    conn_set_state(c, CONN_DEFERRED);
}

void server_set_commit_hook(struct server *srv,
                            void (*after_commit)(void *arg, void (*fn)(void *), void *fn_arg),
                            void *arg)
{
    srv->after_commit = after_commit;
    srv->commit_arg = arg;
}

/* ---- parsing ---- */

static int reject(struct conn *c, int status)
{
    c->reject = status;
    return -1; /* an error for http-parser: it stops */
}

static int on_message_begin(http_parser *p)
{
    struct conn *c = p->data;
    c->in_request = true;
    conn_arm(c, c->srv->lim.request_timeout_ms); /* the whole request, however slowly it
                                                     trickles */
    return 0;
}

static int count_header(struct conn *c, size_t n)
{
    c->req.header_bytes += n;
    return c->req.header_bytes > SERVER_HEADER_MAX ? reject(c, 400) : 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    struct conn *c = p->data;
    if (count_header(c, n) != 0)
        return -1;
    buf_add(&c->req.url, at, n);
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    struct conn *c = p->data;
    if (count_header(c, n + (c->req.in_value ? 4 : 0)) != 0)
        return -1;
    if (c->req.in_value) {
        buf_putc(&c->req.headers, '\0'); /* ends the previous value */
        c->req.in_value = false;
    }
    buf_add(&c->req.headers, at, n);
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    struct conn *c = p->data;
    if (count_header(c, n) != 0)
        return -1;
    if (!c->req.in_value) {
        buf_putc(&c->req.headers, '\0'); /* ends the name */
        c->req.in_value = true;
    }
    buf_add(&c->req.headers, at, n);
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    struct conn *c = p->data;
    if (c->req.in_value)
        buf_putc(&c->req.headers, '\0');
    c->req.in_value = false;
    if (p->content_length != ULLONG_MAX && p->content_length > SERVER_BODY_MAX)
        return reject(c, 413);
    if (p->content_length != ULLONG_MAX &&
        c->srv->body_bytes + p->content_length > SERVER_BODY_BUDGET)
        return reject(c, 503);
    const char *expect = server_req_header(&c->req, "expect");
    if (expect != NULL && strcasecmp(expect, "100-continue") == 0) {
        static char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        uv_buf_t b = uv_buf_init(cont, sizeof(cont) - 1);
        uv_try_write((uv_stream_t *)&c->tcp, &b, 1); /* best effort: clients send anyway */
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    struct conn *c = p->data;
    if (c->req.body.len + n > SERVER_BODY_MAX)
        return reject(c, 413);
    if (c->srv->body_bytes + n > SERVER_BODY_BUDGET)
        return reject(c, 503);
    buf_add(&c->req.body, at, n);
    c->srv->body_bytes += n;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct conn *c = p->data;
    c->keep_alive = http_should_keep_alive(p) != 0;
    http_parser_pause(p, 1); /* one request at a time: the rest waits for this answer */
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* Answers a request the HTTP layer refuses, and closes after the answer. */
static void conn_refuse(struct conn *c, int status, const char *type, const char *message)
{
    char body[512];
    int n = snprintf(body, sizeof(body), "{\"__type\":\"%s\",\"message\":\"%s\"}", type, message);
    c->close_after = true;
    conn_set_state(c, CONN_HANDLING);
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->req.replied = true;
    conn_answer(c, status, type, body, (size_t)n);
    conn_send(c, false);
}

static void conn_dispatch(struct conn *c)
{
    conn_set_state(c, CONN_HANDLING);
    uv_timer_stop(&c->timer);
    /* reading goes on while everything read is parsed (the usual case: one request in
     * flight), which spares two epoll_ctl calls per request; with pipelined bytes waiting it
     * stops until the answer is written */
    if (c->roff < c->rlen)
        uv_read_stop((uv_stream_t *)&c->tcp);
    make_uuid(c->srv, c->req.id);
    buf_cstr(&c->req.body); /* NUL-terminated for the handler */
    buf_cstr(&c->req.url);
    if (c->srv->closing) {
        static const char body[] =
            "{\"__type\":\"ServiceUnavailable\",\"message\":\"the server is shutting down\"}";
        c->close_after = true;
        server_reply(&c->req, 503, "ServiceUnavailable", body, sizeof(body) - 1, false);
        return;
    }
    c->srv->fn(&c->req, c->srv->arg);
    if (c->state == CONN_DEFERRED)
        return; /* parked: reading, when nothing read is left unparsed, watches for EOF */
    if (!c->req.replied) { /* a handler bug: never leave the client hanging */
        static const char body[] =
            "{\"__type\":\"InternalFailure\",\"message\":\"the request was not answered\"}";
        server_reply(&c->req, 500, "InternalFailure", body, sizeof(body) - 1, false);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct conn *c = container_of((uv_tcp_t *)h, struct conn, tcp);
    (void)suggested;
    if (c->roff >= c->rlen) {
        c->roff = c->rlen = 0; /* the usual case: everything read was parsed */
    } else if (c->roff > 0) { /* bytes kept while an answer's write completes (on_read) */
        memmove(c->rbuf, c->rbuf + c->roff, c->rlen - c->roff);
        c->rlen -= c->roff;
        c->roff = 0;
    }
    *b = uv_buf_init(c->rbuf + c->rlen, (unsigned int)(READ_BUF_SIZE - c->rlen));
}

/* Parses what was read until a request is complete (then answers it) or the bytes run out
 * (then reads more). */
static void conn_parse(struct conn *c)
{
    while (c->state == CONN_READING && c->roff < c->rlen) {
        size_t n = http_parser_execute(&c->parser, &parser_settings, c->rbuf + c->roff,
                                       c->rlen - c->roff);
        c->roff += n;
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (e == HPE_PAUSED) {
            conn_dispatch(c);
            return;
        }
        if (e != HPE_OK) {
            if (c->reject == 413)
                conn_refuse(c, 413, "RequestEntityTooLargeException",
                            "the request body exceeds 2097152 bytes");
            else if (c->reject == 503)
                conn_refuse(c, 503, "ServiceUnavailable",
                            "too many large requests at once: try again later");
            else if (c->reject == 400)
                conn_refuse(c, 400, "BadRequestException",
                            "the request line and headers exceed 16384 bytes");
            else
                conn_refuse(c, 400, "BadRequestException", "malformed HTTP request");
            return;
        }
    }
    if (c->state == CONN_READING && !c->srv->closing)
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct conn *c = container_of((uv_tcp_t *)s, struct conn, tcp);
    (void)b;
    if (nread == 0)
        return;
    bool answering = c->state == CONN_WAITING || c->state == CONN_WRITING;
    if (nread == UV_EOF && answering) {
        /* the client has sent all it will (a half close): it still gets the answer */
        c->close_after = true;
        uv_read_stop(s);
        return;
    }
    if (nread < 0) { /* EOF or error: an unfinished request is dropped with the connection;
                        a parked one is reported gone */
        conn_close(c);
        return;
    }
    c->rlen += (size_t)nread; /* after the bytes on_alloc kept */
    if (c->state == CONN_WRITING && uv_stream_get_write_queue_size(s) == 0 &&
        c->rlen <= READ_BUF_SIZE / 2)
        return; /* the answer is out, only on_write is still to run (libuv calls it before
                   it polls again): it parses these bytes; reading goes on, which spares
                   stopping and restarting it (two epoll_ctl calls) when a client sends its
                   next request as soon as it has the answer */
    if (c->state != CONN_READING) {
        /* the next request, pipelined behind one being answered: parsed after the answer */
        uv_read_stop(s);
        return;
    }
    conn_parse(c);
}

/* ---- connections ---- */

static void on_conn_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    if (--c->handles > 0)
        return;
    struct server *srv = c->srv;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    srv->n_conns--;
    srv->body_bytes -= c->req.body.len;
    buf_release(&c->req.url);
    buf_release(&c->req.headers);
    buf_release(&c->req.body);
    buf_release(&c->out);
    free(c->rbuf);
    free(c);
    if (srv->closing && srv->n_conns == 0 && !srv->listening) {
        uv_close((uv_handle_t *)&srv->idle, NULL);
        srv->handles--;
        if (srv->on_closed != NULL)
            srv->on_closed(srv->closed_arg);
    }
}

static void conn_close(struct conn *c)
{
    if (c->state == CONN_CLOSING)
        return;
    waiting_remove(c);
    if (c->held != NULL) { /* the commit hook still calls back: it finds no connection */
        c->held->conn = NULL;
        c->held = NULL;
    }
    bool parked = c->state == CONN_DEFERRED;
    conn_set_state(c, CONN_CLOSING);
    if (parked && c->req.on_gone != NULL) {
        void (*gone)(void *) = c->req.on_gone;
        c->req.on_gone = NULL;
        gone(c->req.gone_arg);
    }
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_closed);
}

/* At the connection cap: closes the oldest connection that is reading (idle, or a request
 * still arriving: nothing of it was acted on), so that a flood of idle or trickling
 * connections cannot lock the others out. Returns false when every one is busy. */
static bool conn_evict_oldest(struct server *srv)
{
    struct conn *victim = NULL;
    for (struct conn *c = srv->conns; c != NULL; c = c->next) {
        if (c->state == CONN_READING)
            victim = c; /* the list is newest first: the last one found is the oldest */
    }
    if (victim == NULL)
        return false;
    conn_close(victim);
    return true;
}

static void on_connection(uv_stream_t *l, int status)
{
    struct server *srv = container_of((uv_tcp_t *)l, struct server, listener);
    if (status != 0)
        return;
    size_t open = 0; /* connections not closing */
    for (struct conn *c = srv->conns; c != NULL && open < srv->lim.max_conns; c = c->next)
        open += c->state != CONN_CLOSING;
    bool room = open < srv->lim.max_conns || conn_evict_oldest(srv);
    struct conn *c = xcalloc(1, sizeof(*c));
    c->srv = srv;
    c->handles = 2;
    c->tcp.data = c;
    c->timer.data = c;
    uv_tcp_init(srv->loop, &c->tcp);
    uv_timer_init(srv->loop, &c->timer);
    c->next = srv->conns;
    if (srv->conns != NULL)
        srv->conns->prev = c;
    srv->conns = c;
    srv->n_conns++;
    c->rbuf = xmalloc(READ_BUF_SIZE);
    buf_init(&c->req.url);
    buf_init(&c->req.headers);
    buf_init(&c->req.body);
    buf_init(&c->out);
    c->req.conn = c;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->state = CONN_READING; /* the first state */
    if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0 || !room) {
        conn_close(c); /* over the limit with every connection busy: refused at once */
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    conn_arm(c, srv->lim.idle_timeout_ms);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* ---- a failed commit ---- */

void server_commit_failed(struct server *srv)
{
    srv->commit_failed = true;
    /* the hook will never call back: the held replies are answered 500 now */
    for (struct conn *c = srv->conns; c != NULL; c = c->next) {
        if (c->state != CONN_WAITING)
            continue;
        static const char body[] = "{\"__type\":\"InternalFailure\",\"message\":\"the store "
                                   "failed: the change was not recorded\"}";
        if (c->held != NULL) {
            c->held->conn = NULL;
            c->held = NULL;
        }
        c->close_after = true;
        conn_answer(c, 500, "InternalFailure", body, sizeof(body) - 1);
        waiting_remove(c);
        conn_send(c, false);
    }
}

/* ---- the server ---- */

struct server *server_new(uv_loop_t *loop, server_handler_fn fn, void *arg)
{
    struct server *srv = xcalloc(1, sizeof(*srv));
    srv->loop = loop;
    srv->lim.max_conns = SERVER_CONN_MAX;
    srv->lim.request_timeout_ms = SERVER_REQUEST_TIMEOUT_MS;
    srv->lim.idle_timeout_ms = SERVER_IDLE_TIMEOUT_MS;
    srv->fn = fn;
    srv->arg = arg;
    uv_idle_init(loop, &srv->idle);
    srv->handles = 1;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    srv->rng = ((uint64_t)ts.tv_sec * 1000000007ULL) ^ (uint64_t)ts.tv_nsec ^
               ((uint64_t)(uintptr_t)srv << 20);
    if (srv->rng == 0)
        srv->rng = 0x9E3779B97F4A7C15ULL;
    return srv;
}

void server_set_limits(struct server *srv, const struct server_limits *lim)
{
    srv->lim = *lim;
}

int server_listen(struct server *srv, const char *host, int port, struct err *err)
{
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
        struct sockaddr_storage ss;
    } addr;
    memset(&addr, 0, sizeof(addr));
    if (uv_ip4_addr(host, port, &addr.in4) != 0 && uv_ip6_addr(host, port, &addr.in6) != 0)
        return err_set(err, "InvalidAddress", "'%s' is not an IPv4 or IPv6 address", host);
    uv_tcp_init(srv->loop, &srv->listener);
    srv->listening = true;
    srv->handles++;
    int rc = uv_tcp_bind(&srv->listener, &addr.sa, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&srv->listener, 511, on_connection);
    if (rc != 0)
        return err_set(err, "ListenFailed", "cannot listen on %s:%d: %s", host, port,
                       uv_strerror(rc));
    int len = sizeof(addr);
    if (uv_tcp_getsockname(&srv->listener, &addr.sa, &len) == 0)
        srv->port = ntohs(addr.sa.sa_family == AF_INET6 ? addr.in6.sin6_port : addr.in4.sin_port);
    return 0;
}

int server_port(const struct server *srv)
{
    return srv->port;
}

static void on_listener_closed(uv_handle_t *h)
{
    struct server *srv = container_of((uv_tcp_t *)h, struct server, listener);
    srv->listening = false;
    srv->handles--;
    if (srv->n_conns == 0) {
        uv_close((uv_handle_t *)&srv->idle, NULL);
        srv->handles--;
        if (srv->on_closed != NULL)
            srv->on_closed(srv->closed_arg);
    }
}

void server_close(struct server *srv, void (*on_closed)(void *arg), void *arg)
{
    if (srv->closing)
        return;
    srv->closing = true;
    srv->on_closed = on_closed;
    srv->closed_arg = arg;
    for (struct conn *c = srv->conns; c != NULL; c = c->next) {
        if (c->state == CONN_READING)
            conn_close(c); /* between requests or mid-request: nothing was acknowledged */
        else if (c->state != CONN_CLOSING)
            conn_arm(c, 2000); /* a waiting answer still goes out after the commit; a parked
                                  one is answered by its owner first (api_shutdown) */
    }
    if (srv->listening) {
        uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
    } else if (srv->n_conns == 0) {
        uv_close((uv_handle_t *)&srv->idle, NULL);
        srv->handles--;
        if (on_closed != NULL)
            on_closed(arg);
    }
}

void server_free(struct server *srv)
{
    while (srv->held != NULL) { /* tickets the hook never called (the engine is gone) */
        struct held *h = srv->held;
        srv->held = h->next;
        free(h);
    }
    free(srv);
}
