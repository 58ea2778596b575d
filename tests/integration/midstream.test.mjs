// SPDX-License-Identifier: MIT
// Mid-stream failover (#10 item 5): a stream that breaks after its first token continues on the next endpoint with
// what was produced so far as an assistant prefill, so the client gets one answer: prefix + continuation, one [DONE],
// no error chunk, usage and cost of both attempts, both attempts in the generation row and the access log.
// Opt-in per request (X-LLMGate-Midstream-Failover: true) and per model (midstream_failover: true).
// The continuing endpoints use the mock's `prefill-echo`: it answers ` continued after "<the prefill>"`, so the test
// sees exactly which prefix the gateway sent. The "price" policy makes the breaking endpoint (cheapest) go first.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import { startEnv, gwTest, ep, deltaText, waitFor } from './harness.mjs';

const ADMIN = 'adm-' + Math.random().toString(36).slice(2) + '-mid';
const auth = { authorization: `Bearer ${ADMIN}` };
const ON = { ...auth, 'x-llmgate-midstream-failover': 'true' };
const PICO = 1e12;
const picoOf = (usd) => Math.round(usd * PICO);
const P1 = ['0.000001', '0.000002'];
const P2 = ['0.000003', '0.000005'];
const P3 = ['0.000007', '0.000011'];
const words = (s) => s.split(/\s+/).filter((w) => w !== '').length;
const cont = (prefix) => ` continued after "${prefix}"`;
const USER = 'tell me a story';

let env;
const test = gwTest(() => env);

function wellFormed(r) {
  assert.equal(r.status, 200, r.raw);
  assert.deepEqual(r.bad, [], `non-JSON data payloads: ${JSON.stringify(r.bad)}`);
  assert.equal(r.data.filter((d) => d === '[DONE]').length, 1, `exactly one [DONE]:\n${r.raw}`);
  assert.equal(r.doneIndex, r.data.length - 1, `[DONE] is the last event:\n${r.raw}`);
}

function noError(r) {
  assert.ok(!r.chunks.some((c) => c.error), `no error chunk:\n${r.raw}`);
  assert.ok(!r.chunks.some((c) => c.choices?.some((ch) => ch.finish_reason === 'error')), `no finish_reason error:\n${r.raw}`);
}

function endsWithError(r) {
  wellFormed(r);
  const ec = r.chunks.filter((c) => c.error);
  assert.equal(ec.length, 1, `one error chunk:\n${r.raw}`);
  return ec[0];
}

const finalUsage = (r) => r.chunks.filter((c) => c.usage).at(-1)?.usage;
const finishOf = (r) => r.chunks.map((c) => c.choices?.[0]?.finish_reason).filter((f) => f != null);

async function generation(id) {
  let g;
  await waitFor(async () => (g = await env.get('/api/v1/generation?id=' + id, auth)).status === 200, 5000, 50);
  assert.equal(g.status, 200, g.text);
  return g.json.data;
}

/** The request the continuing endpoint received, with the prefill it was given. */
async function prefillSent(model) {
  const last = await env.mockLast(model);
  assert.ok(last, `the mock saw a request for ${model}`);
  const msgs = last.body?.messages ?? last.messages;
  assert.ok(Array.isArray(msgs), JSON.stringify(last));
  const tail = msgs.at(-1);
  assert.equal(tail.role, 'assistant', `the continuation ends with an assistant prefill: ${JSON.stringify(msgs)}`);
  return { msgs, prefix: tail.content };
}

