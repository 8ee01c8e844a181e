/* tests/unit/test_event_text.c - the text of a history event as the store records it
 * (hist_event_append, engine/history.c, written straight into a buffer at commit time) is
 * byte for byte the compact text of the event's JSON shape (hist_event_json, what
 * GetExecutionHistory renders from memory): every event type, with and without a state name,
 * details, an index, data and an error, and data holding every character that needs an
 * escape. Also json_compact_string_append (util/json.c) against the two steps it replaces,
 * json_string_append of json_compact. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"
#include "tests/unit/testlib.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/xalloc.h"

/* Documents whose compact text holds quotes, backslashes, control characters, DEL, UTF-8,
 * numbers of every kind, nesting and empty containers. */
static json_t *sample_doc(int k)
{
    static const char *const texts[] = {
        "{}",
        "[]",
        "{\"n\":1}",
        "\"plain\"",
        "null",
        "true",
        "[false,null,0,-1,1.5,1e300,-2.5e-7,9007199254740993]",
        "{\"q\":\"say \\\"hi\\\"\",\"b\":\"back\\\\slash\",\"c\":\"\\b\\f\\n\\r\\t\\u0001\\u001f\"}",
        "{\"k\\\"ey\":{\"in\\\\ner\":[\"\\u007f\",\"caf\\u00e9 \\u2603 \\ud83d\\ude00\"]}}",
        "{\"a\":{},\"b\":[],\"c\":[{}],\"d\":[[]],\"e\":\"\"}",
        "\"\\\\\\\"\\\\\"",
        "{\"deep\":[[[{\"x\":[1,{\"y\":\"\\n\"}]}]]]}",
    };
    size_t n = sizeof(texts) / sizeof(texts[0]);
    if ((size_t)k >= n)
        return NULL;
    json_error_t jerr;
    json_t *v = json_loads(texts[k], JSON_DECODE_ANY, &jerr);
    if (v == NULL)
        fprintf(stderr, "sample %d: %s\n", k, jerr.text);
    return v;
}

static bool compact_string_same(json_t *v)
{
    char *text = json_compact(v);
    struct buf want = BUF_INIT;
    json_string_append(&want, text, strlen(text));
    struct buf got = BUF_INIT;
    buf_puts(&got, "prefix:"); /* appends, not overwrites */
    json_compact_string_append(&got, v);
    bool ok = strcmp(buf_cstr(&got) + 7, buf_cstr(&want)) == 0 &&
              strncmp(buf_cstr(&got), "prefix:", 7) == 0;
    if (!ok)
        printf("got  %s\nwant %s\n", buf_cstr(&got), buf_cstr(&want));
    free(text);
    buf_release(&want);
    buf_release(&got);
    return ok;
}

static bool event_same(const struct hevent *e, bool data)
{
    json_t *o = hist_event_json(NULL, e, data);
    char *want = json_compact(o);
    json_decref(o);
    struct buf got = BUF_INIT;
    hist_event_append(e, data, &got);
    bool ok = strcmp(buf_cstr(&got), want) == 0;
    if (!ok)
        printf("got  %s\nwant %s\n", buf_cstr(&got), want);
    free(want);
    buf_release(&got);
    return ok;
}

int main(void)
{
    struct tl t = {0, 0};
    json_t *docs[32];
    int n_docs = 0;
    while (n_docs < 32 && (docs[n_docs] = sample_doc(n_docs)) != NULL)
        n_docs++;
    tl_check(&t, n_docs == 12, "samples", "%d of 12 sample documents parsed", n_docs);
    for (int i = 0; i < n_docs; i++) {
        char where[32];
        snprintf(where, sizeof(where), "compact string %d", i);
        tl_check(&t, compact_string_same(docs[i]), where, "differs from the two-step text");
    }

    json_t *details = json_pack("{s:s,s:s,s:i,s:{s:b}}", "resource", "arn:aws:lambda:x",
                                "roleArn", "ro\"le\n", "timeoutInSeconds", 30, "nested",
                                "flag", 1);
    char error[] = "States.Err\"or";
    char cause[] = "a\nmulti-line\\cause";
    int bad = 0;
    int cases = 0;
    for (int type = 0; type < EV_COUNT; type++) {
        for (int variant = 0; variant < 2 * 16; variant++) {
            struct hevent e;
            memset(&e, 0, sizeof(e));
            e.id = 7 + variant;
            e.prev = variant % 3 == 0 ? 0 : 6;
            e.ts_ms = 1700000000123LL + variant * 1001;
            e.type = (enum ev_type)type;
            e.index = variant & 1 ? variant : -1;
            e.name = variant & 2 ? "Stäte \"one\"\t" : NULL;
            e.details = variant & 4 ? details : NULL;
            e.has_error = (variant & 8) != 0;
            e.error = variant & 8 ? error : NULL;
            e.cause = variant % 3 == 1 && (variant & 8) ? cause : NULL;
            e.data = docs[(type + variant) % n_docs];
            bool data = variant < 16;
            cases++;
            if (!event_same(&e, data)) {
                printf("  type %s, variant %d\n", hist_type_name(e.type), variant);
                bad++;
            }
            e.data = NULL;
            cases++;
            bad += !event_same(&e, data);
        }
    }
    tl_check(&t, bad == 0, "events", "%d of %d events written differently", bad, cases);
    json_decref(details);
    for (int i = 0; i < n_docs; i++)
        json_decref(docs[i]);
    return tl_finish(&t);
}
