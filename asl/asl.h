/* asl/asl.h - the Amazon States Language, pure: parse, validate and compile a definition
 * once; evaluate its paths, templates, intrinsics and choice rules many times. No I/O.
 *
 * Ownership: every json_t parameter is borrowed unless its name ends in _new; every json_t
 * returned is a new reference. Values are shared by refcount and never modified after
 * creation: evaluation builds new containers (sharing unchanged members) instead. */
#ifndef SFN_ASL_H
#define SFN_ASL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* Predefined error names (asl.md section 9.1). */
#define ASL_ERR_ALL "States.ALL"
#define ASL_ERR_RUNTIME "States.Runtime"
#define ASL_ERR_TIMEOUT "States.Timeout"
#define ASL_ERR_HEARTBEAT_TIMEOUT "States.HeartbeatTimeout"
#define ASL_ERR_TASK_FAILED "States.TaskFailed"
#define ASL_ERR_PERMISSIONS "States.Permissions"
#define ASL_ERR_DATA_LIMIT "States.DataLimitExceeded"
#define ASL_ERR_RESULT_PATH "States.ResultPathMatchFailure"
#define ASL_ERR_PARAMETER_PATH "States.ParameterPathFailure"
#define ASL_ERR_INTRINSIC "States.IntrinsicFailure"
#define ASL_ERR_BRANCH_FAILED "States.BranchFailed"
#define ASL_ERR_NO_CHOICE "States.NoChoiceMatched"
#define ASL_ERR_TOLERATED "States.ExceedToleratedFailureThreshold"
#define ASL_ERR_QUERY_EVAL "States.QueryEvaluationError"

#define ASL_PAYLOAD_MAX 262144 /* 256 KiB: input, output, result limit (asl.md 1.3) */

/* ---------------------------------------------------------------------------------------
 * Evaluation scope: what `$`, `$$` and randomness refer to while evaluating an expression.
 */
struct asl_scope {
    json_t *input;                      /* borrowed: the value `$` refers to */
    json_t *(*context)(void *arg);      /* returns the context object `$$` (borrowed), built
                                           lazily by the engine; NULL -> `$$` is `{}` */
    void *context_arg;                  /* passed to context() */
    uint64_t (*rand64)(void *arg);      /* randomness for States.UUID / MathRandom without a
                                           seed; NULL -> a fixed-seed generator */
    void *rand_arg;                     /* passed to rand64() */
};

/* Returns the context object of `s` (borrowed; never NULL). */
json_t *asl_scope_context(const struct asl_scope *s);

/* ---------------------------------------------------------------------------------------
 * Paths (asl/path.c). One lexer serves paths, reference paths and intrinsic arguments.
 */
enum asl_root {
    ASL_ROOT_INPUT,   /* $ ...  */
    ASL_ROOT_CONTEXT, /* $$ ... */
    ASL_ROOT_VAR,     /* $name ... (workflow variables; not supported yet) */
};

#define ASL_PATH_REFERENCE 1u /* only .name, ['name'] and [index] steps (a Reference Path) */
#define ASL_PATH_NO_CONTEXT 2u /* `$$` roots rejected (ResultPath) */

struct asl_path; /* opaque, immutable once compiled */

/* Compiles `text` (e.g. "$.a.b[0]", "$$.Execution.Id", "$..x", "$.a[?(@.p > 1)]").
 * Returns NULL with err set (name NULL, cause a lowercase message naming the problem). */
struct asl_path *asl_path_compile(const char *text, unsigned flags, struct err *err);
void asl_path_free(struct asl_path *p);
const char *asl_path_text(const struct asl_path *p);
enum asl_root asl_path_root(const struct asl_path *p);
/* True when the path selects at most one node (only names and indexes). */
bool asl_path_is_definite(const struct asl_path *p);
/* True for the bare root "$" (fast path: no evaluation needed). */
bool asl_path_is_root(const struct asl_path *p);

/* Evaluates `p` against s->input (or the context for `$$`). A definite path returns the
 * selected node; an indefinite one returns an array of all matches (possibly empty).
 * Returns a new reference, or NULL with err set to States.Runtime and AWS's texts:
 *   "Invalid path '$.x' : No results for path: $['x']"
 *   "Invalid path '$.a.b' : Missing property in path $['a']"                          */
json_t *asl_path_eval(const struct asl_path *p, const struct asl_scope *s, struct err *err);

/* ResultPath: returns `doc` with `value` placed at the (reference) path `p`, creating
 * missing intermediate objects. `doc` is not modified: the containers along the path are
 * copied, the rest is shared. "$" returns value. New reference, or NULL with err set
 * (States.Runtime) when a step cannot be applied (e.g. doc is a string). */
json_t *asl_path_assign(const struct asl_path *p, json_t *doc, json_t *value, struct err *err);

/* An upper bound of the compact size of `v` (borrowed), a value asl_path_eval(p, s) returned,
 * `doc_max` bounding the size of s->input: a definite path on `$` selects part of the input;
 * otherwise only scalars and empty containers are bounded. SIZE_MAX when unknown. */
size_t asl_path_value_size_max(const struct asl_path *p, const json_t *v, size_t doc_max);
/* An upper bound of how many bytes asl_path_assign(p, doc, value) adds to the compact sizes
 * of doc and value together (the keys and objects it creates). */
size_t asl_path_assign_growth(const struct asl_path *p);

/* Renders the normalised form Jayway prints in messages: "$['a']['b'][0]". */
char *asl_path_normalized(const struct asl_path *p);

/* ---------------------------------------------------------------------------------------
 * Intrinsic functions (asl/intrinsic.c): the eighteen States.* functions.
 */
struct asl_intrinsic; /* opaque call tree */

