/* cli/client.c - AWS JSON 1.0 requests from the sfn client commands to a running sfnd, over
 * one libcurl easy handle (its connection is kept alive between the requests of a command,
 * so polling a history costs one round trip a poll). The lite build/sfn leaves this out. */
#ifndef SFN_CLI_LITE
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/client.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/xalloc.h"

#define CLIENT_CONNECT_TIMEOUT_S 5L /* the daemon is local: a longer wait means it is not there */
#define CLIENT_TIMEOUT_S 120L       /* one request; sfnd answers at once except long polls */

struct client {
    char *endpoint;             /* owned: "http://127.0.0.1:8083" */
    CURL *curl;                 /* reused: keep-alive across the requests of a command */
    struct curl_slist *headers; /* owned: content type, no Expect */
    char errbuf[CURL_ERROR_SIZE];
};

struct client *client_new(const char *endpoint)
{
    if (endpoint == NULL || endpoint[0] == '\0')
        endpoint = getenv("SFN_ENDPOINT");
    if (endpoint == NULL || endpoint[0] == '\0')
        endpoint = CLIENT_DEFAULT_ENDPOINT;
    struct client *c = xcalloc(1, sizeof(*c));
    c->endpoint = xstrdup(endpoint);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    c->curl = curl_easy_init();
    if (c->curl == NULL)
        abort(); /* only out of memory */
    c->headers = curl_slist_append(NULL, "Content-Type: application/x-amz-json-1.0");
    c->headers = curl_slist_append(c->headers, "Expect:");
    return c;
}

void client_free(struct client *c)
{
    if (c == NULL)
        return;
    curl_slist_free_all(c->headers);
    curl_easy_cleanup(c->curl);
    curl_global_cleanup();
    free(c->endpoint);
    free(c);
}

const char *client_endpoint(const struct client *c)
{
    return c->endpoint;
}

void client_error_release(struct client_error *e)
{
    free(e->message);
    e->message = NULL;
    e->code[0] = '\0';
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    buf_add(arg, data, size * n);
    return size * n;
}

/* The AWS error code of a __type: after its last '#', up to a ':' (as botocore reads it). */
static void error_code(const char *type, char *out, size_t n)
{
    const char *hash = strrchr(type, '#');
    const char *s = hash != NULL ? hash + 1 : type;
    size_t len = strcspn(s, ":");
    if (len >= n)
        len = n - 1;
    memcpy(out, s, len);
    out[len] = '\0';
}

int client_call(struct client *c, const char *op, json_t *req, json_t **resp,
                struct client_error *ae)
{
    *resp = NULL;
    char *body = json_compact(req);
    char *target = xasprintf("X-Amz-Target: AWSStepFunctions.%s", op);
    struct curl_slist *headers = curl_slist_append(NULL, target);
    for (struct curl_slist *h = c->headers; h != NULL; h = h->next)
        headers = curl_slist_append(headers, h->data);
    struct buf answer = BUF_INIT;
    CURL *e = c->curl;
    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, c->endpoint);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &answer);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, CLIENT_CONNECT_TIMEOUT_S);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, CLIENT_TIMEOUT_S);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "sfn/0.1.0");
    c->errbuf[0] = '\0';
    CURLcode rc = curl_easy_perform(e);
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(headers);
    free(target);
    free(body);
    int ret = CLIENT_EXIT_USAGE;
    if (rc != CURLE_OK) {
        fprintf(stderr, "sfn: cannot reach the daemon at %s: %s (is sfnd running? see "
                "--endpoint and SFN_ENDPOINT)\n", c->endpoint,
                c->errbuf[0] != '\0' ? c->errbuf : curl_easy_strerror(rc));
        buf_release(&answer);
        return ret;
    }
    struct err err = ERR_INIT;
    json_t *doc = answer.len > 0 ? json_parse(answer.data, answer.len, false, &err) : NULL;
    if (!json_is_object(doc)) {
        fprintf(stderr, "sfn: %s answered %s with HTTP %ld and %s: is it sfnd?\n", c->endpoint,
                op, status, answer.len == 0 ? "no body" : "a body that is not a JSON object");
    } else if (status == 200) {
        *resp = json_incref(doc);
        ret = 0;
    } else {
        const char *type = json_string_value(json_object_get(doc, "__type"));
        const char *msg = json_string_value(json_object_get(doc, "message"));
        if (msg == NULL)
            msg = json_string_value(json_object_get(doc, "Message"));
        char code[128];
        error_code(type != NULL ? type : "InternalFailure", code, sizeof(code));
        if (ae != NULL) {
            memcpy(ae->code, code, sizeof(ae->code));
            ae->message = xstrdup(msg != NULL ? msg : "");
        } else {
            fprintf(stderr, "sfn: %s: %s\n", code, msg != NULL ? msg : "(no message)");
        }
        ret = CLIENT_EXIT_AWS;
    }
    err_clear(&err);
    json_decref(doc);
    buf_release(&answer);
    return ret;
}
#endif
