-- SPDX-License-Identifier: MIT
-- price: cheapest endpoint first (prompt + completion price per token), per model in request order; unstable
-- endpoints (unhealthy or a failure in the last 30 s) after the stable ones. Deterministic, no load balancing.
local lg = lg
local is_stable, plan_by_model = lg.stable, lg.plan_by_model

local M = { NAME = "price", VERSION = "1.0.0" }

-- within one model's endpoints (lg.plan_by_model keeps the models in request order)
local function before(a, b)
    local sa, sb = is_stable(a), is_stable(b)
    if sa ~= sb then
        return sa
    end
    local pa, pb = a.price_prompt + a.price_completion, b.price_prompt + b.price_completion
    if pa ~= pb then
        return pa < pb
    end
    return a.id < b.id
end

function M.select(_, candidates)
    return plan_by_model(candidates, before)
end

return M
