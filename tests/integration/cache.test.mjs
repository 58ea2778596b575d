// SPDX-License-Identifier: MIT
// The response cache (issue 10 item 1, OpenRouter's contract in the reference §10), end to end with the real binary
// and the mock upstream: MISS then HIT (new id, zero usage, Source-Id, Age, remaining TTL, one upstream call), the
// TTL header's parsing and expiry, Clear, the calling key's scope (and a model's shared scope), stream replay with
// the same framing, the ledger row of a hit (cost 0, cached, source id), reordered keys miss while whitespace does
// not, only 200s are stored, the model-level "cache" setting and its precedence, bad header values, /metrics.
import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import { ep, gwTest, httpGet, httpPost, httpSse, sleep, startEnv, waitFor } from './harness.mjs';

const ADMIN = 'adm-' + Math.random().toString(36).slice(2) + '-secret';
const adminH = { authorization: `Bearer ${ADMIN}` };
const ON = { 'x-openrouter-cache': 'true' };

let env;
let keyA, keyB;
const test = gwTest(() => env);
const bearer = (k) => ({ authorization: `Bearer ${k.secret}` });
let seq = 0;
/** A prompt no other test uses, so every test starts with an empty cache for it. */
const fresh = (tag) => `cache test ${tag} ${++seq} ${Math.random().toString(36).slice(2)}`;

async function chat(key, model, content, headers = {}, extra = {}) {
  return httpPost(env.base, '/v1/chat/completions', { model, messages: [{ role: 'user', content }], ...extra }, { ...bearer(key), ...headers });
}
async function stream(key, model, content, headers = {}) {
  return httpSse(env.base, '/v1/chat/completions', { model, messages: [{ role: 'user', content }], stream: true }, { ...bearer(key), ...headers });
}
const status = (r) => r.headers.get('x-openrouter-cache-status');
const ttl = (r) => r.headers.get('x-openrouter-cache-ttl');

/** Sum of every llmgate_upstream_attempts_total sample. */
async function upstreamAttempts() {
  const m = (await httpGet(env.base, '/metrics')).text;
  let sum = 0;
  for (const line of m.split('\n')) if (line.startsWith('llmgate_upstream_attempts_total')) sum += Number(line.split(' ').pop());
  return sum;
}

async function createKey(name) {
  const r = await httpPost(env.base, '/api/admin/keys', { name }, adminH);
  assert.equal(r.status, 201, r.text);
  return { id: r.json.data.id, secret: r.json.key };
}

