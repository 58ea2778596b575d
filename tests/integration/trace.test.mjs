// SPDX-License-Identifier: MIT
// The routing trace (issue #10 item 3): X-OpenRouter-Metadata: enabled adds openrouter_metadata (requested model and
// variant, strategy, policy, every catalog endpoint with the filter that removed it, the plan, every attempt with
// status, error type and latency) to whole bodies and to a stream's first chunk; debug.echo_upstream_body adds, per
// attempted provider, a first chunk with choices:[] and the upstream request body. Never any key.
import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import { startEnv, gwTest, ep } from './harness.mjs';

let env;
const test = gwTest(() => env);
const ON = { 'x-openrouter-metadata': 'enabled' };

describe('routing trace', () => {
  before(async () => {
    env = await startEnv({
      models: {
        // sort by price: up1/fail-503 first (cheapest), then up2/echo; the dear one is cut by max_price and the
        // ignored one by provider.ignore
        'test/traced': {
          endpoints: [
            ep('up1', 'fail-503+t1', '0.000001', '0.000001'),
            ep('up2', 'echo+t2', '0.000002', '0.000002'),
            ep('up2', 'echo+dear', '0.00005', '0.00005'),
            ep('ign', 'echo+ignored', '0.000001', '0.000001'),
          ],
        },
      },
      providers: [{ name: 'ign' }],
    });
  });
  after(async () => {
    await env?.kill();
  });

  const body = (extra = {}) => ({
    model: 'test/traced:floor',
    messages: [{ role: 'user', content: 'trace' }],
    provider: { max_price: { prompt: 10 }, ignore: ['ign'] },
    ...extra,
  });

  function checkTrace(m) {
    assert.equal(m.requested, 'test/traced:floor');
    assert.equal(m.strategy, 'direct');
    assert.equal(m.region, null);
    assert.equal(m.is_byok, false);
    assert.equal(m.attempt, 2);
    assert.equal(m.attempts.length, 2);
    assert.deepEqual(
      m.attempts.map((a) => [a.provider, a.model, a.status]),
      [
        ['up1', 'fail-503+t1', 503],
        ['up2', 'echo+t2', 200],
      ],
    );
    assert.equal(typeof m.attempts[0].error_type, 'string');
    assert.ok(m.attempts[0].latency_ms >= 0);
    assert.equal(m.endpoints.total, 2);
    assert.deepEqual(
      m.endpoints.available.map((e) => [e.provider, e.selected]),
      [
        ['up1', false],
        ['up2', true],
      ],
    );
    const why = Object.fromEntries(m.llmgate.candidates.map((c) => [c.upstream_model, c.filtered_by ?? 'eligible']));
    assert.deepEqual(why, { 'fail-503+t1': 'eligible', 'echo+t2': 'eligible', 'echo+dear': 'max_price', 'echo+ignored': 'allowed_providers' });
    assert.equal(m.llmgate.variant, 'floor');
    assert.equal(m.llmgate.sort, 'price');
    assert.equal(typeof m.llmgate.policy, 'string');
    assert.deepEqual(
      m.llmgate.plan.map((p) => p.provider),
      ['up1', 'up2'],
    );
    assert.match(m.summary, /up2 served test\/traced after 2 attempts/);
    assert.doesNotMatch(JSON.stringify(m), /k1|k2|key-ign|Bearer/);
  }

  test('off by default: no openrouter_metadata', async () => {
    const r = await env.post('/v1/chat/completions', body());
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.openrouter_metadata, undefined);
  });

  test('whole body: the trace of a filtered, failed-over request', async () => {
    const r = await env.post('/v1/chat/completions', body(), ON);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.provider, 'up2');
    assert.equal(r.json.choices[0].message.content, 'trace');
    checkTrace(r.json.openrouter_metadata);
  });

  test('errors carry it too: every endpoint filtered -> 404 with each verdict', async () => {
    const r = await env.post('/v1/chat/completions', body({ provider: { max_price: { prompt: 0.1 }, ignore: ['ign'] } }), ON);
    assert.equal(r.status, 404, r.text);
    const m = r.json.openrouter_metadata;
    assert.ok(m, r.text);
    assert.equal(m.endpoints.total, 0);
    assert.deepEqual(m.attempts, []);
    assert.deepEqual(
      m.llmgate.candidates.map((c) => c.filtered_by).sort(),
      ['allowed_providers', 'max_price', 'max_price', 'max_price'],
    );
  });

  test('X-OpenRouter-Experimental-Metadata works too', async () => {
    const r = await env.post('/v1/chat/completions', body(), { 'x-openrouter-experimental-metadata': 'enabled' });
    assert.ok(r.json.openrouter_metadata);
    const off = await env.post('/v1/chat/completions', body(), { 'x-openrouter-metadata': 'disabled' });
    assert.equal(off.json.openrouter_metadata, undefined);
  });

  test('stream: the first chunk carries it, before any content', async () => {
    const r = await env.sse('/v1/chat/completions', body({ stream: true }), ON);
    assert.equal(r.status, 200);
    const first = r.chunks[0];
    assert.deepEqual(first.choices, []);
    const m = first.openrouter_metadata;
    assert.ok(m, JSON.stringify(first));
    assert.equal(m.attempts.length, 2);
    assert.equal(m.attempts[1].provider, 'up2');
    assert.equal(r.chunks.filter((c) => c.openrouter_metadata).length, 1);
    assert.equal(
      r.chunks.map((c) => c.choices?.[0]?.delta?.content ?? '').join(''),
      'trace',
    );
  });

  test('debug.echo_upstream_body: one chunk per attempted provider with the upstream body, no keys', async () => {
    const r = await env.sse('/v1/chat/completions', body({ stream: true, debug: { echo_upstream_body: true } }));
    assert.equal(r.status, 200);
    const echoes = r.chunks.filter((c) => c.debug?.echo_upstream_body);
    assert.equal(echoes.length, 2, JSON.stringify(r.chunks.slice(0, 3)));
    assert.deepEqual(
      echoes.map((c) => c.debug.echo_upstream_body.model),
      ['fail-503+t1', 'echo+t2'],
    );
    for (const c of echoes) {
      assert.deepEqual(c.choices, []);
      const up = c.debug.echo_upstream_body;
      assert.equal(up.stream, true);
      assert.equal(up.messages[0].content, 'trace');
      assert.equal(up.provider, undefined, 'gateway-only fields are not sent upstream');
      assert.equal(up.debug, undefined);
    }
    assert.doesNotMatch(JSON.stringify(echoes), /k1|k2|Bearer|authorization/i);
    // echoes come before the content, and the text is whole
    const firstContent = r.chunks.findIndex((c) => c.choices?.[0]?.delta?.content);
    assert.ok(r.chunks.indexOf(echoes[1]) < firstContent);
    assert.equal(r.chunks.map((c) => c.choices?.[0]?.delta?.content ?? '').join(''), 'trace');
    // not on whole bodies
    const whole = await env.post('/v1/chat/completions', body({ debug: { echo_upstream_body: true } }));
    assert.equal(whole.status, 200);
    assert.equal(whole.json.debug, undefined);
  });
});
