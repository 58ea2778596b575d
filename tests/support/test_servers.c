/* SPDX-License-Identifier: MIT */
/*
 * Real server processes for unit tests: see test_servers.h.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include "test_servers.h"

int lg_test_servers_tmpdir(char *dir, size_t cap, const char *template_path)
{
    if (snprintf(dir, cap, "%s", template_path) >= (int)cap)
        return -1;
    return mkdtemp(dir) != NULL ? 0 : -1;
}

int lg_test_servers(const char *cmd, const char *dir, char *out, size_t cap)
{
    const char *src = getenv("LLMGATE_SOURCE_DIR");
    char line[2 * PATH_MAX];
    snprintf(line, sizeof(line), "%s/tests/cluster/servers.sh %s %s", src != NULL ? src : "../..", cmd, dir);
    FILE *p = popen(line, "r");
    if (p == NULL)
        return -1;
    size_t n = out != NULL ? fread(out, 1, cap - 1, p) : 0;
    if (out != NULL)
        out[n] = '\0';
    return pclose(p);
}
