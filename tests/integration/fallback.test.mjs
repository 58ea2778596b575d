// SPDX-License-Identifier: MIT
// Fallback and routing: provider failover on 5xx / 429 / timeout / reset / HTML / garbage, models[] fallback,
// provider.order / allow_fallbacks / only / ignore / sort, variants.
// Scenario models use the "price" policy with the failing endpoint cheapest, so it is deterministically tried first
// (each scenario has its own upstream model names, so the mock's per-model counters belong to one test).
import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import { startEnv, gwTest, ep } from './harness.mjs';

let env;
const test = gwTest(() => env);
const msgs = [{ role: 'user', content: 'fallback please' }];
const CHEAP = ['0.000001', '0.000001'];
const DEAR = ['0.000002', '0.000002'];
const pair = (failing, good) => ({ policy: 'price', endpoints: [ep('up1', failing, ...CHEAP), ep('up2', good, ...DEAR)] });

describe('fallback and routing', () => {
  before(async () => {
    env = await startEnv({
      models: {
        'test/fallback': pair('fail-500', 'echo'),
        'test/fb429': pair('fail-429', 'echo+fb429'),
        'test/fb503': pair('fail-503', 'echo+fb503'),
        'test/fbhang': pair('hang', 'echo+fbhang'),
        'test/fbhangs': pair('hang+s', 'echo+fbhangs'),
        'test/fbdelay': pair('delay-3000', 'echo+fbdelay'),
        'test/fbreset': pair('reset', 'echo+fbreset'),
        'test/fbhtml': pair('html-502', 'echo+fbhtml'),
        'test/fbgarbage': pair('garbage', 'echo+fbgarbage'),
        'test/garbageonly': { endpoints: [ep('up1', 'garbage+only')] },
        'test/m-a': { endpoints: [ep('up1', 'fail-500+ma')] },
        'test/m-b': { endpoints: [ep('up2', 'echo+mb')] },
        'test/m-c': { endpoints: [ep('up2', 'fail-503+mc')] },
        'test/two': { endpoints: [ep('up1', 'echo+t1', ...CHEAP), ep('up2', 'echo+t2', ...CHEAP)] },
        'test/ordfail': { endpoints: [ep('up1', 'fail-500+of', ...CHEAP), ep('up2', 'echo+of', ...CHEAP)] },
        'test/ordfb': { endpoints: [ep('up1', 'fail-500+ofb', ...CHEAP), ep('up2', 'echo+ofb', ...CHEAP)] },
        'test/pricey': {
          endpoints: [ep('up1', 'echo+expensive', '0.000005', '0.000005'), ep('up2', 'echo+cheap', '0.000001', '0.000001')],
        },
        'test/lb': { endpoints: [ep('up1', 'echo+lb1', '0.000001', '0.000001'), ep('up2', 'echo+lb3', '0.000003', '0.000003')] },
      },
    });
  });
  after(async () => {
    await env?.kill();
  });

  const ok = async (body, provider, upstreamCounts = {}) => {
    const r = await env.post('/v1/chat/completions', { messages: msgs, ...body });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.choices[0].message.content, 'fallback please');
    if (provider) assert.equal(r.json.provider, provider, r.text);
    for (const [m, n] of Object.entries(upstreamCounts)) assert.equal(await env.mockCount(m), n, `mock requests for ${m}`);
    return r;
  };

  test('500 on the first endpoint -> served by up2; mock saw 1 request for fail-500', async () => {
    const r = await ok({ model: 'test/fallback' }, 'up2', { 'fail-500': 1, echo: 1 });
    assert.equal(r.json.model, 'test/fallback');
  });

  test('an endpoint that just failed is tried last (stable endpoints first)', async () => {
    await ok({ model: 'test/fallback' }, 'up2', { 'fail-500': 1, echo: 2 });
  });

  test('429 with Retry-After -> falls back', async () => {
    const t0 = Date.now();
    await ok({ model: 'test/fb429' }, 'up2', { 'fail-429': 1, 'echo+fb429': 1 });
    assert.ok(Date.now() - t0 < 8000);
  });

  test('503 -> falls back', async () => {
    await ok({ model: 'test/fb503' }, 'up2', { 'fail-503': 1, 'echo+fb503': 1 });
  });

  test('hang past first_byte_ms (1500) -> falls back', async () => {
    const t0 = Date.now();
    await ok({ model: 'test/fbhang' }, 'up2', { hang: 1, 'echo+fbhang': 1 });
    assert.ok(Date.now() - t0 < 9000, 'timeout fallback within a generous bound');
  });

  test('slow first byte (delay-3000 > first_byte_ms) -> falls back', async () => {
    await ok({ model: 'test/fbdelay' }, 'up2', { 'delay-3000': 1, 'echo+fbdelay': 1 });
  });

  test('hang, streaming -> falls back, stream from up2', async () => {
    const r = await env.chatStream('test/fbhangs', 'stream me');
    assert.equal(await env.mockCount('hang+s'), 1, 'the hanging endpoint was tried first');
    assert.equal(r.status, 200, r.raw);
    assert.equal(r.chunks.map((c) => c.choices?.[0]?.delta?.content ?? '').join(''), 'stream me');
    assert.ok(r.chunks.every((c) => c.provider === undefined || c.provider === 'up2'), r.raw);
    assert.ok(!r.chunks.some((c) => c.error), 'no error chunk');
  });

  test('connection reset before the response -> falls back', async () => {
    await ok({ model: 'test/fbreset' }, 'up2', { 'echo+fbreset': 1 });
    // one retry on the same endpoint is allowed (a dead reused connection looks the same as a reset)
    const n = await env.mockCount('reset');
    assert.ok(n >= 1 && n <= 2, `reset endpoint tried ${n} times`);
  });

  test('HTML 502 body -> falls back', async () => {
    await ok({ model: 'test/fbhtml' }, 'up2', { 'html-502': 1, 'echo+fbhtml': 1 });
  });

  test('garbage 200 body -> falls back', async () => {
    await ok({ model: 'test/fbgarbage' }, 'up2', { garbage: 1, 'echo+fbgarbage': 1 });
  });

  test('garbage 200 body and no endpoint left -> 502', async () => {
    const r = await env.post('/v1/chat/completions', { model: 'test/garbageonly', messages: msgs });
    assert.equal(r.status, 502, r.text);
    assert.equal(r.json.error.code, 502);
  });

  test('models:[a,b] where a fails -> response model is b', async () => {
    const r = await ok({ model: 'test/m-a', models: ['test/m-a', 'test/m-b'] }, 'up2');
    assert.equal(r.json.model, 'test/m-b');
    assert.equal(await env.mockCount('fail-500+ma'), 1);
  });

  test('models:[a,b] without model -> b', async () => {
    const r = await ok({ models: ['test/m-a', 'test/m-b'] }, 'up2');
    assert.equal(r.json.model, 'test/m-b');
  });

  test('models:[a,b] stream -> chunks name model b', async () => {
    const r = await env.chatStream('test/m-a', 'fallback please', { models: ['test/m-a', 'test/m-b'] });
    assert.equal(r.status, 200, r.raw);
    assert.ok(r.chunks.length > 0);
    for (const c of r.chunks) assert.equal(c.model, 'test/m-b');
  });

  test('models:[a,c] all fail -> the last model\'s error (503)', async () => {
    const r = await env.post('/v1/chat/completions', { model: 'test/m-a', models: ['test/m-a', 'test/m-c'], messages: msgs });
    assert.equal(r.status, 503, r.text);
    assert.equal(r.json.error.code, 503);
  });

  test('provider.order [up2, up1] honoured', async () => {
    for (let i = 0; i < 3; i++) await ok({ model: 'test/two', provider: { order: ['up2', 'up1'] } }, 'up2');
    assert.equal(await env.mockCount('echo+t2'), 3);
    assert.equal(await env.mockCount('echo+t1'), 0);
  });

  test('provider.order [up1] + allow_fallbacks:false with failing up1 -> error, up2 never called', async () => {
    const r = await env.post('/v1/chat/completions', {
      model: 'test/ordfail',
      messages: msgs,
      provider: { order: ['up1'], allow_fallbacks: false },
    });
    assert.ok(r.status >= 500, `expected an error, got ${r.status}: ${r.text}`);
    assert.equal(r.json.error.code, r.status);
    assert.equal(await env.mockCount('fail-500+of'), 1);
    assert.equal(await env.mockCount('echo+of'), 0, 'unlisted provider must never receive a request');
  });

  test('provider.order [up1] with fallbacks allowed -> falls back to up2', async () => {
    await ok({ model: 'test/ordfb', provider: { order: ['up1'] } }, 'up2', { 'fail-500+ofb': 1, 'echo+ofb': 1 });
  });

  test('provider.ignore [up1] -> up2 only', async () => {
    for (let i = 0; i < 3; i++) await ok({ model: 'test/two', provider: { ignore: ['up1'] } }, 'up2');
    assert.equal(await env.mockCount('echo+t1'), 0);
  });

  test('provider.only [up1] -> up1 only', async () => {
    for (let i = 0; i < 3; i++) await ok({ model: 'test/two', provider: { only: ['up1'] } }, 'up1');
  });

  test('provider.sort:"price" picks the cheapest', async () => {
    for (let i = 0; i < 4; i++) await ok({ model: 'test/pricey', provider: { sort: 'price' } }, 'up2');
    assert.equal(await env.mockCount('echo+expensive'), 0);
  });

  test('provider.sort object form {by:"price"}', async () => {
    await ok({ model: 'test/pricey', provider: { sort: { by: 'price' } } }, 'up2');
  });

  test('variant :floor accepted and sorts by price', async () => {
    const r = await ok({ model: 'test/pricey:floor' }, 'up2');
    assert.match(r.json.model, /^test\/pricey/);
    await ok({ model: 'test/echo:floor' }, 'up1');
  });

  test('variant :nitro accepted', async () => {
    await ok({ model: 'test/echo:nitro' }, 'up1');
  });

  test('default policy: cheaper endpoint first far more often (1/price^2 weighting)', async () => {
    for (let i = 0; i < 40; i++) await ok({ model: 'test/lb' });
    const a = await env.mockCount('echo+lb1');
    const b = await env.mockCount('echo+lb3');
    assert.equal(a + b, 40);
    assert.ok(a > b * 2, `cheap endpoint chosen ${a}x, 3x pricier ${b}x (expected about 9:1)`);
  });

  test('gateway exits 0 on SIGTERM', async () => {
    await env.stop();
  });
});