describe('response cache', () => {
  before(async () => {
    env = await startEnv({
      models: {
        'test/cfg': { cache: { enabled: true, ttl_s: 600 }, endpoints: [ep('up1', 'echo+cfg')] },
        'test/cfgoff': { cache: { enabled: false }, endpoints: [ep('up1', 'echo+cfgoff')] },
        'test/shared': { cache: { enabled: true, scope: 'shared' }, endpoints: [ep('up1', 'echo+shared')] },
        'test/fail': { endpoints: [ep('up1', 'fail-500+cache')] },
        'test/only400': { endpoints: [ep('up1', 'fail-400+cache')] },
      },
      mutate: (conf) => {
        conf.auth = { admin_key: ADMIN };
        conf.cache = { max_bytes: 8 * 1024 * 1024 };
      },
    });
    keyA = await createKey('cache-a');
    keyB = await createKey('cache-b');
  });
  after(async () => {
    if (env) await env.stop();
  });

  test('MISS then HIT: one upstream call, a new id, zero usage, Source-Id, Age and the remaining TTL', async () => {
    const content = fresh('hit');
    const before = await env.mockCount('echo');
    const r1 = await chat(keyA, 'test/echo', content, ON);
    assert.equal(r1.status, 200, r1.text);
    assert.equal(status(r1), 'MISS');
    assert.equal(ttl(r1), '300');
    assert.equal(r1.headers.get('x-openrouter-cache-age'), null);
    assert.ok(r1.json.usage.prompt_tokens > 0);
    const attemptsBefore = await upstreamAttempts();
    assert.ok(attemptsBefore >= 1, 'the miss counted as an upstream attempt');
    const r2 = await chat(keyA, 'test/echo', content, ON);
    assert.equal(r2.status, 200, r2.text);
    assert.equal(status(r2), 'HIT');
    assert.ok(Number(ttl(r2)) >= 290 && Number(ttl(r2)) <= 300, `remaining ttl ${ttl(r2)}`);
    assert.ok(Number(r2.headers.get('x-openrouter-cache-age')) >= 0);
    assert.equal(r2.headers.get('x-openrouter-cache-source-id'), r1.json.id);
    assert.notEqual(r2.json.id, r1.json.id);
    assert.match(r2.json.id, /^gen-/);
    assert.equal(r2.json.choices[0].message.content, r1.json.choices[0].message.content);
    assert.equal(r2.json.choices[0].message.content, content);
    assert.equal(r2.json.usage.prompt_tokens, 0);
    assert.equal(r2.json.usage.completion_tokens, 0);
    assert.equal(r2.json.usage.total_tokens, 0);
    assert.equal(r2.json.usage.cost, 0);
    assert.equal((await env.mockCount('echo')) - before, 1, 'the hit made no upstream call');
    assert.equal(await upstreamAttempts(), attemptsBefore, 'a hit is no upstream attempt (nor an endpoint success)');
  });

  test('without the header nothing is cached and no cache header is sent', async () => {
    const content = fresh('off');
    const before = await env.mockCount('echo');
    const r1 = await chat(keyA, 'test/echo', content);
    const r2 = await chat(keyA, 'test/echo', content);
    assert.equal(r1.status, 200);
    assert.equal(status(r1), null);
    assert.equal(status(r2), null);
    assert.equal((await env.mockCount('echo')) - before, 2);
  });

  test('the key is the normalised body: whitespace does not matter, key order does', async () => {
    const content = fresh('norm');
    const compact = JSON.stringify({ model: 'test/echo', messages: [{ role: 'user', content }] });
    const spaced = `{\n  "model" : "test/echo",\n\t"messages": [ { "role": "user", "content": ${JSON.stringify(content)} } ]\n}`;
    const reordered = JSON.stringify({ messages: [{ content, role: 'user' }], model: 'test/echo' });
    const h = { ...bearer(keyA), ...ON };
    const r1 = await httpPost(env.base, '/v1/chat/completions', compact, h);
    assert.equal(status(r1), 'MISS', r1.text);
    const r2 = await httpPost(env.base, '/v1/chat/completions', spaced, h);
    assert.equal(status(r2), 'HIT', 'insignificant whitespace is normalised away');
    const r3 = await httpPost(env.base, '/v1/chat/completions', reordered, h);
    assert.equal(r3.status, 200, r3.text);
    assert.equal(status(r3), 'MISS', 'reordered keys are another request');
    // whitespace inside a string is content
    const r4 = await chat(keyA, 'test/echo', content + ' ', ON);
    assert.equal(status(r4), 'MISS');
  });

  test('TTL header: the entry lives that long, then the next request misses', async () => {
    const content = fresh('ttl');
    const r1 = await chat(keyA, 'test/echo', content, { ...ON, 'x-openrouter-cache-ttl': '1' });
    assert.equal(status(r1), 'MISS');
    assert.equal(ttl(r1), '1');
    const r2 = await chat(keyA, 'test/echo', content, ON);
    assert.equal(status(r2), 'HIT');
    assert.ok(Number(ttl(r2)) <= 1, `remaining ${ttl(r2)}`);
    await sleep(1300);
    const r3 = await chat(keyA, 'test/echo', content, ON);
    assert.equal(status(r3), 'MISS', 'expired');
    assert.equal(ttl(r3), '300');
  });

  test('TTL header values: leading digits, clamped to 1..86400, junk ignored', async () => {
    const cases = [
      ['60abc', '60'],
      ['1.5', '1'],
      ['0', '1'],
      ['999999', '86400'],
      ['99999999999999999999999', '86400'],
      ['abc', '300'],
      ['', '300'],
      ['-5', '300'],
      [' 42', '42'],
    ];
    for (const [value, want] of cases) {
      const r = await chat(keyA, 'test/echo', fresh('ttlv'), { ...ON, 'x-openrouter-cache-ttl': value });
      assert.equal(r.status, 200, r.text);
      assert.equal(ttl(r), want, `X-OpenRouter-Cache-TTL: ${JSON.stringify(value)}`);
    }
  });

  test('bad X-OpenRouter-Cache values are ignored (not an opt-in, not an error)', async () => {
    for (const value of ['yes', '1', 'TRUEE', '']) {
      const r = await chat(keyA, 'test/echo', fresh('bad'), { 'x-openrouter-cache': value });
      assert.equal(r.status, 200, r.text);
      assert.equal(status(r), null, `X-OpenRouter-Cache: ${JSON.stringify(value)}`);
    }
    const r = await chat(keyA, 'test/echo', fresh('case'), { 'x-openrouter-cache': 'TRUE' });
    assert.equal(status(r), 'MISS', 'true is case-insensitive');
  });

  test('Clear drops the entry, calls the provider and stores anew', async () => {
    const content = fresh('clear');
    const before = await env.mockCount('echo');
    const r1 = await chat(keyA, 'test/echo', content, ON);
    assert.equal(status(r1), 'MISS');
    assert.equal(status(await chat(keyA, 'test/echo', content, ON)), 'HIT');
    const r3 = await chat(keyA, 'test/echo', content, { ...ON, 'x-openrouter-cache-clear': 'true' });
    assert.equal(status(r3), 'MISS');
    const r4 = await chat(keyA, 'test/echo', content, ON);
    assert.equal(status(r4), 'HIT');
    assert.equal(r4.headers.get('x-openrouter-cache-source-id'), r3.json.id, 'the entry stored by the clearing request');
    assert.equal((await env.mockCount('echo')) - before, 2);
  });

  test('scope: another key misses; a model with a shared scope serves every key', async () => {
    const content = fresh('scope');
    assert.equal(status(await chat(keyA, 'test/echo', content, ON)), 'MISS');
    assert.equal(status(await chat(keyA, 'test/echo', content, ON)), 'HIT');
    assert.equal(status(await chat(keyB, 'test/echo', content, ON)), 'MISS', 'key B never sees key A\'s answer');
    assert.equal(status(await chat(keyB, 'test/echo', content, ON)), 'HIT');
    const shared = fresh('shared');
    assert.equal(status(await chat(keyA, 'test/shared', shared)), 'MISS');
    assert.equal(status(await chat(keyB, 'test/shared', shared)), 'HIT');
  });

  test('stream replay: same text and SSE framing, a new id, zero usage; stream and non-stream cached apart', async () => {
    const content = fresh('stream');
    const before = await env.mockCount('echo');
    const s1 = await stream(keyA, 'test/echo', content, ON);
    assert.equal(s1.status, 200);
    assert.equal(status(s1), 'MISS');
    const s2 = await stream(keyA, 'test/echo', content, ON);
    assert.equal(s2.status, 200);
    assert.equal(status(s2), 'HIT');
    assert.match(s2.headers.get('content-type'), /text\/event-stream/);
    const text = (s) => s.chunks.map((c) => c.choices?.[0]?.delta?.content ?? '').join('');
    assert.equal(text(s1), content);
    assert.equal(text(s2), text(s1));
    assert.equal(s2.bad.length, 0);
    assert.equal(s2.doneIndex, s2.data.length - 1, '[DONE] last');
    assert.equal(s2.data.length, s1.data.length, 'same number of events');
    const shape = (s) => s.chunks.map((c) => `${c.object}|${c.choices.length}|${Object.keys(c.choices[0]?.delta ?? {}).sort()}|${c.choices[0]?.finish_reason ?? ''}`);
    assert.deepEqual(shape(s2), shape(s1), 'same framing, chunk by chunk');
    const ids2 = new Set(s2.chunks.map((c) => c.id));
    assert.equal(ids2.size, 1);
    assert.notEqual([...ids2][0], s1.chunks[0].id);
    assert.equal(s2.headers.get('x-openrouter-cache-source-id'), s1.chunks[0].id);
    const usage = s2.chunks.find((c) => c.usage)?.usage;
    assert.ok(usage, 'final usage chunk');
    assert.equal(usage.prompt_tokens, 0);
    assert.equal(usage.completion_tokens, 0);
    assert.equal(usage.cost, 0);
    assert.equal((await env.mockCount('echo')) - before, 1);
    const whole = await chat(keyA, 'test/echo', content, ON, {});
    assert.equal(status(whole), 'MISS', 'the non-stream request has its own entry');
  });

  test('the ledger row of a hit: cost 0, zero tokens, cached, the source generation id', async () => {
    const content = fresh('ledger');
    const r1 = await chat(keyA, 'test/echo', content, ON);
    const r2 = await chat(keyA, 'test/echo', content, ON);
    assert.equal(status(r2), 'HIT');
    let g;
    await waitFor(async () => (g = await httpGet(env.base, '/api/v1/generation?id=' + r2.json.id, bearer(keyA))).status === 200, 5000, 50);
    assert.equal(g.status, 200, g.text);
    const d = g.json.data;
    assert.equal(d.total_cost, 0);
    assert.equal(d.tokens_prompt, 0);
    assert.equal(d.tokens_completion, 0);
    assert.equal(d.cached, true);
    assert.equal(d.response_cache_source_id, r1.json.id);
    let g1;
    await waitFor(async () => (g1 = await httpGet(env.base, '/api/v1/generation?id=' + r1.json.id, bearer(keyA))).status === 200, 5000, 50);
    assert.equal(g1.json.data.cached, false);
    assert.ok(g1.json.data.total_cost > 0, 'the miss is charged');
  });

  test('only 200s are stored: upstream errors are called again every time', async () => {
    for (const [model, upstream, code] of [
      ['test/fail', 'fail-500+cache', 502],
      ['test/only400', 'fail-400+cache', 400],
    ]) {
      const content = fresh('err');
      const before = await env.mockCount(upstream);
      const r1 = await chat(keyA, model, content, ON);
      const r2 = await chat(keyA, model, content, ON);
      assert.ok(r1.status >= 400 && r2.status >= 400, `${r1.status} ${r2.status}`);
      assert.equal(r1.status, code, r1.text);
      assert.notEqual(status(r2), 'HIT');
      assert.equal((await env.mockCount(upstream)) - before, 2, model);
    }
  });

  test('model setting: on without the header (its TTL), off with header false; enabled:false beats the header', async () => {
    const content = fresh('cfg');
    const r1 = await chat(keyA, 'test/cfg', content);
    assert.equal(status(r1), 'MISS');
    assert.equal(ttl(r1), '600');
    assert.equal(status(await chat(keyA, 'test/cfg', content)), 'HIT');
    assert.equal(status(await chat(keyA, 'test/cfg', content, { 'x-openrouter-cache': 'false' })), null);
    const off = fresh('cfgoff');
    const before = await env.mockCount('echo+cfgoff');
    assert.equal(status(await chat(keyA, 'test/cfgoff', off, ON)), null);
    assert.equal(status(await chat(keyA, 'test/cfgoff', off, ON)), null);
    assert.equal((await env.mockCount('echo+cfgoff')) - before, 2);
  });

  test('other routes: Anthropic Messages and embeddings hit too, each route its own entry', async () => {
    const content = fresh('routes');
    const msg = { model: 'test/echo', max_tokens: 64, messages: [{ role: 'user', content }] };
    const h = { ...bearer(keyA), ...ON, 'anthropic-version': '2023-06-01' };
    const m1 = await httpPost(env.base, '/v1/messages', msg, h);
    assert.equal(m1.status, 200, m1.text);
    assert.equal(status(m1), 'MISS');
    const m2 = await httpPost(env.base, '/v1/messages', msg, h);
    assert.equal(status(m2), 'HIT');
    assert.equal(m2.json.type, 'message');
    assert.equal(m2.json.content[0].text, m1.json.content[0].text);
    assert.notEqual(m2.json.id, m1.json.id);
    assert.equal(m2.json.usage.input_tokens, 0);
    assert.equal(m2.json.usage.output_tokens, 0);
    const emb = { model: 'test/echo', input: content };
    const e1 = await httpPost(env.base, '/v1/embeddings', emb, { ...bearer(keyA), ...ON });
    assert.equal(e1.status, 200, e1.text);
    assert.equal(status(e1), 'MISS');
    const e2 = await httpPost(env.base, '/v1/embeddings', emb, { ...bearer(keyA), ...ON });
    assert.equal(status(e2), 'HIT');
    assert.deepEqual(e2.json.data[0].embedding, e1.json.data[0].embedding);
    assert.equal(e2.json.usage.prompt_tokens, 0);
  });

  test('/metrics counts hits, misses, stores and bytes', async () => {
    const m = (await httpGet(env.base, '/metrics')).text;
    const val = (name) => Number((new RegExp(`^${name} ([0-9.e+]+)$`, 'm').exec(m) || [])[1]);
    assert.ok(val('llmgate_response_cache_hits_total') >= 5, m.slice(0, 200));
    assert.ok(val('llmgate_response_cache_misses_total') >= 5);
    assert.ok(val('llmgate_response_cache_stores_total') >= 5);
    assert.ok(val('llmgate_response_cache_bytes') > 0);
    assert.ok(val('llmgate_response_cache_entries') > 0);
    assert.equal(val('llmgate_response_cache_max_bytes'), 8 * 1024 * 1024);
  });
});
