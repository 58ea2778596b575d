-- SPDX-License-Identifier: MIT
-- latency: lowest measured latency (latency_ms EWMA) first, per model in request order; endpoints without data
-- after measured ones, unstable endpoints (unhealthy or a failure in the last 30 s) last; ties cheapest first.
local ipairs = ipairs
local sort = table.sort

local M = { NAME = "latency", VERSION = "1.0.0" }

local STABLE_AFTER_S = 30

local function is_stable(c)
    return c.healthy and (c.outage_age_s < 0 or c.outage_age_s >= STABLE_AFTER_S)
end

local function before(a, b)
    if a.model_index ~= b.model_index then
        return a.model_index < b.model_index
    end
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
    local list = {}
    for i, c in ipairs(candidates) do
        list[i] = c
    end
    sort(list, before)
    local plan = {}
    for i, c in ipairs(list) do
        plan[i] = c.id
    end
    return plan
end

return M
