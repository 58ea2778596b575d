-- SPDX-License-Identifier: MIT
-- latency: lowest measured latency (latency_ms EWMA) first, per model in request order; endpoints without data
-- after measured ones, unstable endpoints (unhealthy or a failure in the last 30 s) last; ties cheapest first.
local lg = lg
local huge = math.huge
local plan_by_model = lg.plan_by_model

local M = { NAME = "latency", VERSION = "1.0.0" }

-- no settings: the host refuses any key under policies.<name>.settings (a typo no longer passes silently)
M.SCHEMA = {}

-- within one model's endpoints (lg.plan_by_model keeps the models in request order): stable first, then lowest
-- latency with "no data" (0) after every measurement, then cheapest, then lower id (lg.stable_order)
local before = lg.stable_order(function(c)
    return c.latency_ms > 0 and c.latency_ms or huge
end)

function M.select(_, candidates)
    return plan_by_model(candidates, before)
end

return M
