-- SPDX-License-Identifier: MIT
-- latency: lowest measured latency (latency_ms EWMA) first, per model in request order; endpoints without data
-- after measured ones, unstable endpoints (unhealthy or a failure in the last 30 s) last; ties cheapest first.
local lg = lg
local is_stable, plan_by_model = lg.stable, lg.plan_by_model

local M = { NAME = "latency", VERSION = "1.0.0" }

-- within one model's endpoints (lg.plan_by_model keeps the models in request order)
local function before(a, b)
    local sa, sb = is_stable(a), is_stable(b)
    if sa ~= sb then
        return sa
    end
    local la, lb = a.latency_ms, b.latency_ms
    if (la > 0) ~= (lb > 0) then
        return la > 0
    end
    if la ~= lb then
        return la < lb
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
