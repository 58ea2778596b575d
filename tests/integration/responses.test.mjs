// SPDX-License-Identifier: MIT
// POST /v1/responses end to end (openrouter-api.md §13): bad items → 400 naming the item, fallback before the first
// output, `response.failed` after it, keep-alives before the first token, routing fields, and the ledger row (route,
// cost) of a Responses generation. The SDK-level checks are in tests/clients/openai_responses.test.mjs.
import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import { startEnv, gwTest, ep, httpPost, httpSse, parseSse, assertError, waitFor, assertClose } from './harness.mjs';

let env;
const test = gwTest(() => env);

/** Responses SSE events: [{event, data}] from `event: X` + `data: {...}` blocks. */
function events(raw) {
  const out = [];
  for (const block of raw.split(/\r?\n\r?\n/)) {
    const ev = /^event: (.+)$/m.exec(block);
    const data = /^data: (.+)$/m.exec(block);
    if (ev && data) out.push({ event: ev[1], data: JSON.parse(data[1]) });
  }
  return out;
}

describe('/v1/responses', () => {
  before(async () => {
    env = await startEnv({
      models: {
        'test/echo': { endpoints: [ep('up1', 'echo', '0.000001', '0.000002')] },
        'test/broken': { endpoints: [ep('up1', 'fail-500')] },
        'test/failover': { endpoints: [ep('up1', 'fail-503'), ep('up2', 'echo+second')] },
        'test/resetmid': { endpoints: [ep('up1', 'words-10+reset-mid')] },
        'test/delay': { endpoints: [ep('up1', 'delay-900+echo')] },
        'test/garbage': { endpoints: [ep('up1', 'garbage-sse')] },
      },
      routing: { keepalive_interval_ms: 200 },
      mutate: (c) => {
        c.store = { path: c.access_log.replace('access.log', 'db.sqlite'), flush_interval_ms: 50 };
      },
    });
  });
  after(async () => {
    await env?.kill();
  });

  test('bad input: 400 in the API error shape, naming the item', async () => {
    const cases = [
      [{ model: 'test/echo', input: [{ role: 'user', content: 'a' }, { type: 'function_call', name: 'f' }] }, 'input[1].call_id'],
      [{ model: 'test/echo', input: [{ role: 'user', content: [{ type: 'input_audio' }] }] }, 'input[0].content[0].type'],
      [{ model: 'test/echo', input: [{ type: 'function_call_output', output: 'x' }] }, 'input[0].call_id'],
      [{ model: 'test/echo', input: 'x', tools: [{ type: 'function' }] }, 'tools[0].name'],
      [{ model: 'test/echo', input: 'x', store: true }, 'store'],
      [{ model: 'test/echo', input: 'x', previous_response_id: 'resp_1' }, 'previous_response_id'],
      [{ model: 'test/echo' }, 'input'],
      ['{not json', 'JSON'],
    ];
    for (const [body, name] of cases) assertError(await httpPost(env.base, '/v1/responses', body), 400, { mentions: name });
    assertError(await httpPost(env.base, '/v1/responses', { model: 'no/such', input: 'x' }), 400, { type: 'model_not_found' });
    const get = await fetch(env.base + '/v1/responses');
    assert.equal(get.status, 405);
  });

  test('failure before the first output falls over to the next endpoint and to models[]', async () => {
    const r = await httpPost(env.base, '/v1/responses', { model: 'test/failover', input: 'second one' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.output[0].content[0].text, 'second one');
    const m = await httpPost(env.base, '/api/v1/responses', { model: 'test/broken', models: ['test/echo'], input: 'fallback model' });
    assert.equal(m.status, 200, m.text);
    assert.equal(m.json.model, 'test/echo');
    const s = await httpSse(env.base, '/v1/responses', { model: 'test/failover', input: 'streamed second', stream: true });
    const evs = events(s.raw);
    assert.equal(evs.at(-1).event, 'response.completed');
    assert.equal(evs.at(-1).data.response.output[0].content[0].text, 'streamed second');
  });

  test('all attempts failed: the error status and shape', async () => {
    const r = await httpPost(env.base, '/v1/responses', { model: 'test/broken', input: 'x' });
    assertError(r, 502);
    const s = await httpSse(env.base, '/v1/responses', { model: 'test/garbage', input: 'x', stream: true });
    assert.ok(s.status >= 500 || events(s.raw).at(-1)?.event === 'response.failed', s.raw);
  });

  test('failure after the first output: response.failed with the text so far, strictly rising sequence numbers', async () => {
    const s = await httpSse(env.base, '/v1/responses', { model: 'test/resetmid', input: 'x', stream: true });
    assert.equal(s.status, 200);
    const evs = events(s.raw);
    const deltas = evs.filter((e) => e.event === 'response.output_text.delta').map((e) => e.data.delta).join('');
    assert.match(deltas, /^w1 w2/);
    const last = evs.at(-1);
    assert.equal(last.event, 'response.failed');
    assert.equal(last.data.response.status, 'failed');
    assert.equal(typeof last.data.response.error.message, 'string');
    assert.ok(!evs.some((e) => e.event === 'response.completed'), 'never completed after a failure');
    evs.forEach((e, i) => assert.equal(e.data.sequence_number, i));
    assert.ok(!s.raw.includes('data: [DONE]'), 'the Responses stream has no [DONE] sentinel');
  });

  test('keep-alives before the first token: response.created first, comments, then the answer', async () => {
    const s = await httpSse(env.base, '/v1/responses', { model: 'test/delay', input: 'after a pause', stream: true });
    const sse = parseSse(s.raw);
    assert.ok(sse.comments.length >= 1, 'keep-alive comments while waiting');
    assert.equal(sse.bad.length, 0);
    const evs = events(s.raw);
    assert.equal(evs[0].event, 'response.created');
    assert.equal(evs.at(-1).event, 'response.completed');
  });

  test('the generation is in the ledger with its route and cost', async () => {
    const r = await httpPost(env.base, '/v1/responses', { model: 'test/echo', input: 'bill me please' });
    assert.equal(r.status, 200);
    const genId = r.headers.get('x-generation-id');
    assert.match(genId, /^gen-/);
    assert.equal(r.json.id, genId.replace(/^gen-/, 'resp_'));
    const g = await waitFor(async () => {
      const x = await fetch(`${env.base}/api/v1/generation?id=${genId}`);
      return x.status === 200 ? x.json() : null;
    }, 5000);
    assert.ok(g, 'ledger row committed');
    assert.equal(g.data.model, 'test/echo');
    assertClose(g.data.total_cost, r.json.usage.cost, 'ledger cost = response cost');
    assert.ok(r.json.usage.cost > 0);
  });
});
