-- SPDX-License-Identifier: MIT
-- throughput: highest measured output speed (throughput_tps EWMA) first, per model in request order; endpoints
-- without data after measured ones, unstable endpoints (unhealthy or a failure in the last 30 s) last; ties cheapest
-- first.
local lg = lg
local plan_by_model = lg.plan_by_model

local M = { NAME = "throughput", VERSION = "1.0.0" }

-- no settings: the host refuses any key under policies.<name>.settings (a typo no longer passes silently)
M.SCHEMA = {}

-- within one model's endpoints (lg.plan_by_model keeps the models in request order): stable first, then fastest
-- (no data = 0, so after every measurement), then cheapest, then lower id (lg.stable_order)
local before = lg.stable_order(function(c)
    return -c.throughput_tps
end)

function M.select(_, candidates)
    return plan_by_model(candidates, before)
end

return M
