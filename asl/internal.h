/* asl/internal.h - declarations shared by the files of asl/ only (prefix asl__). Each file's
 * owner adds its own section; nothing here is part of the public contract (asl.h). */
#ifndef SFN_ASL_INTERNAL_H
#define SFN_ASL_INTERNAL_H

#include <stddef.h>

#include "asl/asl.h"
#include "util/err.h"

/* ---------------------------------------------------------------------------------------
 * asl/path.c
 */

/* Compiles the Path at the start of `text` (which must start with '$') and stops before the
 * first character that cannot continue it outside brackets: whitespace, ',' or ')'. This is
 * how intrinsic arguments such as "$.a, $.b)" are read with the one path lexer. Stores the
 * number of bytes consumed in *len. Same errors as asl_path_compile (name NULL). */
struct asl_path *asl__path_compile_prefix(const char *text, size_t *len, unsigned flags,
                                          struct err *err);

#endif
