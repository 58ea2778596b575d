/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the config loader: any byte string goes through
 * lg_config_parse (JSON reader, every validator, price parser, path
 * building) and whatever comes back is freed, so ASan sees leaks and
 * overruns on both the accept and the reject paths.
 */
#include <stddef.h>
#include <stdint.h>
#include "core/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* deliberately small: exercises the truncation path of the error joiner on most rejected inputs */
    char err[192];
    lg_config_t *conf = lg_config_parse((const char *)data, size, "/nonexistent", err, sizeof(err));
    lg_config_free(conf);
    return 0;
}
