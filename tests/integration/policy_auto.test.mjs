// SPDX-License-Identifier: MIT
// The auto router end to end: "llmgate/auto" (catalog "auto": {"models": [...]}, shipped policy policies/auto.lua)
// picks a model by the request itself — prompt length and tools — from the routes in its settings; the chosen model's
// endpoint serves, the response's `model` names it, streaming too; a failure of the chosen model falls over to the
// other auto models; config errors name their JSON path.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import { startEnv, gwTest, ep, run, GATEWAY_BIN, deltaText } from './harness.mjs';

let env;
const test = gwTest(() => env);

const TOOLS = [{ type: 'function', function: { name: 'get_time', description: 'time', parameters: { type: 'object', properties: {} } } }];

describe('auto router (llmgate/auto)', () => {
  before(async () => {
    env = await startEnv({
      models: {
        'small/fast': { endpoints: [ep('up1', 'words-1+small')] },
        'big/smart': { endpoints: [ep('up2', 'words-2+big')] },
        'tool/caller': { endpoints: [ep('up1', 'words-3+tool')] },
        'broken/one': { endpoints: [ep('up1', 'fail-500+broken')] },
        'llmgate/auto': { auto: { models: ['small/fast', 'big/smart', 'tool/caller'] } },
        'llmgate/auto-broken': { auto: { models: ['broken/one', 'big/smart'] } },
      },
      extra: {
        policies: {
          auto: {
            settings: {
              routes: [
                { tools: true, model: 'tool/caller' },
                { max_prompt_tokens: 2000, model: 'small/fast' },
                { min_prompt_tokens: 2001, model: 'big/smart' },
              ],
            },
          },
        },
      },
    });
  });
  after(async () => {
    await env?.stop();
  });

  test('a short prompt goes to the short-prompt route; the response names the model that served', async () => {
    await env.mockReset();
    const r = await env.chat('llmgate/auto', 'hello there');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.model, 'small/fast');
    assert.equal(r.json.choices[0].message.content, 'w1');
    assert.equal(await env.mockCount('words-1+small'), 1);
    assert.equal(await env.mockCount('words-2+big'), 0);
  });

  test('a long prompt (about 5000 tokens) goes to big/smart', async () => {
    await env.mockReset();
    const r = await env.chat('llmgate/auto', 'lorem ipsum '.repeat(1700));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.model, 'big/smart');
    assert.equal(r.json.choices[0].message.content, 'w1 w2');
    assert.equal(await env.mockCount('words-2+big'), 1);
  });

  test('tools present win over prompt length, also streamed', async () => {
    await env.mockReset();
    const r = await env.chat('llmgate/auto', 'hello', { tools: TOOLS });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.model, 'tool/caller');
    const s = await env.chatStream('llmgate/auto', 'hello', { tools: TOOLS });
    assert.equal(s.status, 200, s.text);
    assert.ok(s.chunks.length > 0, s.raw);
    for (const c of s.chunks) assert.equal(c.model, 'tool/caller', JSON.stringify(c));
    assert.equal(deltaText(s.chunks), 'w1 w2 w3');
    assert.equal(s.doneIndex, s.data.length - 1);
    assert.equal(await env.mockCount('words-3+tool'), 2);
  });

  test('the chosen model failing falls over to the next auto model', async () => {
    // a short prompt: its route's model (small/fast) is not in this auto model's list and no other route matches, so
    // the first listed model is chosen; it fails, the plan continues with big/smart
    await env.mockReset();
    const r = await env.chat('llmgate/auto-broken', 'hello');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.model, 'big/smart');
    assert.equal(await env.mockCount('fail-500+broken'), 1);
    assert.equal(await env.mockCount('words-2+big'), 1);
  });

  test('/models lists the auto model with a per-request price ("-1") and its listed models\' context', async () => {
    const r = await env.get('/v1/models');
    assert.equal(r.status, 200, r.text);
    const auto = r.json.data.find((m) => m.id === 'llmgate/auto');
    assert.ok(auto, JSON.stringify(r.json.data.map((m) => m.id)));
    assert.deepEqual(auto.pricing, { prompt: '-1', completion: '-1' });
    assert.ok(r.json.data.find((m) => m.id === 'small/fast'));
    const one = await env.get('/v1/models/llmgate/auto');
    assert.equal(one.status, 200, one.text);
    assert.equal(one.json.id, 'llmgate/auto');
  });

  test('config errors: unknown, nested-auto or repeated auto models, an empty list, endpoints beside auto, a typo in the routes', async () => {
    const conf = JSON.parse(fs.readFileSync(env.configPath, 'utf8'));
    const check = async (mutate) => {
      const c = structuredClone(conf);
      mutate(c);
      const file = path.join(path.dirname(env.configPath), `auto-${Math.random().toString(36).slice(2)}.json`);
      fs.writeFileSync(file, JSON.stringify(c));
      const res = await run(GATEWAY_BIN, ['--check-config', file]);
      return { code: res.code, out: res.stdout + res.stderr };
    };
    let r = await check((c) => (c.models['llmgate/auto'].auto.models[1] = 'no/such'));
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /models\["llmgate\/auto"\]\.auto\.models\[1\]: unknown model "no\/such"/);
    r = await check((c) => (c.models['llmgate/auto'].endpoints = [ep('up1', 'x')]));
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /models\["llmgate\/auto"\]\.endpoints: an auto model has no endpoints of its own/);
    r = await check((c) => (c.policies.auto.settings.routes[1] = { max_promt_tokens: 5, model: 'small/fast' }));
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /policies\.auto\.settings\.routes\[1\]\.max_promt_tokens: unknown setting \(did you mean "max_prompt_tokens"\?\)/);
    r = await check((c) => (c.models['llmgate/auto'].auto.models[0] = 'llmgate/auto-broken'));
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /auto\.models\[0\]: "llmgate\/auto-broken" is an auto model itself/);
    r = await check((c) => (c.models['llmgate/auto'].auto.models[2] = 'small/fast'));
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /auto\.models\[2\]: "small\/fast" is listed twice/);
    r = await check((c) => (c.models['llmgate/auto'].auto = { models: [] }));
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /models\["llmgate\/auto"\]\.auto\.models: expected a non-empty array of model ids/);
    r = await check((c) => (c.models['llmgate/auto'].auto.model = ['small/fast']));
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /auto\.model/);
    r = await check(() => {});
    assert.equal(r.code, 0, r.out);
  });
});
