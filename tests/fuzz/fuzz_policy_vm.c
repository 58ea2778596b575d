/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the policy VM: the input is Lua source. The first byte picks how it is used: as a whole policy
 * file, or as the body of select/on_error/on_done in a template that always loads; the rest goes through loading (the
 * sandbox, the load-time budget), select with three candidates, on_error with each error shape and on_done. Whatever
 * the source does, the VM must answer with a valid plan or a policy error and survive for the next call: a crash, a
 * hang past libFuzzer's timeout or an out-of-range plan id is a bug. With bit 1 of the first byte set the policy gets
 * fixed settings, so a SCHEMA the source declares is checked against them (and refused or filled) on the way.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "core/log.h"
#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void quiet_sink(int level, const char *module, const char *line)
{
    (void)level;
    (void)module;
    (void)line;
}

static const char TEMPLATE_HEAD[] = "local M = {NAME = 'fuzz', VERSION = '1.0.0'}\n"
                                    "local function body(req, c, a, e)\n";
static const char TEMPLATE_TAIL[] = "\nend\n"
                                    "function M.select(req, c) return body(req, c) end\n"
                                    "function M.on_error(req, a, e) return body(req, nil, a, e) end\n"
                                    "function M.on_done(req, r) body(req, nil, r) end\n"
                                    "return M\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int inited;
    if (!inited) {
        lg_log_set_sink(quiet_sink);
        inited = 1;
    }
    if (size == 0 || size > 64 * 1024)
        return 0;
    int templated = data[0] & 1, with_settings = data[0] & 2;
    ++data;
    --size;

    int fd = memfd_create("policy", 0);
    if (fd < 0)
        return 0;
    if (templated && write(fd, TEMPLATE_HEAD, sizeof(TEMPLATE_HEAD) - 1) < 0)
        abort();
    if (size != 0 && write(fd, data, size) != (ssize_t)size)
        abort();
    if (templated && write(fd, TEMPLATE_TAIL, sizeof(TEMPLATE_TAIL) - 1) < 0)
        abort();
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);

    static char name[] = "fuzz";
    lg_policy_conf_t pc = {0};
    pc.name = name;
    pc.path = path;
    static json_t *settings;
    if (settings == NULL)
        settings = json_loads("{\"limit\": 5, \"hint\": \"cheap\", \"routes\": [{\"model\": \"a/b\", \"tools\": true}], "
                              "\"nested\": {\"rpm\": 60}}",
                              0, NULL);
    pc.settings = with_settings ? settings : NULL;
    lg_config_t conf;
    memset(&conf, 0, sizeof(conf));
    conf.policy_instruction_budget = 10000; /* smaller than production: keeps executions fast */
    conf.policy_memory_mb = 8;
    conf.policies = &pc;
    conf.num_policies = 1;
    conf.default_policy = name;
    char err[512];
    lg_policy_vm_t *vm = lg_policy_vm_create(&conf, 7, err, sizeof(err));
    close(fd);
    if (vm == NULL)
        return 0;

    static const char *const fallbacks[] = {"other/model"};
    lg_policy_req_t req = {0};
    req.model = "vendor/model";
    req.models = fallbacks;
    req.num_models = 1;
    req.stream = 1;
    req.max_tokens = 100;
    lg_candidate_t cands[3];
    memset(cands, 0, sizeof(cands));
    static const char *const provs[] = {"alpha", "beta", "gamma"};
    for (uint32_t i = 0; i < 3; ++i) {
        cands[i].id = i + 1;
        cands[i].provider = provs[i];
        cands[i].model = i < 2 ? "vendor/model" : "other/model";
        cands[i].upstream_model = "m";
        cands[i].model_index = i < 2 ? 0 : 1;
        cands[i].price_prompt = 1e-6 * (i + 1);
        cands[i].price_completion = 2e-6;
        cands[i].weight = 1;
        cands[i].tier = "standard";
        cands[i].healthy = i != 1;
        cands[i].outage_age_s = i == 1 ? 3 : -1;
    }
    for (int round = 0; round < 2; ++round) { /* twice: state left over by the first call must not break the second */
        uint32_t plan[8];
        size_t n = 0;
        if (lg_policy_select(vm, name, &req, cands, 3, plan, 8, &n, err, sizeof(err)) == 0) {
            if (n > 8)
                abort();
            for (size_t i = 0; i < n; ++i)
                if (plan[i] < 1 || plan[i] > 3)
                    abort();
        }
        lg_policy_attempt_t at = {1, 1, 1};
        lg_policy_error_t e1 = {503, "upstream_error", 1, 250, "overloaded"}, e2 = {0, "timeout", 0, -1, ""};
        lg_policy_action_t a = lg_policy_on_error(vm, name, &req, &at, round == 0 ? &e1 : &e2);
        if (a != LG_POLICY_RETRY && a != LG_POLICY_NEXT && a != LG_POLICY_STOP)
            abort();
        lg_policy_result_t res = {round == 0, 1, 2, 200, round == 0 ? NULL : "timeout", 10, 20, 1.5, 3.0};
        lg_policy_on_done(vm, name, &req, &res);
    }
    lg_policy_vm_destroy(vm);
    return 0;
}
