-- SPDX-License-Identifier: MIT
-- throughput: highest measured output speed (throughput_tps EWMA) first, per model in request order; endpoints
-- without data after measured ones, unstable endpoints (unhealthy or a failure in the last 30 s) last; ties cheapest
-- first.
local lg = lg
local is_stable, plan_by_model = lg.stable, lg.plan_by_model

local M = { NAME = "throughput", VERSION = "1.0.0" }

-- within one model's endpoints (lg.plan_by_model keeps the models in request order)
local function before(a, b)
    local sa, sb = is_stable(a), is_stable(b)
    if sa ~= sb then
        return sa
    end
    if a.throughput_tps ~= b.throughput_tps then
        return a.throughput_tps > b.throughput_tps
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
