// SPDX-License-Identifier: MIT
// Sticky sessions (issue #10 item 2): session_id (body) or x-session-id / x-claude-code-session-id (headers) keep a
// session on the endpoint that served it across requests; an endpoint that fails and turns unhealthy releases the
// session to the one that answered; sessions are per calling key and model; policies see req.session_id and
// req.session_endpoint and may override the binding.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import { startEnv, gwTest, ep, freePort, waitFor } from './harness.mjs';

let env, dir;
const test = gwTest(() => env);
const msgs = [{ role: 'user', content: 'hi' }];

// removes the bound endpoint from the plan: a policy overriding stickiness
const DEFLECT = `local M = { NAME = "deflect", VERSION = "1.0.0" }
function M.select(req, candidates)
    local plan = {}
    for _, c in ipairs(candidates) do
        if c.id ~= req.session_endpoint then plan[#plan + 1] = c.id end
    end
    return plan
end
return M
`;

async function providers(n, body = {}, headers = {}) {
  const seen = [];
  for (let i = 0; i < n; ++i) {
    const r = await env.post('/v1/chat/completions', { model: 'test/pair', messages: msgs, ...body }, headers);
    assert.equal(r.status, 200, r.text);
    seen.push(r.json.provider);
  }
  return seen;
}

describe('sticky sessions', () => {
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmgate-sticky-'));
    fs.writeFileSync(path.join(dir, 'deflect.lua'), DEFLECT);
    env = await startEnv({
      // equal prices: the default policy spreads requests over both endpoints at random
      models: {
        'test/pair': { endpoints: [ep('up1', 'echo+s1'), ep('up2', 'echo+s2')] },
        'test/deflect': { policy: 'deflect', endpoints: [ep('up1', 'echo+d1'), ep('up2', 'echo+d2')] },
      },
      routing: { unhealthy_after_failures: 1, unhealthy_cooldown_ms: 600000 },
      extra: { policies: { deflect: path.join(dir, 'deflect.lua') } },
    });
  });
  after(async () => {
    await env?.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('without a session the default policy uses both endpoints', async () => {
    const seen = new Set(await providers(30));
    assert.deepEqual([...seen].sort(), ['up1', 'up2']);
  });

  test('session_id keeps 20 requests (plain and streamed) on one endpoint', async () => {
    const seen = await providers(20, { session_id: 'sess-body' });
    assert.equal(new Set(seen).size, 1, seen.join(','));
    const s = await env.sse('/v1/chat/completions', { model: 'test/pair', messages: msgs, stream: true, session_id: 'sess-body' });
    assert.equal(s.status, 200);
    assert.equal(s.chunks.find((c) => c.provider)?.provider, seen[0]);
  });

  test('x-session-id and x-claude-code-session-id headers are sticky too', async () => {
    for (const h of ['x-session-id', 'x-claude-code-session-id']) {
      const seen = await providers(20, {}, { [h]: `sess-${h}` });
      assert.equal(new Set(seen).size, 1, `${h}: ${seen.join(',')}`);
    }
  });

  test('many sessions spread over both endpoints (each one sticky)', async () => {
    const first = new Set();
    for (let i = 0; i < 24; ++i) {
      const [p, q] = await providers(2, { session_id: `spread-${i}` });
      assert.equal(p, q);
      first.add(p);
    }
    assert.deepEqual([...first].sort(), ['up1', 'up2']);
  });

  test('a policy sees req.session_endpoint and may override it', async () => {
    const seen = [];
    for (let i = 0; i < 4; ++i) {
      const r = await env.post('/v1/chat/completions', { model: 'test/deflect', messages: msgs, session_id: 'deflected' });
      assert.equal(r.status, 200, r.text);
      seen.push(r.json.provider);
    }
    // the first goes to the first candidate; each later one avoids the endpoint the session is bound to
    assert.deepEqual(seen, ['up1', 'up2', 'up1', 'up2']);
  });

  test('the bound endpoint failing and turning unhealthy releases the session to the endpoint that answered', async () => {
    const [bound] = await providers(1, { session_id: 'sess-release' });
    const other = bound === 'up1' ? 'up2' : 'up1';
    const conf = env.currentConfig();
    const dead = await freePort(); // nothing listens there: connection refused
    conf.providers.find((p) => p.name === bound).base_url = `http://127.0.0.1:${dead}/v1`;
    conf.models['test/reloaded'] = { endpoints: [ep('up1', 'echo')] };
    env.writeConfig(conf);
    env.signal('SIGHUP');
    assert.ok(await waitFor(async () => (await env.get('/v1/models')).json.data.some((m) => m.id === 'test/reloaded'), 5000, 100));
    // the first request still tries the bound endpoint, fails over and is answered by the other
    const r = await env.post(
      '/v1/chat/completions',
      { model: 'test/pair', messages: msgs, session_id: 'sess-release' },
      { 'x-openrouter-metadata': 'enabled' },
    );
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.provider, other);
    const trace = r.json.openrouter_metadata;
    assert.deepEqual(
      trace.attempts.map((a) => a.provider),
      [bound, other],
      'the bound endpoint was tried first',
    );
    assert.equal(trace.llmgate.session.sticky, true);
    const seen = await providers(20, { session_id: 'sess-release' });
    assert.deepEqual(new Set(seen), new Set([other]));
    // the bound endpoint recovers (config restored), but the session stays where it is now
    conf.providers.find((p) => p.name === bound).base_url = `${env.mockBase}/v1`;
    delete conf.models['test/reloaded'];
    env.writeConfig(conf);
    env.signal('SIGHUP');
    assert.ok(await waitFor(async () => !(await env.get('/v1/models')).json.data.some((m) => m.id === 'test/reloaded'), 5000, 100));
    assert.deepEqual(new Set(await providers(10, { session_id: 'sess-release' })), new Set([other]));
  });
});