/* True when `text` looks like an intrinsic call ("States.Name(").*/
bool asl_intrinsic_is_call(const char *text);
/* Parses a call such as "States.Format('{}-{}', $.a, States.UUID())": checks the name, the
 * argument count and literal syntax. Returns NULL with err set (name NULL, cause message). */
struct asl_intrinsic *asl_intrinsic_parse(const char *text, struct err *err);
void asl_intrinsic_free(struct asl_intrinsic *f);
/* Evaluates the call. New reference, or NULL with err set (States.Runtime with a cause that
 * names the function and the problem). */
json_t *asl_intrinsic_eval(const struct asl_intrinsic *f, const struct asl_scope *s,
                           struct err *err);

/* ---------------------------------------------------------------------------------------
 * Payload templates (asl/template.c): Parameters, ItemSelector, ResultSelector.
 */
struct asl_tmpl; /* opaque */

/* Compiles a template (any JSON value; keys ending in ".$" anywhere are dynamic).
 * Returns NULL with err set (name NULL, cause the AWS message, e.g. "The value for the
 * field 'x.$' must be a valid JSONPath or a valid intrinsic function call"). */
struct asl_tmpl *asl_tmpl_compile(json_t *tmpl, struct err *err);
void asl_tmpl_free(struct asl_tmpl *t);
/* Evaluates the template. New reference, or NULL with err set to States.Runtime with
 * "The JSONPath '$.x' specified for the field 'k.$' could not be found in the input
 * '<compact input>'" (or an intrinsic's cause). */
json_t *asl_tmpl_eval(const struct asl_tmpl *t, const struct asl_scope *s, struct err *err);
/* asl_tmpl_eval that also sets *size_max to an upper bound of the compact size of the result
 * (SIZE_MAX when unknown), `in_max` being one of s->input's (SIZE_MAX when unknown): the
 * engine skips the 256 KiB payload walk when the bound is below it. */
json_t *asl_tmpl_eval_sized(const struct asl_tmpl *t, const struct asl_scope *s, size_t in_max,
                            size_t *size_max, struct err *err);

/* ---------------------------------------------------------------------------------------
 * Choice rules (asl/choice.c).
 */
struct asl_rule; /* opaque predicate tree */

/* Compiles one rule object (a top-level Choices[i] or a nested one). `Next` and `Comment`
 * are ignored here (the machine compiler reads Next). Returns NULL with err set (name NULL,
 * cause message) when the rule is malformed. */
struct asl_rule *asl_rule_compile(json_t *rule, struct err *err);
void asl_rule_free(struct asl_rule *r);
/* Evaluates the rule: 0 with *result set, or -1 with err set (States.Runtime, e.g.
 * "Invalid path '$.x' : No results for path: $['x']" for a missing Variable). */
int asl_rule_eval(const struct asl_rule *r, const struct asl_scope *s, bool *result,
                  struct err *err);

/* ---------------------------------------------------------------------------------------
 * Timestamps (asl/timestamp.c): RFC 3339 as Step Functions accepts it.
 */
struct asl_time {
    int64_t sec;  /* seconds since the Unix epoch, UTC */
    int32_t nsec; /* 0..999,999,999 */
};

/* Parses "2016-03-14T01:59:00Z", "...T01:59:00.123+01:00". Uppercase T, a zone (Z or
 * +hh:mm) required. Returns 0, or -1 when the text is not such a timestamp. */
int asl_time_parse(const char *text, struct asl_time *out);
int asl_time_cmp(const struct asl_time *a, const struct asl_time *b);
/* Formats epoch milliseconds as "2024-05-01T10:00:00.123Z" into buf (>= 32 bytes). */
void asl_time_format_ms(int64_t ms, char *buf, size_t size);

/* ---------------------------------------------------------------------------------------
 * Validation (asl/validate.c) and compilation (asl/machine.c).
 */
/* One action of an optimized service integration the validator knows
 * (arn:<partition>:states:::<service>:<action>[.sync]). For a listed service, an action or
 * pattern not listed is refused as an unrecognised resource (integrations.md §1.1). */
struct asl_known_action {
    const char *service; /* "elasticmapreduce" */
    const char *action;  /* "addStep" */
    bool sync;           /* .sync too (request-response always) */
};
extern const struct asl_known_action asl_known_actions[];
extern const size_t asl_n_known_actions;

struct asl_diag {
    char *code;     /* "SCHEMA_VALIDATION_FAILED", "MISSING_TRANSITION_TARGET", ... */
    char *message;  /* "These fields are required: [States]" */
    char *location; /* "/States/A/Next", "/" ; NULL when AWS gives none */
};

struct asl_diags {
    struct asl_diag *v; /* owned array */
    size_t n;           /* entries used */
    size_t cap;         /* entries allocated */
};

enum asl_machine_type { ASL_STANDARD, ASL_EXPRESS };

void asl_diags_init(struct asl_diags *d);
void asl_diags_release(struct asl_diags *d);
void asl_diags_add(struct asl_diags *d, const char *code, const char *location,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Renders "CODE: message at location, CODE: ..." as in AWS's InvalidDefinition message. */
char *asl_diags_render(const struct asl_diags *d);

/* Validates definition text as AWS does (asl.md section 13): appends every diagnostic to
 * `d`. Returns 0 when the definition is valid. Features this engine does not support yet
 * (JSONata, Assign, distributed Map) are reported with code UNSUPPORTED_FEATURE naming the
 * feature. */
int asl_validate(const char *text, size_t len, enum asl_machine_type type,
                 struct asl_diags *d);
/* Same on an already-parsed definition (borrowed). */
int asl_validate_json(json_t *def, enum asl_machine_type type, struct asl_diags *d);

#endif
