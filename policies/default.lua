-- SPDX-License-Identifier: MIT
-- default: OpenRouter's default routing (its provider-routing "load balancing"). Candidates are grouped by model
-- (requested model first, then models[] fallbacks). Within a model: provider.order entries first, then
-- provider.sort if set; otherwise price-weighted load balancing: the first endpoint is drawn among the stable ones
-- with probability proportional to weight / price^2, the other stable ones follow cheapest first, unstable ones
-- (unhealthy or a failure in the last 30 s) go last.
local lg = lg
local ipairs, type = ipairs, type
local sort = table.sort
local random, is_stable, group_by_model = lg.random, lg.stable, lg.group_by_model

local M = { NAME = "default", VERSION = "1.0.0" }

-- no settings: the host refuses any key under policies.<name>.settings (a typo no longer passes silently)
M.SCHEMA = {}

local PRICE_FLOOR = 1e-12 -- free endpoints count as very cheap instead of dividing by zero

local function price_of(c)
    return c.price_prompt + c.price_completion
end

-- comparators are total orders (ties broken by id) so plans are deterministic
local function by_price(a, b)
    local pa, pb = price_of(a), price_of(b)
    if pa ~= pb then
        return pa < pb
    end
    return a.id < b.id
end

local function by_stable_price(a, b)
    local sa, sb = is_stable(a), is_stable(b)
    if sa ~= sb then
        return sa
    end
    return by_price(a, b)
end

local function by_throughput(a, b)
    if a.throughput_tps ~= b.throughput_tps then
        return a.throughput_tps > b.throughput_tps
    end
    return a.id < b.id
end

local function by_latency(a, b)
    local la, lb = a.latency_ms, b.latency_ms
    if (la > 0) ~= (lb > 0) then
        return la > 0 -- unknown (0) after known
    end
    if la ~= lb then
        return la < lb
    end
    return a.id < b.id
end

local SORTS = { price = by_price, throughput = by_throughput, latency = by_latency }

-- index of the first provider.order entry matching the slug: exact, or a base slug matching "<entry>/..."
local function order_rank(order, provider)
    if type(provider) ~= "string" then
        return nil
    end
    for i = 1, #order do
        local e = order[i]
        if type(e) == "string" then
            -- 47 = "/": "google-vertex" matches "google-vertex/us-east5"
            if provider == e or (provider:find(e, 1, true) == 1 and provider:byte(#e + 1) == 47) then
                return i
            end
        end
    end
    return nil
end

local function append_all(plan, list)
    for i = 1, #list do
        plan[#plan + 1] = list[i].id
    end
end

-- §4.1: weighted random first pick among the stable, the rest of the stable cheapest first, the unstable last
local function load_balance(plan, group)
    local stable, unstable = {}, {}
    for _, c in ipairs(group) do
        if is_stable(c) then
            stable[#stable + 1] = c
        else
            unstable[#unstable + 1] = c
        end
    end
    sort(stable, by_price)
    sort(unstable, by_price)
    local n = #stable
    if n > 0 then
        local weights, total = {}, 0
        for i = 1, n do
            local c = stable[i]
            local p = price_of(c)
            if p < PRICE_FLOOR then
                p = PRICE_FLOOR
            end
            local w = c.weight
            if type(w) ~= "number" or w < 0 then
                w = 0
            end
            w = w / (p * p)
            weights[i] = w
            total = total + w
        end
        local pick = 1 -- all weights zero: cheapest
        if total > 0 then
            local r = random() * total
            for i = 1, n do
                r = r - weights[i]
                if r < 0 then
                    pick = i
                    break
                end
                pick = i -- rounding: the last one with weight
            end
        end
        plan[#plan + 1] = stable[pick].id
        for i = 1, n do
            if i ~= pick then
                plan[#plan + 1] = stable[i].id
            end
        end
    end
    append_all(plan, unstable)
end

local function plan_group(plan, group, order, cmp)
    if order ~= nil then
        -- order (like sort) disables load balancing: listed providers in list order, then the rest
        local ranks, listed, rest = {}, {}, {}
        for _, c in ipairs(group) do
            local r = order_rank(order, c.provider)
            if r ~= nil then
                ranks[c] = r
                listed[#listed + 1] = c
            else
                rest[#rest + 1] = c
            end
        end
        local tail = cmp or by_stable_price
        sort(listed, function(a, b)
            if ranks[a] ~= ranks[b] then
                return ranks[a] < ranks[b]
            end
            return tail(a, b)
        end)
        sort(rest, tail)
        append_all(plan, listed)
        append_all(plan, rest)
    elseif cmp ~= nil then
        sort(group, cmp)
        append_all(plan, group)
    else
        load_balance(plan, group)
    end
end

function M.select(req, candidates)
    local prefs = req.provider
    local order, partition_none
    local cmp = req.sort and SORTS[req.sort] or nil
    if type(prefs) == "table" then
        if type(prefs.order) == "table" and #prefs.order > 0 then
            order = prefs.order
        end
        partition_none = cmp ~= nil and type(prefs.sort) == "table" and prefs.sort.partition == "none"
    end

    local plan = {}
    if partition_none then
        local all = {}
        for i, c in ipairs(candidates) do
            all[i] = c
        end
        plan_group(plan, all, order, cmp)
        return plan
    end

    for _, group in ipairs(group_by_model(candidates)) do
        plan_group(plan, group, order, cmp)
    end
    return plan
end

return M
