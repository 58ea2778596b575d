// SPDX-License-Identifier: MIT
// Per-provider concurrency limit and bounded queue: never more than max_concurrent requests at the upstream;
// overflow gets 503 (queue full / queue timeout) or falls back to another provider.
import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import { startEnv, gwTest, ep, waitFor } from './harness.mjs';

let env;
const test = gwTest(() => env);
const body = (model) => ({ model, messages: [{ role: 'user', content: 'queue me' }] });

describe('concurrency limit and queue', () => {
  before(async () => {
    env = await startEnv({
      providers: [{ name: 'lim', max_concurrent: 2, queue: { size: 1, timeout_ms: 500 } }],
      models: {
        'test/limited': { endpoints: [ep('lim', 'delay-800')] },
        'test/parallel': { endpoints: [ep('up2', 'delay-800+par')] },
        'test/limited-fb': {
          policy: 'price',
          endpoints: [ep('lim', 'delay-800+fb', '0.000001', '0.000001'), ep('up2', 'echo+limfb', '0.000002', '0.000002')],
        },
      },
    });
  });
  after(async () => {
    await env?.kill();
  });

  test('cold start, no limit: 4 concurrent slow requests all reach the upstream at once (no per-worker serialisation)', async () => {
    // First test of the file on purpose: no upstream connection exists yet (cold connection cache).
    // 4 client connections on 2 workers: at least two share a worker, so this catches an upstream client that holds a
    // second transfer to the same host until the first one's response headers arrive.
    await env.mockReset();
    const pending = Array.from({ length: 4 }, () => env.post('/v1/chat/completions', body('test/parallel')));
    const all = await waitFor(async () => (await env.mockStats()).in_flight === 4, 700, 20);
    const st = await env.mockStats();
    const res = await Promise.all(pending);
    assert.ok(all, `only ${st.in_flight} of 4 requests reached the upstream within 700 ms (stats ${JSON.stringify(st)})`);
    for (const r of res) assert.equal(r.status, 200, r.text);
  });

  test('5 concurrent requests, max_concurrent 2, queue 1 -> at most 2 in flight upstream; overflow 503', async () => {
    await env.mockReset();
    const res = await Promise.all(Array.from({ length: 5 }, () => env.post('/v1/chat/completions', body('test/limited'))));
    const st = await env.mockStats();
    assert.ok(st.max_in_flight <= 2, `mock saw ${st.max_in_flight} concurrent requests`);
    const statuses = res.map((r) => r.status);
    const detail = res.map((r) => `${r.status} ${r.status === 200 ? '' : r.text}`).join('\n');
    const okCount = statuses.filter((s) => s === 200).length;
    assert.ok(okCount >= 2, `at least max_concurrent succeed:\n${detail}`);
    assert.ok(okCount < 5, `some requests must be refused:\n${detail}`);
    for (const r of res.filter((x) => x.status !== 200)) {
      assert.equal(r.status, 503, r.text);
      assert.equal(r.json.error.code, 503, r.text);
    }
    assert.ok((await env.mockCount('delay-800')) <= 3);
  });

  test('/health shows max_concurrent, in_flight and queued for the limited provider', async () => {
    const pending = Array.from({ length: 3 }, () => env.post('/v1/chat/completions', body('test/limited')));
    const seen = await waitFor(async () => {
      const h = (await env.get('/health')).json;
      const p = h.providers.find((x) => x.name === 'lim');
      return p && p.in_flight === 2 ? p : null;
    }, 1000, 20);
    await Promise.all(pending);
    assert.ok(seen, 'lim provider reported 2 in flight');
    assert.equal(seen.max_concurrent, 2);
    assert.equal(typeof seen.queued, 'number');
    assert.ok(seen.queued <= 1);
  });

  test('overflow falls back to another provider when the model has one', async () => {
    await env.mockReset();
    const res = await Promise.all(Array.from({ length: 5 }, () => env.post('/v1/chat/completions', body('test/limited-fb'))));
    for (const r of res) assert.equal(r.status, 200, r.text);
    const lim = await env.mockCount('delay-800+fb');
    const fb = await env.mockCount('echo+limfb');
    assert.ok(lim <= 3, `limited provider got ${lim} requests`);
    assert.ok(fb >= 2, `fallback provider served ${fb}`);
    assert.equal(res.filter((r) => r.json.provider === 'up2').length, fb);
  });

  test('gateway exits 0 on SIGTERM', async () => {
    await env.stop();
  });
});
