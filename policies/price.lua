-- SPDX-License-Identifier: MIT
-- price: cheapest endpoint first (prompt + completion price per token), per model in request order; unstable
-- endpoints (unhealthy or a failure in the last 30 s) after the stable ones. Deterministic, no load balancing.
local lg = lg
local plan_by_model = lg.plan_by_model

local M = { NAME = "price", VERSION = "1.0.0" }

-- no settings: the host refuses any key under policies.<name>.settings (a typo no longer passes silently)
M.SCHEMA = {}

-- within one model's endpoints (lg.plan_by_model keeps the models in request order): stable first, then cheapest,
-- then lower id (lg.stable_order)
local before = lg.stable_order(function(c)
    return c.price_prompt + c.price_completion
end)

function M.select(_, candidates)
    return plan_by_model(candidates, before)
end

return M
