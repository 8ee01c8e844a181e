/* cli/cmd_validate.c - `sfn validate DEFINITION`: AWS's validation; OK or the diagnostics
 * (exit 0 or 2); --json prints ValidateStateMachineDefinition's response shape. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "sfn.h"
#include "util/json.h"

static void on_diag(const char *code, const char *message, const char *location, void *arg)
{
    json_t *diags = arg;
    if (diags != NULL) {
        json_t *d = json_pack("{s:s,s:s,s:s}", "severity", "ERROR", "code", code, "message",
                              message);
        if (location != NULL)
            json_object_set_new(d, "location", json_string(location));
        json_array_append_new(diags, d);
        return;
    }
    if (location != NULL)
        fprintf(stderr, "%s: %s at %s\n", code, message, location);
    else
        fprintf(stderr, "%s: %s\n", code, message);
}

int cmd_validate(int argc, char **argv)
{
    const char *path = NULL;
    bool as_json = false;
    enum sfn_machine_type type = SFN_STANDARD;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            as_json = true;
        } else if (strcmp(argv[i], "--type") == 0 && i + 1 < argc) {
            type = strcmp(argv[++i], "EXPRESS") == 0 ? SFN_EXPRESS : SFN_STANDARD;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "sfn validate: unknown option '%s'\n", argv[i]);
            return 2;
        } else if (path == NULL) {
            path = argv[i];
        } else {
            fprintf(stderr, "sfn validate: more than one definition given\n");
            return 2;
        }
    }
    if (path == NULL) {
        fprintf(stderr, "usage: sfn validate DEFINITION [--json] [--type STANDARD|EXPRESS]\n");
        return 2;
    }
    size_t len;
    char *text = cli_read_file(path, &len);
    if (text == NULL)
        return 2;
    json_t *diags = as_json ? json_array() : NULL;
    int n = sfn_validate(text, len, type, on_diag, diags);
    free(text);
    if (as_json) {
        json_t *resp = json_pack("{s:s,s:o}", "result", n == 0 ? "OK" : "FAIL", "diagnostics",
                                 diags);
        char *s = json_compact(resp);
        puts(s);
        free(s);
        json_decref(resp);
    } else if (n == 0) {
        puts("OK");
    }
    return n == 0 ? 0 : 2;
}
