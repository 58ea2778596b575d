// SPDX-License-Identifier: MIT
// How the exchange walks a policy's plan, with custom Lua policies loaded from the config: after a failure ("next") an
// endpoint that already failed is not tried again even if the plan lists it twice, and the requested model's policy
// decides the order even when only its models[] fallbacks have endpoints left.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import { startEnv, gwTest, ep } from './harness.mjs';

let env, dir;
const test = gwTest(() => env);

const REPEAT = `local M = { NAME = "repeat", VERSION = "1.0.0" }
function M.select(req, candidates)
    local plan = {}
    for _, c in ipairs(candidates) do plan[#plan + 1] = c.id end
    for _, c in ipairs(candidates) do plan[#plan + 1] = c.id end
    return plan
end
return M
`;
const REVERSE = `local M = { NAME = "reverse", VERSION = "1.0.0" }
function M.select(req, candidates)
    local plan = {}
    for i = #candidates, 1, -1 do plan[#plan + 1] = candidates[i].id end
    return plan
end
return M
`;

describe('policy plan walking', () => {
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmgate-plan-'));
    fs.writeFileSync(path.join(dir, 'repeat.lua'), REPEAT);
    fs.writeFileSync(path.join(dir, 'reverse.lua'), REVERSE);
    env = await startEnv({
      models: {
        'test/twice': { policy: 'repeat', endpoints: [ep('up1', 'fail-500+plan-a'), ep('up2', 'fail-503+plan-b')] },
        'test/primary': { policy: 'reverse', endpoints: [ep('up1', 'echo+primary')] },
        'test/pa': { endpoints: [ep('up1', 'words-1+dear-a', '0.000005', '0.000005')] },
        'test/pb': { endpoints: [ep('up2', 'words-2+cheap-b', '0.000001', '0.000001')] },
        'test/fallback': {
          policy: 'price',
          endpoints: [ep('up2', 'words-1+cheap', '0.000001', '0.000001'), ep('up2', 'words-2+dear', '0.000005', '0.000005')],
        },
      },
      extra: { policies: { repeat: path.join(dir, 'repeat.lua'), reverse: path.join(dir, 'reverse.lua') } },
    });
  });
  after(async () => {
    await env?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a plan listing endpoints twice: each failed endpoint is tried once, then the request fails', async () => {
    await env.mockReset();
    const r = await env.chat('test/twice');
    assert.ok(r.status === 502 || r.status === 503, r.text);
    assert.equal(r.json.error.metadata.attempts.length, 2, JSON.stringify(r.json.error.metadata.attempts));
    assert.equal(await env.mockCount('fail-500+plan-a'), 1);
    assert.equal(await env.mockCount('fail-503+plan-b'), 1);
  });

  test("the requested model's policy orders the fallback model's endpoints when its own are filtered out", async () => {
    // up1 is ignored, so only test/fallback's endpoints remain; "reverse" (test/primary's policy) puts the dear one first,
    // where test/fallback's own "price" policy would have picked the cheap one
    const r = await env.chat('test/primary', 'hello there', { models: ['test/fallback'], provider: { ignore: ['up1'] } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.model, 'test/fallback');
    assert.equal(r.json.choices[0].message.content, 'w1 w2');
  });

  test('provider.sort with partition "none" (and the deprecated route:"sort") sorts across models[]', async () => {
    const body = (extra) => ({ models: ['test/pb'], ...extra });
    const byModel = await env.chat('test/pa', 'x', body({ provider: { sort: 'price' } }));
    assert.equal(byModel.json.model, 'test/pa', byModel.text); // partition "model" (default): the requested model first
    const global = await env.chat('test/pa', 'x', body({ provider: { sort: { by: 'price', partition: 'none' } } }));
    assert.equal(global.json.model, 'test/pb', global.text); // one global price order: the cheaper model first
    const alias = await env.chat('test/pa', 'x', body({ route: 'sort', provider: { sort: 'price' } }));
    assert.equal(alias.json.model, 'test/pb', alias.text);
    const bad = await env.chat('test/pa', 'x', body({ provider: { sort: { by: 'price', partition: 'sideways' } } }));
    assert.equal(bad.status, 400);
    assert.match(bad.json.error.message, /provider\.sort\.partition/);
  });
});
