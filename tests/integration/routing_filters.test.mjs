// SPDX-License-Identifier: MIT
// OpenRouter's data and performance filters (issue #10 item 4): provider.data_collection "deny", zdr,
// enforce_distillable_text and quantizations as hard filters over the catalog's endpoint fields (404 with the
// availability code and excluded_by when nothing is left); preferred_max_latency / preferred_min_throughput as soft
// reordering from the live stats; unknown ids in models[] skipped unless none resolves; the endpoint fields in the
// PublicEndpoint view and their validation in the config.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import { startEnv, gwTest, ep, assertError, run, GATEWAY_BIN } from './harness.mjs';

let env;
const test = gwTest(() => env);
const msgs = [{ role: 'user', content: 'hello there' }];
const chat = (model, provider, extra = {}) => env.post('/v1/chat/completions', { model, messages: msgs, provider, ...extra });
const availability = (e) => e.metadata?.availability ?? e.availability;

describe('routing filters', () => {
  before(async () => {
    env = await startEnv({
      models: {
        // up1 is cheaper: a price sort puts it first unless a filter removes it
        'test/data': {
          endpoints: [
            ep('up1', 'echo+collects', '0.000001', '0.000001', { quantization: 'fp8' }),
            ep('up2', 'echo+private', '0.000002', '0.000002', {
              data_collection: 'deny',
              zdr: true,
              distillable: true,
              quantization: 'bf16',
            }),
          ],
        },
        'test/collects': { endpoints: [ep('up1', 'echo+only-collects', '0.000001', '0.000001', { quantization: 'fp8' })] },
        'test/unstated': { endpoints: [ep('up1', 'echo+unstated')] },
        'test/perf': {
          endpoints: [ep('up1', 'delay-700+slow-250+echo', '0.000001', '0.000001'), ep('up2', 'echo+fast', '0.000002', '0.000002')],
        },
      },
    });
  });
  after(async () => {
    await env?.kill();
  });

  test('without filters the cheaper, collecting endpoint serves', async () => {
    const r = await chat('test/data', { sort: 'price' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.provider, 'up1');
  });

  test('data_collection:"deny" keeps only endpoints declared deny', async () => {
    const r = await chat('test/data', { sort: 'price', data_collection: 'deny' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.provider, 'up2');
    assert.equal((await chat('test/data', { sort: 'price', data_collection: 'allow' })).json.provider, 'up1');
  });

  test('zdr:true keeps only zero-data-retention endpoints', async () => {
    const r = await chat('test/data', { sort: 'price', zdr: true });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.provider, 'up2');
  });

  test('enforce_distillable_text:true keeps only distillable endpoints', async () => {
    const r = await chat('test/data', { sort: 'price', enforce_distillable_text: true });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.provider, 'up2');
  });

  test('quantizations keep the listed ones; an endpoint that states none is "unknown"', async () => {
    assert.equal((await chat('test/data', { sort: 'price', quantizations: ['bf16'] })).json.provider, 'up2');
    assert.equal((await chat('test/data', { sort: 'price', quantizations: ['fp8', 'bf16'] })).json.provider, 'up1');
    assert.equal((await chat('test/unstated', { quantizations: ['unknown'] })).status, 200);
    const e = assertError(await chat('test/unstated', { quantizations: ['fp8'] }), 404, { type: 'constraint_filtered' });
    assert.deepEqual(availability(e).excluded_by, ['quantization']);
  });

  test('data policy removing everything -> 404 privacy_restricted with excluded_by', async () => {
    let e = assertError(await chat('test/collects', { data_collection: 'deny' }), 404, { type: 'privacy_restricted' });
    assert.deepEqual(availability(e).excluded_by, ['data_policy:training']);
    assert.deepEqual(availability(e).requested_models, ['test/collects']);
    assert.equal(availability(e).retryable, false);
    e = assertError(await chat('test/collects', { zdr: true }), 404, { type: 'privacy_restricted' });
    assert.deepEqual(availability(e).excluded_by, ['data_policy:zdr']);
    e = assertError(await chat('test/collects', { enforce_distillable_text: true }), 404, { type: 'privacy_restricted' });
    assert.deepEqual(availability(e).excluded_by, ['data_policy:distillable']);
  });

  test('filters of two families -> 404 no_endpoints naming both', async () => {
    const e = assertError(await chat('test/data', { zdr: true, quantizations: ['fp8'] }), 404, { type: 'no_endpoints' });
    assert.deepEqual(availability(e).excluded_by.sort(), ['data_policy:zdr', 'quantization']);
  });

  test('no upstream call for a filtered endpoint', async () => {
    const before = await env.mockCount('echo+collects');
    for (let i = 0; i < 3; ++i) assert.equal((await chat('test/data', { sort: 'price', zdr: true })).json.provider, 'up2');
    assert.equal(await env.mockCount('echo+collects'), before);
  });

  test('invalid filter values -> 400 naming the field', async () => {
    assertError(await chat('test/data', { quantizations: ['fp9'] }), 400, { mentions: 'provider.quantizations[0]' });
    assertError(await chat('test/data', { zdr: 'yes' }), 400, { mentions: 'provider.zdr' });
    assertError(await chat('test/data', { data_collection: 'never' }), 400, { mentions: 'provider.data_collection' });
    assertError(await chat('test/data', { preferred_max_latency: -1 }), 400, { mentions: 'provider.preferred_max_latency' });
    assertError(await chat('test/data', { preferred_min_throughput: { p42: 1 } }), 400, { mentions: 'p42' });
  });

  test('max_price members as strings or numbers', async () => {
    assert.equal((await chat('test/data', { max_price: { prompt: '1.5' } })).json.provider, 'up1');
    assert.equal((await chat('test/data', { max_price: { prompt: 1.5 } })).json.provider, 'up1');
    assertError(await chat('test/data', { max_price: { prompt: '0.5' } }), 404, { type: 'constraint_filtered' });
  });

  test('preferred_max_latency / preferred_min_throughput move slow endpoints to the end, never remove them', async () => {
    // measure both endpoints (streams: TTFT and throughput); up1 answers after 700 ms, 250 ms per event
    for (const p of ['up1', 'up2'])
      for (let i = 0; i < 2; ++i) {
        const r = await env.sse('/v1/chat/completions', {
          model: 'test/perf',
          stream: true,
          messages: [{ role: 'user', content: 'one two three four five six' }],
          provider: { only: [p] },
        });
        assert.equal(r.status, 200);
      }
    // the price sort alone picks up1 (cheaper)
    assert.equal((await chat('test/perf', { sort: 'price' })).json.provider, 'up1');
    assert.equal((await chat('test/perf', { sort: 'price', preferred_max_latency: 0.35 })).json.provider, 'up2');
    assert.equal((await chat('test/perf', { sort: 'price', preferred_max_latency: { p50: 0.35, p90: 5 } })).json.provider, 'up2');
    assert.equal((await chat('test/perf', { sort: 'price', preferred_max_latency: 30 })).json.provider, 'up1');
    assert.equal((await chat('test/perf', { sort: 'price', preferred_min_throughput: { p50: 100 } })).json.provider, 'up2');
    // soft: when every endpoint misses, the order stays and the request is served
    const r = await chat('test/perf', { sort: 'price', only: ['up1'], preferred_max_latency: 0.001 });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.provider, 'up1');
  });

  test('unknown ids in models[] are skipped; all unknown -> 400 model_not_found listing every id', async () => {
    const r = await env.post('/v1/chat/completions', { models: ['nope/one', 'test/data', 'nope/two'], messages: msgs });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.model, 'test/data');
    const r2 = await env.post('/v1/chat/completions', { model: 'nope/primary', models: ['test/collects'], messages: msgs });
    assert.equal(r2.status, 200, r2.text);
    assert.equal(r2.json.model, 'test/collects');
    const e = assertError(
      await env.post('/v1/chat/completions', { model: 'nope/a', models: ['nope/b'], messages: msgs }),
      400,
      { type: 'model_not_found' },
    );
    assert.deepEqual(availability(e).requested_models, ['nope/a', 'nope/b']);
    assert.match(env.log(), /skipping unknown model id "nope\/one"/);
  });

  test('PublicEndpoint shows quantization (null when not stated)', async () => {
    const r = await env.get('/v1/models/test/data/endpoints');
    assert.equal(r.status, 200, r.text);
    const q = Object.fromEntries(r.json.data.endpoints.map((e) => [e.provider_name, e.quantization]));
    assert.deepEqual(q, { up1: 'fp8', up2: 'bf16' });
    const u = await env.get('/v1/models/test/unstated/endpoints');
    assert.equal(u.json.data.endpoints[0].quantization, null);
  });

  test('--check-config names the endpoint field on bad data-policy values', async () => {
    const base = {
      listeners: [{ address: '127.0.0.1', port: 1 }],
      providers: [{ name: 'p', plugin: 'openai', base_url: 'http://127.0.0.1:9/v1', api_key: 'k' }],
    };
    const cases = [
      [{ data_collection: "sometimes" }, /models\["a\/b"\]\.endpoints\[0\]\.data_collection/],
      [{ zdr: 'yes' }, /endpoints\[0\]\.zdr/],
      [{ distillable: 1 }, /endpoints\[0\]\.distillable/],
      [{ quantization: 'fp9' }, /endpoints\[0\]\.quantization/],
    ];
    for (const [extra, re] of cases) {
      const file = path.join(env.dir, 'bad-data.json');
      const conf = { ...base, models: { 'a/b': { endpoints: [{ provider: 'p', model: 'm', ...extra }] } } };
      fs.writeFileSync(file, JSON.stringify(conf));
      const b = await run(GATEWAY_BIN, ['--check-config', file]);
      assert.equal(b.code, 1, b.stdout + b.stderr);
      assert.match(b.stdout + b.stderr, re);
    }
    const good = path.join(env.dir, 'good-data.json');
    const ok = { data_collection: 'deny', zdr: true, distillable: false, quantization: 'int4' };
    fs.writeFileSync(good, JSON.stringify({ ...base, models: { 'a/b': { endpoints: [{ provider: 'p', model: 'm', ...ok }] } } }));
    const g = await run(GATEWAY_BIN, ['--check-config', good]);
    assert.equal(g.code, 0, g.stdout + g.stderr);
  });
});
