/* SPDX-License-Identifier: MIT */
/*
 * Real server processes for unit tests (redis-server, PostgreSQL): a thin wrapper over tests/cluster/servers.sh,
 * which starts and stops them on loopback in a temp directory the test owns.
 */
#ifndef LG_TEST_SERVERS_H
#define LG_TEST_SERVERS_H

#include <stddef.h>

/** Make a fresh temp directory from a mkdtemp template (e.g. "/tmp/lg_pg_test_XXXXXX") into dir. 0 or -1. */
int lg_test_servers_tmpdir(char *dir, size_t cap, const char *template_path);
/** Run `servers.sh <cmd> <dir>`; its stdout (e.g. the port) goes into out when out is not NULL. Returns its exit status. */
int lg_test_servers(const char *cmd, const char *dir, char *out, size_t cap);

#endif
