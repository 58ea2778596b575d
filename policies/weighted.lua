-- SPDX-License-Identifier: MIT
-- weighted: per model in request order, a weighted random order of the stable endpoints by their catalog `weight`
-- (an endpoint with weight 2 goes first twice as often as one with weight 1), then stable endpoints with weight 0
-- (cheapest first), then unstable ones (unhealthy or a failure in the last 30 s) by weight, heaviest first.
local lg = lg
local ipairs, type = ipairs, type
local log = math.log
local random, is_stable, plan_by_model = lg.random, lg.stable, lg.plan_by_model

local M = { NAME = "weighted", VERSION = "1.0.0" }

-- no settings: the host refuses any key under policies.<name>.settings (a typo no longer passes silently)
M.SCHEMA = {}

local function weight_of(c)
    local w = c.weight
    if type(w) ~= "number" or w ~= w or w < 0 then
        return 0
    end
    return w
end

function M.select(_, candidates)
    -- class: 1 = stable with weight (random order), 2 = stable without, 3 = unstable
    -- key: Efraimidis-Spirakis log(u)/w (larger first) for class 1, -weight for 3, price for 2
    local class, key = {}, {}
    -- draws in candidate order, before grouping, so a seed gives the same plan
    for _, c in ipairs(candidates) do
        local w = weight_of(c)
        if not is_stable(c) then
            class[c] = 3
            key[c] = -w
        elseif w > 0 then
            local u = random()
            if u <= 0 then
                u = 1e-300
            end
            class[c] = 1
            key[c] = -(log(u) / w)
        else
            class[c] = 2
            key[c] = c.price_prompt + c.price_completion
        end
    end
    return plan_by_model(candidates, function(a, b)
        if class[a] ~= class[b] then
            return class[a] < class[b]
        end
        if key[a] ~= key[b] then
            return key[a] < key[b]
        end
        return a.id < b.id
    end)
end

return M
