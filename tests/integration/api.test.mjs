// SPDX-License-Identifier: MIT
// API shapes (non-stream, stream, legacy completions, embeddings, models, health) and request passthrough.
import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import { startEnv, gwTest, ep, deltaText, expectedCost, assertClose } from './harness.mjs';

let env;
const test = gwTest(() => env);
const MSG = 'hello there world';

describe('api shapes and passthrough', () => {
  before(async () => {
    env = await startEnv({
      models: {
        'test/echo': {
          name: 'Test: Echo',
          context_length: 4096,
          supported_parameters: ['temperature', 'tools', 'tool_choice', 'response_format'],
          endpoints: [ep('up1', 'echo', '0.000001', '0.000002')],
        },
        'test/embed': { endpoints: [ep('up1', 'echo', '0.0000001', '0')] },
        'test/pass': { endpoints: [ep('up1', 'pass-through', '0.000001', '0.000002')] },
        'test/tools': { endpoints: [ep('up1', 'tools')] },
      },
    });
  });
  after(async () => {
    await env?.kill();
  });

  for (const prefix of ['/v1', '/api/v1']) {
    test(`${prefix}/chat/completions non-stream: id, model, provider, echo, usage and cost`, async () => {
      const r = await env.post(`${prefix}/chat/completions`, { model: 'test/echo', messages: [{ role: 'user', content: MSG }] });
      assert.equal(r.status, 200, r.text);
      const j = r.json;
      assert.match(j.id, /^gen-/);
      assert.equal(r.headers.get('x-generation-id'), j.id);
      assert.equal(j.object, 'chat.completion');
      assert.equal(j.model, 'test/echo');
      assert.equal(j.provider, 'up1');
      assert.equal(typeof j.created, 'number');
      assert.equal(j.choices[0].message.role, 'assistant');
      assert.equal(j.choices[0].message.content, MSG);
      assert.equal(j.choices[0].finish_reason, 'stop');
      const u = j.usage;
      assert.equal(u.prompt_tokens, 3); // mock counts words
      assert.equal(u.completion_tokens, 3);
      assert.equal(u.total_tokens, 6);
      assertClose(u.cost, expectedCost(u, '0.000001', '0.000002'), 'usage.cost');
    });

    test(`${prefix}/chat/completions stream: chunks, role, content, final usage chunk before [DONE]`, async () => {
      const r = await env.sse(`${prefix}/chat/completions`, {
        model: 'test/echo',
        stream: true,
        messages: [{ role: 'user', content: MSG }],
      });
      assert.equal(r.status, 200, r.raw);
      assert.match(r.headers.get('content-type'), /^text\/event-stream/);
      assert.deepEqual(r.bad, [], 'every data payload is JSON or [DONE]');
      assert.ok(r.chunks.length >= 3, r.raw);
      const id = r.chunks[0].id;
      assert.match(id, /^gen-/);
      assert.equal(r.headers.get('x-generation-id'), id);
      for (const c of r.chunks) {
        assert.equal(c.object, 'chat.completion.chunk');
        assert.equal(c.id, id);
        assert.equal(c.model, 'test/echo');
      }
      assert.equal(r.chunks[0].choices[0].delta.role, 'assistant');
      assert.equal(deltaText(r.chunks), MSG);
      assert.ok(
        r.chunks.some((c) => c.choices?.[0]?.finish_reason === 'stop'),
        'a chunk has finish_reason stop',
      );
      // final usage chunk immediately before [DONE], [DONE] is the last event
      assert.equal(r.doneIndex, r.data.length - 1, 'nothing after [DONE]');
      assert.ok(/data: \[DONE\]\s*$/.test(r.raw), 'stream ends with data: [DONE]');
      const last = JSON.parse(r.data[r.data.length - 2]);
      assert.deepEqual(last.choices, []);
      assert.ok(last.usage, 'usage in the last chunk');
      assert.equal(last.usage.prompt_tokens, 3);
      assert.equal(last.usage.completion_tokens, 3);
      assertClose(last.usage.cost, expectedCost(last.usage, '0.000001', '0.000002'), 'stream usage.cost');
    });

    test(`${prefix}/completions (legacy prompt)`, async () => {
      const r = await env.post(`${prefix}/completions`, { model: 'test/echo', prompt: 'say this back' });
      assert.equal(r.status, 200, r.text);
      assert.match(r.json.id, /^gen-/);
      assert.equal(r.headers.get('x-generation-id'), r.json.id);
      assert.equal(r.json.model, 'test/echo');
      assert.equal(r.json.choices[0].text, 'say this back');
      assert.equal(r.json.usage.prompt_tokens, 3);
      assert.equal(typeof r.json.usage.cost, 'number');
    });

    test(`${prefix}/embeddings`, async () => {
      const r = await env.post(`${prefix}/embeddings`, { model: 'test/embed', input: ['alpha beta', 'gamma'] });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.object, 'list');
      assert.equal(r.json.data.length, 2);
      for (const [i, d] of r.json.data.entries()) {
        assert.equal(d.index, i);
        assert.ok(Array.isArray(d.embedding) && d.embedding.length === 8, JSON.stringify(d));
        assert.ok(d.embedding.every((x) => typeof x === 'number'));
      }
      assert.equal(r.json.usage.prompt_tokens, 3);
      const last = await env.mockLast('echo');
      assert.deepEqual(last.body.input, ['alpha beta', 'gamma']);
    });

    test(`GET ${prefix}/models: OpenRouter model schema`, async () => {
      const r = await env.get(`${prefix}/models`);
      assert.equal(r.status, 200, r.text);
      assert.ok(Array.isArray(r.json.data));
      const m = r.json.data.find((x) => x.id === 'test/echo');
      assert.ok(m, 'test/echo listed');
      assert.equal(typeof m.name, 'string');
      assert.equal(typeof m.created, 'number');
      assert.equal(typeof m.context_length, 'number');
      assert.equal(typeof m.pricing.prompt, 'string', 'pricing.prompt is a string');
      assert.equal(typeof m.pricing.completion, 'string', 'pricing.completion is a string');
      assert.equal(Number(m.pricing.prompt), 0.000001);
      assert.equal(Number(m.pricing.completion), 0.000002);
      assert.ok(m.architecture && typeof m.architecture === 'object');
      assert.ok(m.top_provider && typeof m.top_provider === 'object');
      assert.ok(Array.isArray(m.supported_parameters));
      for (const id of ['test/embed', 'test/pass']) assert.ok(r.json.data.some((x) => x.id === id), `${id} listed`);
    });
  }

  test('GET /health: 200 with providers[]', async () => {
    const r = await env.get('/health');
    assert.equal(r.status, 200);
    assert.ok(Array.isArray(r.json.providers));
    const names = r.json.providers.map((p) => p.name);
    for (const n of ['up1', 'up2', 'mock']) assert.ok(names.includes(n), `${n} in /health`);
  });

  test('X-Generation-Id on error responses too', async () => {
    const r = await env.post('/v1/chat/completions', { model: 'no/such-model', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(r.status, 400);
    assert.match(r.headers.get('x-generation-id') || '', /^gen-/);
  });

  test('passthrough: tools, tool_choice, response_format, unknown field reach upstream unchanged', async () => {
    const tools = [
      {
        type: 'function',
        function: {
          name: 'get_weather',
          description: 'Weather',
          parameters: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] },
        },
      },
    ];
    const tool_choice = { type: 'function', function: { name: 'get_weather' } };
    const response_format = {
      type: 'json_schema',
      json_schema: { name: 'x', strict: true, schema: { type: 'object', properties: { a: { type: 'number' } } } },
    };
    const body = {
      model: 'test/pass',
      messages: [{ role: 'user', content: MSG }],
      tools,
      tool_choice,
      response_format,
      temperature: 0.5,
      foo_extra: { x: 1 },
      models: ['test/pass'],
      provider: { allow_fallbacks: true },
      route: 'fallback',
      transforms: [],
      usage: { include: true },
    };
    const r = await env.post('/v1/chat/completions', body, { authorization: 'Bearer client-secret-key' });
    assert.equal(r.status, 200, r.text);
    const last = await env.mockLast('pass-through');
    assert.ok(last, 'mock saw the request');
    const up = last.body;
    assert.equal(up.model, 'pass-through', 'upstream model is the catalog upstream name');
    assert.deepEqual(up.tools, tools);
    assert.deepEqual(up.tool_choice, tool_choice);
    assert.deepEqual(up.response_format, response_format);
    assert.deepEqual(up.foo_extra, { x: 1 });
    assert.equal(up.temperature, 0.5);
    assert.deepEqual(up.messages, [{ role: 'user', content: MSG }]);
    for (const f of ['models', 'provider', 'route', 'transforms', 'usage'])
      assert.ok(!(f in up), `gateway-only field "${f}" must not reach upstream: ${JSON.stringify(up)}`);
    assert.equal(last.headers.authorization, 'Bearer k1', 'provider key upstream, never the client key');
    assert.ok(!JSON.stringify(last.headers).includes('client-secret-key'), 'client key leaked upstream');
  });

  test('streaming request upstream carries stream:true', async () => {
    const r = await env.chatStream('test/pass', MSG);
    assert.equal(r.status, 200);
    const last = await env.mockLast('pass-through');
    assert.equal(last.body.stream, true);
  });

  test('tool calls pass through (non-stream and stream)', async () => {
    const r = await env.post('/v1/chat/completions', { model: 'test/tools', messages: [{ role: 'user', content: MSG }] });
    assert.equal(r.status, 200, r.text);
    const m = r.json.choices[0].message;
    assert.equal(r.json.choices[0].finish_reason, 'tool_calls');
    assert.equal(m.tool_calls.length, 2);
    assert.equal(m.tool_calls[0].function.name, 'get_weather');
    assert.deepEqual(JSON.parse(m.tool_calls[0].function.arguments), { location: 'Paris', unit: 'celsius' });
    const s = await env.chatStream('test/tools', MSG);
    assert.equal(s.status, 200);
    const calls = {};
    for (const c of s.chunks)
      for (const tc of c.choices?.[0]?.delta?.tool_calls || []) {
        calls[tc.index] ??= { id: tc.id, name: '', args: '' };
        if (tc.function?.name) calls[tc.index].name += tc.function.name;
        if (tc.function?.arguments) calls[tc.index].args += tc.function.arguments;
      }
    assert.equal(Object.keys(calls).length, 2, s.raw);
    assert.equal(calls[0].id, 'call_1');
    assert.equal(calls[1].name, 'get_time');
    assert.deepEqual(JSON.parse(calls[1].args), { timezone: 'Europe/Paris' });
    assert.ok(s.chunks.some((c) => c.choices?.[0]?.finish_reason === 'tool_calls'));
  });

  test('gateway exits 0 on SIGTERM', async () => {
    await env.stop();
  });
});