describe('mid-stream failover', () => {
  before(async () => {
    env = await startEnv({
      // tr1/tr2 rewrite the request (the openai plugin's reasoning-model rules), so their attempts take the tree path
      providers: [
        { name: 'tr1', options: { reasoning_models: ['words-'] } },
        { name: 'tr2', options: { reasoning_models: ['prefill-'] } },
      ],
      models: {
        'test/mftree': { policy: 'price', midstream_failover: true, endpoints: [ep('tr1', 'words-8+reset-mid+tr1', ...P1), ep('tr2', 'prefill-echo+tr2', ...P2)] },
        'test/mf': { policy: 'price', midstream_failover: true, endpoints: [ep('up1', 'words-8+reset-mid+mf1', ...P1), ep('up2', 'prefill-echo+mf2', ...P2)] },
        // the same first attempt, requested without the header: what that attempt alone is billed (a model of its own, as
        // an endpoint that just failed goes to the end of its model's plan)
        'test/mf0': { policy: 'price', midstream_failover: true, endpoints: [ep('up1', 'words-8+reset-mid+mf0', ...P1), ep('up2', 'prefill-echo+mf02', ...P2)] },
        'test/mfoff': { policy: 'price', endpoints: [ep('up1', 'words-8+reset-mid+off1', ...P1), ep('up2', 'prefill-echo+off2', ...P2)] },
        'test/mftool': { policy: 'price', midstream_failover: true, endpoints: [ep('up1', 'tools+reset-mid+t1', ...P1), ep('up2', 'prefill-echo+t2', ...P2)] },
        'test/mf3': {
          policy: 'price',
          midstream_failover: true,
          endpoints: [ep('up1', 'words-8+reset-mid+a1', ...P1), ep('up2', 'prefill-echo+reset-mid+a2', ...P2), ep('up1', 'prefill-echo+a3', ...P3)],
        },
        'test/mfend': { policy: 'price', midstream_failover: true, endpoints: [ep('up1', 'words-8+reset-mid+e1', ...P1), ep('up2', 'prefill-echo+reset-mid+e2', ...P2)] },
        'test/mfinband': { policy: 'price', midstream_failover: true, endpoints: [ep('up1', 'words-8+inband-error+i1', ...P1), ep('up2', 'prefill-echo+i2', ...P2)] },
        'test/mfbad': { policy: 'price', midstream_failover: true, endpoints: [ep('up1', 'words-8+corrupt-mid-json+b1', ...P1), ep('up2', 'prefill-echo+b2', ...P2)] },
        'test/mfmsg': { policy: 'price', midstream_failover: true, endpoints: [ep('up1', 'words-8+reset-mid+g1', ...P1), ep('up2', 'prefill-echo+g2', ...P2)] },
        'test/mfresp': { policy: 'price', midstream_failover: true, endpoints: [ep('up1', 'words-8+reset-mid+r1', ...P1), ep('up2', 'prefill-echo+r2', ...P2)] },
      },
      mutate: (conf) => {
        conf.auth = { admin_key: ADMIN };
        conf.store = { path: path.join(path.dirname(conf.access_log), 'llmgate.db') };
      },
    });
  });
  after(async () => {
    await env?.kill();
  });

  const stream = (model, headers = ON, extra = {}) =>
    env.sse('/v1/chat/completions', { model, stream: true, messages: [{ role: 'user', content: USER }], ...extra }, headers);

  test('reset after 2 tokens: one answer = prefix + continuation, one [DONE], usage and cost of both, two attempts', async () => {
    const off = await stream('test/mf0', auth); // opted out by the request (the default): the error chunk
    endsWithError(off);
    assert.equal(await env.mockCount('prefill-echo+mf02'), 0, 'no continuation without the header');
    const offUsage = finalUsage(off);
    assert.ok(offUsage, `usage on the error path:\n${off.raw}`);

    const r = await stream('test/mf');
    wellFormed(r);
    noError(r);
    const { msgs, prefix } = await prefillSent('prefill-echo+mf2');
    assert.equal(prefix, 'w1 w2 ', 'the prefill is exactly the text the client had');
    assert.deepEqual(msgs.slice(0, -1), [{ role: 'user', content: USER }], 'the conversation precedes the prefill');
    assert.equal(deltaText(r.chunks), 'w1 w2 ' + cont('w1 w2 '));
    assert.deepEqual(finishOf(r), ['stop'], "one finish_reason, the continuation's");
    assert.equal(r.chunks.filter((c) => c.choices?.[0]?.delta?.role).length, 1, 'one role chunk');

    const u = finalUsage(r);
    const p2 = words(USER) + words(prefix);
    const c2 = words(cont(prefix));
    assert.equal(u.prompt_tokens, offUsage.prompt_tokens + p2, JSON.stringify(u));
    assert.equal(u.completion_tokens, offUsage.completion_tokens + c2, JSON.stringify(u));
    assert.equal(u.total_tokens, u.prompt_tokens + u.completion_tokens);
    const cost2 = picoOf(p2 * Number(P2[0]) + c2 * Number(P2[1]));
    assert.equal(picoOf(u.cost), picoOf(offUsage.cost) + cost2, 'each attempt at its own endpoint price');

    const id = r.headers.get('x-generation-id');
    const g = await generation(id);
    assert.equal(g.provider_name, 'up2');
    assert.equal(g.streamed, true);
    assert.equal(g.finish_reason, 'stop');
    assert.equal(g.tokens_prompt, u.prompt_tokens);
    assert.equal(g.tokens_completion, u.completion_tokens);
    assert.equal(picoOf(g.total_cost), picoOf(u.cost));
    assert.equal(g.provider_responses.length, 2, JSON.stringify(g.provider_responses));
    assert.equal(g.provider_responses[0].provider, 'up1');
    assert.ok(g.provider_responses[0].status >= 500, JSON.stringify(g.provider_responses[0]));
    assert.equal(g.provider_responses[1].provider, 'up2');
    assert.equal(g.provider_responses[1].status, 200);

    const line = await waitFor(() => env.accessLog().map((l) => JSON.parse(l)).find((l) => l.id === id), 3000);
    assert.ok(line, 'access log line');
    assert.equal(line.attempts, 2);
    assert.equal(line.continuations, 1, 'the access log says the answer was continued');
    assert.equal(line.provider, 'up2');
    assert.equal(line.status, 200);
    assert.equal(picoOf(line.cost), picoOf(u.cost));
  });

  test('tree path on the chat route (a plugin that rewrites the request): the same one answer, usage of both', async () => {
    const r = await stream('test/mftree');
    wellFormed(r);
    noError(r);
    const { prefix } = await prefillSent('prefill-echo+tr2');
    assert.equal(prefix, 'w1 w2 ');
    assert.equal(deltaText(r.chunks), 'w1 w2 ' + cont('w1 w2 '));
    assert.deepEqual(finishOf(r), ['stop']);
    const u = finalUsage(r);
    assert.ok(u.completion_tokens > words(cont(prefix)), `the broken attempt's completion is counted: ${JSON.stringify(u)}`);
    assert.ok(u.prompt_tokens > words(USER) + words(prefix), JSON.stringify(u));
    const g = await generation(r.headers.get('x-generation-id'));
    assert.deepEqual(
      g.provider_responses.map((a) => a.provider),
      ['tr1', 'tr2'],
    );
    assert.equal(picoOf(g.total_cost), picoOf(u.cost));
  });

  test('a model without midstream_failover is not continued even with the header: error chunk', async () => {
    const r = await stream('test/mfoff');
    endsWithError(r);
    assert.equal(deltaText(r.chunks), 'w1 w2 ');
    assert.equal(await env.mockCount('prefill-echo+off2'), 0, 'no continuation request');
  });

  test('a tool call being streamed is not continued: error chunk', async () => {
    const r = await stream('test/mftool');
    const ec = endsWithError(r);
    assert.equal(typeof ec.error.message, 'string');
    assert.ok(r.chunks.some((c) => c.choices?.[0]?.delta?.tool_calls), 'tool-call deltas were streamed');
    assert.equal(await env.mockCount('prefill-echo+t2'), 0, 'no continuation request');
  });

  test('the continuation breaks too: continued again on the third endpoint, three attempts', async () => {
    const r = await stream('test/mf3');
    wellFormed(r);
    noError(r);
    const first = await prefillSent('prefill-echo+reset-mid+a2');
    assert.equal(first.prefix, 'w1 w2 ');
    const second = await prefillSent('prefill-echo+a3');
    const p2 = 'w1 w2  continued '; // the mock's reset-mid: 2 content chunks of the continuation
    assert.equal(second.prefix, 'w1 w2 ' + ' continued after ');
    assert.ok(second.prefix.startsWith(p2));
    assert.equal(deltaText(r.chunks), second.prefix + cont(second.prefix));
    assert.deepEqual(finishOf(r), ['stop']);
    const g = await generation(r.headers.get('x-generation-id'));
    assert.deepEqual(
      g.provider_responses.map((a) => a.provider),
      ['up1', 'up2', 'up1'],
    );
    assert.equal(picoOf(g.total_cost), picoOf(finalUsage(r).cost));
  });

  test('the plan ends while continuing: the error chunk, billed for everything streamed', async () => {
    const r = await stream('test/mfend');
    const ec = endsWithError(r);
    assert.equal(deltaText(r.chunks), 'w1 w2  continued after ');
    const u = ec.usage ?? finalUsage(r);
    assert.ok(u && u.completion_tokens >= 3, JSON.stringify(u));
    const g = await generation(r.headers.get('x-generation-id'));
    assert.equal(g.provider_responses.length, 2);
    assert.ok(picoOf(g.total_cost) > 0, 'what reached the client is billed');
  });

  test('an in-band error after the first token is continued too', async () => {
    const r = await stream('test/mfinband');
    wellFormed(r);
    noError(r);
    assert.equal(deltaText(r.chunks), 'w1 ' + cont('w1 '));
  });

  test('a malformed event after the first token is continued too (the broken event never reaches the client)', async () => {
    const r = await stream('test/mfbad');
    wellFormed(r);
    noError(r);
    assert.equal(deltaText(r.chunks), 'w1 ' + cont('w1 '));
  });

  test('non-stream requests are unchanged: a broken body falls over before anything was sent, no prefill', async () => {
    const r = await env.post('/v1/chat/completions', { model: 'test/mf', messages: [{ role: 'user', content: USER }] }, ON);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.choices[0].message.content, 'no prefill');
    assert.equal(r.json.provider, 'up2');
  });

  test('Anthropic skin (tree path): one continuous message stream, one message_stop, no error event', async () => {
    const r = await env.sse('/v1/messages', { model: 'test/mfmsg', max_tokens: 100, stream: true, messages: [{ role: 'user', content: USER }] }, ON);
    assert.equal(r.status, 200, r.raw);
    assert.deepEqual(r.bad, []);
    const types = r.chunks.map((c) => c.type);
    assert.ok(!types.includes('error'), r.raw);
    assert.equal(types.filter((t) => t === 'message_stop').length, 1, r.raw);
    assert.equal(types.filter((t) => t === 'message_start').length, 1, r.raw);
    const text = r.chunks
      .filter((c) => c.type === 'content_block_delta' && c.delta?.type === 'text_delta')
      .map((c) => c.delta.text)
      .join('');
    assert.equal(text, 'w1 w2 ' + cont('w1 w2 '));
    const stop = r.chunks.find((c) => c.type === 'message_delta');
    assert.equal(stop.delta.stop_reason, 'end_turn');
    assert.equal((await prefillSent('prefill-echo+g2')).prefix, 'w1 w2 ');
  });

  test('Responses skin: one response, response.completed once, no response.failed', async () => {
    const r = await env.sse('/v1/responses', { model: 'test/mfresp', stream: true, input: USER }, ON);
    assert.equal(r.status, 200, r.raw);
    assert.deepEqual(r.bad, []);
    const types = r.chunks.map((c) => c.type);
    assert.ok(!types.includes('response.failed') && !types.includes('error'), r.raw);
    assert.equal(types.filter((t) => t === 'response.completed').length, 1, r.raw);
    const text = r.chunks
      .filter((c) => c.type === 'response.output_text.delta')
      .map((c) => c.delta)
      .join('');
    assert.equal(text, 'w1 w2 ' + cont('w1 w2 '));
    const done = r.chunks.find((c) => c.type === 'response.completed');
    assert.equal(done.response.output[0].content[0].text, text);
  });
});
