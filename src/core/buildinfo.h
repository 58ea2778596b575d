/* SPDX-License-Identifier: MIT */
/*
 * What `llmgate --version` prints: version, source commit and build type (fixed at configure time), compiler, and the
 * versions of the libraries the binary runs with.
 */
#ifndef LG_CORE_BUILDINFO_H
#define LG_CORE_BUILDINFO_H

#include <stdio.h>

/** Write the multi-line build description to out. */
void lg_buildinfo_print(FILE *out);

#endif
