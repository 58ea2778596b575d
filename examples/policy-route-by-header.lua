-- SPDX-License-Identifier: MIT
-- Example custom policy: the client picks the routing strategy with a request header.
--   x-route-hint: cheap  -> cheapest endpoint first
--   x-route-hint: fast   -> lowest measured latency first (unmeasured endpoints after measured ones)
--   anything else        -> price-weighted random first pick (like policies/default.lua), then cheapest first
-- In every mode the requested model's endpoints come before models[] fallbacks, and unstable endpoints
-- (unhealthy or a failure in the last 30 s) go after stable ones.
--
-- The header must be exposed to policies in the gateway config, and the policy registered:
--   "routing": { "expose_headers": ["x-route-hint"] },
--   "policies": { "route_by_header": { "path": "policy-route-by-header.lua",
--                                      "settings": { "default_hint": "cheap" } } }
-- lg.conf.default_hint (optional, see SCHEMA) is used when the header is absent.
local lg = lg
local ipairs = ipairs
local random, is_stable, group_by_model = lg.random, lg.stable, lg.group_by_model

local M = { NAME = "route_by_header", VERSION = "1.0.0" }

-- checked by the host at load (and by --check-config): a typo or an unknown hint is a config error
M.SCHEMA = {
    default_hint = {
        type = "string",
        one_of = { "cheap", "fast", "weighted" },
        description = "mode used when the request has no x-route-hint header (absent = weighted)",
    },
}

local HEADER = "x-route-hint"
local PRICE_FLOOR = 1e-12

local function price_of(c)
    return c.price_prompt + c.price_completion
end

-- the mode's keys; ties by id so the order is total
local function cheap(a, b)
    local pa, pb = price_of(a), price_of(b)
    if pa ~= pb then
        return pa < pb
    end
    return a.id < b.id
end

local function fast(a, b)
    local la, lb = a.latency_ms, b.latency_ms
    if (la > 0) ~= (lb > 0) then
        return la > 0
    end
    if la ~= lb then
        return la < lb
    end
    return cheap(a, b)
end

-- the candidates model by model (requested model first), stable before unstable, then by key
local function sorted(candidates, key)
    local function before(a, b)
        local sa, sb = is_stable(a), is_stable(b)
        if sa ~= sb then
            return sa
        end
        return key(a, b)
    end
    local list = {}
    for _, group in ipairs(group_by_model(candidates, before)) do
        for _, c in ipairs(group) do
            list[#list + 1] = c
        end
    end
    return list
end

-- move one stable endpoint of the first model to the front, drawn with probability ~ weight / price^2
local function weighted_first(list)
    local total, weights = 0, {}
    local first_model = list[1].model_index
    for i, c in ipairs(list) do
        if c.model_index ~= first_model or not is_stable(c) then
            break
        end
        local p = price_of(c)
        if p < PRICE_FLOOR then
            p = PRICE_FLOOR
        end
        weights[i] = c.weight / (p * p)
        total = total + weights[i]
    end
    if total <= 0 then
        return list
    end
    local r = random() * total
    for i = 1, #weights do
        r = r - weights[i]
        if r < 0 or i == #weights then
            local pick = list[i]
            for j = i, 2, -1 do
                list[j] = list[j - 1]
            end
            list[1] = pick
            break
        end
    end
    return list
end

function M.select(req, candidates)
    if #candidates == 0 then
        return {}
    end
    local hint = req.headers[HEADER] or lg.conf.default_hint
    local list
    if hint == "fast" then
        list = sorted(candidates, fast)
    elseif hint == "cheap" then
        list = sorted(candidates, cheap)
    else
        list = weighted_first(sorted(candidates, cheap))
    end
    local plan = {}
    for i, c in ipairs(list) do
        plan[i] = c.id
    end
    return plan
end

-- a rate limit on a cheap-mode request moves on at once; everything else keeps the gateway defaults
function M.on_error(req, _, err)
    if err.retryable then
        return "next"
    end
    if req.headers[HEADER] == "cheap" and err.status == 429 then
        return "next"
    end
    return "stop"
end

return M
