-- SPDX-License-Identifier: MIT
-- auto: routes a router model (OpenRouter's openrouter/auto) by the request itself. The catalog entry declares the
-- models it may pick, e.g. "llmgate/auto": { "auto": { "models": ["small/fast", "big/smart", "tool/caller"] } };
-- the router hands this policy the endpoints of all of them (each candidate's `model` names its model) and the
-- policy picks one model from its settings:
--   "policies": { "auto": { "settings": { "routes": [
--       { "tools": true, "model": "tool/caller" },
--       { "max_prompt_tokens": 2000, "model": "small/fast" },
--       { "min_prompt_tokens": 2001, "model": "big/smart" } ],
--     "default_model": "big/smart" } } }
-- Routes are tried in order; the first whose conditions all hold (prompt estimate within [min, max], tools present
-- or absent) and whose model still has an endpoint after the hard filters wins. Otherwise default_model, otherwise the
-- first model of auto.models with an endpoint left. The plan is the chosen model's endpoints (stable first, then
-- cheapest), then — with fallback = "others" — the other auto models' endpoints in auto.models order, then the
-- request's models[] fallbacks. The response's `model` names the model that served.
local lg = lg
local ipairs = ipairs
local sort = table.sort
local group_by_model = lg.group_by_model

local M = { NAME = "auto", VERSION = "1.0.0" }

M.SCHEMA = {
    routes = {
        type = "array",
        default = {},
        description = "rules tried in order; the first that matches (and has endpoints) picks the model",
        items = {
            type = "object",
            fields = {
                model = { type = "string", min = 1, required = true },
                min_prompt_tokens = { type = "integer", min = 0 },
                max_prompt_tokens = { type = "integer", min = 0 },
                tools = { type = "boolean", description = "true: only requests with tools; false: only without" },
            },
        },
    },
    default_model = { type = "string", min = 1, description = "when no route matches; absent = first of auto.models" },
    fallback = {
        type = "string",
        one_of = { "others", "none" },
        default = "others",
        description = "after the chosen model's endpoints: the other auto models' endpoints (others) or nothing (none)",
    },
}

local function price_of(c)
    return c.price_prompt + c.price_completion
end

-- stable first, then cheapest, ties by id: a total order, so plans are deterministic
local by_stable_price = lg.stable_order(price_of)

local function matches(route, req)
    local prompt = req.prompt_tokens or 0
    if route.min_prompt_tokens ~= nil and prompt < route.min_prompt_tokens then
        return false
    end
    if route.max_prompt_tokens ~= nil and prompt > route.max_prompt_tokens then
        return false
    end
    if route.tools ~= nil and route.tools ~= (req.has_tools == true) then
        return false
    end
    return true
end

-- the model this request goes to, among the models that have candidates (has[model] = true)
local function choose(req, has, first_model)
    local conf = lg.conf
    for _, route in ipairs(conf.routes) do
        if has[route.model] and matches(route, req) then
            return route.model
        end
    end
    if conf.default_model ~= nil and has[conf.default_model] then
        return conf.default_model
    end
    return first_model
end

function M.select(req, candidates)
    if #candidates == 0 then
        return {}
    end
    local groups = group_by_model(candidates)
    -- group 1 holds the requested (auto) model's candidates, unless filters removed them all
    local own = groups[1][1].model_index == 0 and groups[1] or {}
    local has, first_model = {}, nil
    for _, c in ipairs(own) do
        if not has[c.model] then
            has[c.model] = true
            first_model = first_model or c.model
        end
    end
    local chosen = choose(req, has, first_model)
    local picked, others = {}, {}
    for _, c in ipairs(own) do
        if c.model == chosen then
            picked[#picked + 1] = c
        else
            others[#others + 1] = c
        end
    end
    sort(picked, by_stable_price)
    local plan = {}
    for _, c in ipairs(picked) do
        plan[#plan + 1] = c.id
    end
    if lg.conf.fallback == "others" then
        -- the other models in auto.models order (candidates arrive in that order), each model's endpoints best first
        local start = 1
        while start <= #others do
            local model, stop = others[start].model, start
            while stop < #others and others[stop + 1].model == model do
                stop = stop + 1
            end
            local run = {}
            for i = start, stop do
                run[#run + 1] = others[i]
            end
            sort(run, by_stable_price)
            for _, c in ipairs(run) do
                plan[#plan + 1] = c.id
            end
            start = stop + 1
        end
    end
    -- the request's models[] fallbacks, in their order
    for g = (own == groups[1]) and 2 or 1, #groups do
        local group = groups[g]
        sort(group, by_stable_price)
        for _, c in ipairs(group) do
            plan[#plan + 1] = c.id
        end
    end
    return plan
end

return M
