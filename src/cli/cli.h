/* SPDX-License-Identifier: MIT */
/*
 * Operator command line that works directly on the store: `llmgate keys ...`
 * (create/list/show/update/disable/enable/delete) and `llmgate usage ...`.
 * Safe to run while a gateway uses the same database (WAL, busy timeout); a
 * running gateway picks key changes up on SIGHUP or through its admin API.
 */
#ifndef LG_CLI_CLI_H
#define LG_CLI_CLI_H

/**
 * Entry for `llmgate keys|usage ...`; argv[1] is "keys" or "usage". Global options anywhere on the line:
 * --config FILE (database = the file's store.path) or --db PATH (default: the embedded default's ./llmgate.db).
 * Output goes to stdout, messages to stderr. Returns the process exit status: 0 success, 1 not found or store
 * error, 2 bad usage or invalid input.
 */
int lg_cli_main(int argc, char **argv);

#endif
