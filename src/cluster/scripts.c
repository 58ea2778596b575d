/* SPDX-License-Identifier: MIT */
/*
 * Lua sources of the shared-limit scripts (contract in scripts.h). Token
 * buckets refill continuously at limit/60 per second up to the limit, like
 * the in-process buckets (src/auth/ratelimit.c); levels are stored as decimal
 * strings so fractional refill is not lost between calls.
 */
#include <pthread.h>
#include "cluster/scripts.h"

/* Shared prologue: refill both buckets to the server's now. */
#define REFILL                                                                                                                     \
    "local t = redis.call('TIME')\n"                                                                                               \
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"                                                      \
    "local rpm, tpm = tonumber(ARGV[1]), tonumber(ARGV[2])\n"                                                                      \
    "local st = redis.call('HMGET', KEYS[1], 'r', 't', 'ts')\n"                                                                    \
    "local r, tk, ts = tonumber(st[1]) or rpm, tonumber(st[2]) or tpm, tonumber(st[3]) or now\n"                                   \
    "local dt = now - ts\n"                                                                                                        \
    "if dt < 0 then dt = 0 end\n"                                                                                                  \
    "if rpm > 0 then r = math.min(rpm, r + dt * rpm / 60000) end\n"                                                                \
    "if tpm > 0 then tk = math.min(tpm, tk + dt * tpm / 60000) end\n"

/* Store the buckets; they expire once they would be full again (an absent bucket reads as full). */
#define STORE                                                                                                                      \
    "local function store()\n"                                                                                                     \
    "  local full = 0\n"                                                                                                           \
    "  if rpm > 0 and r < rpm then full = math.max(full, (rpm - r) * 60000 / rpm) end\n"                                           \
    "  if tpm > 0 and tk < tpm then full = math.max(full, (tpm - tk) * 60000 / tpm) end\n"                                         \
    "  if full <= 0 then redis.call('DEL', KEYS[1]) return end\n"                                                                  \
    "  redis.call('HSET', KEYS[1], 'r', tostring(r), 't', tostring(tk), 'ts', now)\n"                                              \
    "  redis.call('PEXPIRE', KEYS[1], math.ceil(full) + 1000)\n"                                                                   \
    "end\n"

/* Credit counter of the period, created from the replica's seed when absent. */
#define CREDIT                                                                                                                     \
    "local function credit_used(seed, ttl)\n"                                                                                      \
    "  local u = redis.call('GET', KEYS[2])\n"                                                                                     \
    "  if u then return tonumber(u) end\n"                                                                                         \
    "  redis.call('SET', KEYS[2], seed, 'EX', ttl)\n"                                                                              \
    "  return tonumber(seed)\n"                                                                                                    \
    "end\n"

lg_redis_script_t lg_script_admit = {
    .name = "admit",
    .source = REFILL STORE CREDIT
    "local est, limit = tonumber(ARGV[3]), tonumber(ARGV[4])\n"
    "local used = 0\n"
    "if limit >= 0 then\n"
    "  used = credit_used(ARGV[5], ARGV[6])\n"
    "  if used >= limit then return {3, 0, -1, -1, 0, used} end\n"
    "end\n"
    "local need = est\n"
    "if tpm > 0 and need > tpm then need = tpm end\n" /* an estimate above the budget passes on a full bucket */
    "local wr, wt = 0, 0\n"
    "if rpm > 0 and r + 1e-9 < 1 then wr = math.max(1, math.ceil((1 - r) * 60000 / rpm)) end\n"
    "if tpm > 0 and tk + 1e-9 < need then wt = math.max(1, math.ceil((need - tk) * 60000 / tpm)) end\n"
    "local function hdr(level, cap)\n"
    "  local rem = math.floor(level)\n"
    "  if rem < 0 then rem = 0 end\n"
    "  local reset = now\n"
    "  if level < cap then reset = now + math.ceil((cap - level) * 60000 / cap) end\n"
    "  return rem, reset\n"
    "end\n"
    "if wr > 0 or wt > 0 then\n"
    "  store()\n"
    "  if wt > wr then local rem, reset = hdr(tk, tpm) return {2, wt, tpm, rem, reset, used} end\n"
    "  local rem, reset = hdr(r, rpm) return {1, wr, rpm, rem, reset, used}\n"
    "end\n"
    "if rpm > 0 then r = r - 1 end\n"
    "if tpm > 0 then tk = tk - est end\n"
    "store()\n"
    "if rpm > 0 then local rem, reset = hdr(r, rpm) return {0, 0, rpm, rem, reset, used} end\n"
    "if tpm > 0 then local rem, reset = hdr(tk, tpm) return {0, 0, tpm, rem, reset, used} end\n"
    "return {0, 0, -1, -1, 0, used}\n",
};

lg_redis_script_t lg_script_adjust = {
    .name = "adjust",
    .source = REFILL STORE CREDIT "local dr, dt2, cost = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])\n"
                                  "if rpm > 0 and dr ~= 0 then r = math.min(rpm, r + dr) end\n"
                                  "if tpm > 0 and dt2 ~= 0 then tk = math.min(tpm, tk + dt2) end\n"
                                  "if (rpm > 0 and dr ~= 0) or (tpm > 0 and dt2 ~= 0) then store() end\n"
                                  "if cost > 0 then\n"
                                  "  credit_used(ARGV[6], ARGV[7])\n"
                                  "  return redis.call('INCRBY', KEYS[2], ARGV[5])\n"
                                  "end\n"
                                  "return 0\n",
};

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init_once(void)
{
    lg_redis_script_init(&lg_script_admit);
    lg_redis_script_init(&lg_script_adjust);
}

void lg_cluster_scripts_init(void)
{
    pthread_once(&once, init_once);
}
