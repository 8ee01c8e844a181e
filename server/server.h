/* server/server.h - the HTTP/1.1 side of sfnd: a listener on a libuv loop, connections
 * parsed with http-parser (keep-alive, pipelining answered in order: one request of a
 * connection is handled at a time, the next is parsed once the previous answer is written),
 * fixed limits per request, replies held until the engine's store commit when they
 * acknowledge a change (STYLE.md: persist before you acknowledge), and requests a handler
 * parks to answer later (long polls). */
#ifndef SFN_SERVER_H
#define SFN_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "util/err.h"

#define SERVER_HEADER_MAX (16 * 1024)    /* request line + headers, bytes */
/* request body, bytes: a definition may have 1,048,576 characters (api.md 11), which JSON
 * escaping inside the request object makes longer */
#define SERVER_BODY_MAX (2 * 1024 * 1024)
/* bodies being received or handled, all connections together, bytes: past it a request
 * whose body does not fit is answered 503 (fixed memory whatever the clients send) */
#define SERVER_BODY_BUDGET (64 * 1024 * 1024)
#define SERVER_CONN_MAX 1024             /* open connections (default; sfnd.conf) */
#define SERVER_REQUEST_TIMEOUT_MS 30000  /* from a request's first byte to its last */
#define SERVER_IDLE_TIMEOUT_MS 120000    /* keep-alive connection without a request */
#define SERVER_WRITE_TIMEOUT_MS 60000    /* a reply the client does not read */

/* Limits a daemon may change (sfnd.conf(5)). */
struct server_limits {
    size_t max_conns;            /* open connections; at the cap a new one closes the oldest
                                    connection that has no request being answered, or is
                                    refused when there is none */
    uint64_t request_timeout_ms; /* from a request's first byte to its last */
    uint64_t idle_timeout_ms;    /* keep-alive connection without a request */
};

struct server;
struct server_req;

/* Called with each complete request. The handler answers it with server_reply() before it
 * returns (exactly once), or parks it with server_req_defer() and answers it later. */
typedef void (*server_handler_fn)(struct server_req *req, void *arg);

/* Creates a server on `loop` (nothing is listening yet). */
struct server *server_new(uv_loop_t *loop, server_handler_fn fn, void *arg);
/* Replaces the limits (before server_listen). */
void server_set_limits(struct server *srv, const struct server_limits *lim);
/* Listens on host:port (an IPv4 or IPv6 literal). 0, or -1 with err set. */
int server_listen(struct server *srv, const char *host, int port, struct err *err);
/* The port actually bound (for --listen 127.0.0.1:0). */
int server_port(const struct server *srv);
/* Stops accepting, sends the replies still waiting for a commit, closes every connection
 * and the server's handles, then calls on_closed (from the loop). Free it afterwards with
 * server_free. */
void server_close(struct server *srv, void (*on_closed)(void *arg), void *arg);
void server_free(struct server *srv);
/* The store failed: the replies waiting for a commit that will never come are answered 500
 * instead. */
void server_commit_failed(struct server *srv);
/* How a reply that acknowledges a change waits for it to be committed: after_commit(arg, fn,
 * fn_arg) calls fn(fn_arg) once, from the loop, after the commit of everything changed so
 * far (sfn_engine_after_commit), or never if the store fails (then call
 * server_commit_failed). Without a hook such replies leave at once. */
void server_set_commit_hook(struct server *srv,
                            void (*after_commit)(void *arg, void (*fn)(void *), void *fn_arg),
                            void *arg);

/* The request (borrowed strings, valid during the handler). */
const char *server_req_method(const struct server_req *req);
/* A header by name (case-insensitive), or NULL. */
const char *server_req_header(const struct server_req *req, const char *name);
/* Iterates over the headers in the order received: start with *pos = 0; returns a name (its
 * value in *value), or NULL after the last. */
const char *server_req_header_each(const struct server_req *req, size_t *pos,
                                   const char **value);
/* The request target as sent ("/", "/?a=b"). */
const char *server_req_url(const struct server_req *req);
const char *server_req_body(const struct server_req *req, size_t *len);
/* The request id sent back in x-amzn-RequestId. */
const char *server_req_id(const struct server_req *req);

/* Answers the request with `status` and a JSON `body` (copied). `error_type`, when not
 * NULL, is sent as x-amzn-ErrorType. With `after_commit`, the reply leaves only after the
 * commit hook calls back (the change it reports is durable first). */
void server_reply(struct server_req *req, int status, const char *error_type, const char *body,
                  size_t len, bool after_commit);
/* Parks the request (from the handler): it stays valid until server_reply, or until
 * on_gone(arg) reports, from the loop, that its connection closed first (the request must
 * not be used after that; on_gone must not call server_reply). */
void server_req_defer(struct server_req *req, void (*on_gone)(void *arg), void *arg);

#endif
