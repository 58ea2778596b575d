// SPDX-License-Identifier: MIT
// Real-client test: the official `openai` SDK's Responses API (`responses.create`, stream and not, a function-call
// round trip over two turns, JSON-schema output) and `models.retrieve`, against llmgate's stateless /v1/responses
// skin over the OpenAI-wire mock upstream and an Anthropic-wire one. Needs tests/clients/node_modules; a missing
// install FAILS.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe } from 'node:test';
import { startEnv, gwTest, ep, assertClose } from '../integration/harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
let OpenAI;
let env;
let client;
const test = gwTest(() => env);

describe('official openai SDK: Responses API and models.retrieve', () => {
  before(async () => {
    if (!fs.existsSync(path.join(here, 'node_modules', 'openai', 'package.json')))
      throw new Error('tests/clients/node_modules/openai is missing: run `scripts/install-deps.sh --test` (or `npm ci` in tests/clients)');
    OpenAI = (await import('openai')).default;
    env = await startEnv({
      models: {
        'test/echo': { name: 'Test Echo', endpoints: [ep('up1', 'echo', '0.000001', '0.000002')] },
        'test/tools': { endpoints: [ep('up1', 'tools')] },
        'test/claude': { endpoints: [ep('anth', 'echo+resp-claude', '0.000003', '0.000015')] },
      },
      providers: [{ name: 'anth', plugin: 'anthropic', base_url: 'MOCK/v1', api_key: 'ak' }],
      mutate: (conf) => {
        // the Anthropic provider points at the same mock process, which serves /v1/messages too
        const origin = conf.providers.find((p) => p.name === 'up1').base_url.replace(/\/v1$/, '');
        for (const p of conf.providers) if (typeof p.base_url === 'string') p.base_url = p.base_url.replace(/^MOCK/, origin);
      },
    });
    client = new OpenAI({ baseURL: `${env.base}/v1`, apiKey: 'anything', maxRetries: 0, timeout: 30000 });
  });
  after(async () => {
    await env?.kill();
  });

  test('responses.create (non-stream): output_text, usage with cost, response id', async () => {
    const r = await client.responses.create({ model: 'test/echo', instructions: 'be brief', input: 'hello responses' });
    assert.equal(r.object, 'response');
    assert.match(r.id, /^resp_/);
    assert.equal(r.status, 'completed');
    assert.equal(r.output_text, 'hello responses');
    assert.equal(r.instructions, 'be brief');
    assert.equal(r.usage.input_tokens > 0, true);
    assert.equal(r.usage.output_tokens, 2);
    assert.equal(r.usage.total_tokens, r.usage.input_tokens + r.usage.output_tokens);
    assertClose(r.usage.cost, r.usage.input_tokens * 0.000001 + r.usage.output_tokens * 0.000002, 'cost');
    const up = await env.mockLast('echo');
    assert.deepEqual(
      up.body.messages.map((m) => m.role),
      ['system', 'user'],
      'instructions became a system message',
    );
  });

  test('responses.create (stream): the event sequence and the final response', async () => {
    const stream = await client.responses.create({ model: 'test/echo', input: 'stream these words back', stream: true });
    const types = [];
    let text = '';
    let seq = -1;
    let final;
    for await (const ev of stream) {
      types.push(ev.type);
      assert.equal(ev.sequence_number, seq + 1, 'sequence_number rises by one');
      seq = ev.sequence_number;
      if (ev.type === 'response.output_text.delta') text += ev.delta;
      if (ev.type === 'response.completed') final = ev.response;
    }
    assert.equal(text, 'stream these words back');
    assert.deepEqual(types.slice(0, 4), [
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
    ]);
    assert.deepEqual(types.slice(-4), [
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);
    assert.equal(final.output[0].content[0].text, 'stream these words back');
    assert.equal(typeof final.usage.cost, 'number');
  });

  test('a function-call round trip over two turns', async () => {
    const tools = [
      { type: 'function', name: 'get_weather', description: 'weather', parameters: { type: 'object', properties: { location: { type: 'string' } } } },
      { type: 'function', name: 'get_time', parameters: { type: 'object', properties: {} } },
    ];
    const first = await client.responses.create({ model: 'test/tools', input: 'weather and time in Paris?', tools });
    const calls = first.output.filter((o) => o.type === 'function_call');
    assert.equal(calls.length, 2);
    assert.equal(calls[0].name, 'get_weather');
    assert.deepEqual(JSON.parse(calls[0].arguments), { location: 'Paris', unit: 'celsius' });
    assert.equal(calls[0].call_id, 'call_1');
    // second turn: the whole history (stateless), the calls and their outputs
    const second = await client.responses.create({
      model: 'test/echo',
      tools,
      input: [
        { role: 'user', content: 'weather and time in Paris?' },
        ...calls,
        { type: 'function_call_output', call_id: 'call_1', output: 'sunny, 21C' },
        { type: 'function_call_output', call_id: 'call_2', output: '14:00' },
        { role: 'user', content: 'summarise that' },
      ],
    });
    assert.equal(second.output_text, 'summarise that');
    const up = await env.mockLast('echo');
    const roles = up.body.messages.map((m) => m.role);
    assert.deepEqual(roles, ['user', 'assistant', 'tool', 'tool', 'user']);
    assert.deepEqual(
      up.body.messages[1].tool_calls.map((c) => c.id),
      ['call_1', 'call_2'],
    );
    assert.equal(up.body.messages[2].tool_call_id, 'call_1');
    assert.equal(up.body.messages[2].content, 'sunny, 21C');
    assert.equal(up.body.tools[0].function.name, 'get_weather');
  });

  test('streamed function-call arguments arrive as deltas and a done event', async () => {
    const stream = await client.responses.create({ model: 'test/tools', input: 'go', stream: true, tools: [{ type: 'function', name: 'get_weather', parameters: { type: 'object' } }] });
    let args = '';
    let done;
    for await (const ev of stream) {
      if (ev.type === 'response.function_call_arguments.delta' && ev.output_index === 0) args += ev.delta;
      if (ev.type === 'response.function_call_arguments.done' && ev.output_index === 0) done = ev.arguments;
    }
    assert.equal(args, '{"location":"Paris","unit":"celsius"}');
    assert.equal(done, args);
  });

  test('JSON-schema output: text.format reaches the upstream as response_format', async () => {
    const r = await client.responses.create({
      model: 'test/echo',
      input: '{"answer":42}',
      text: { format: { type: 'json_schema', name: 'answer', schema: { type: 'object', properties: { answer: { type: 'number' } }, required: ['answer'] }, strict: true } },
    });
    assert.deepEqual(JSON.parse(r.output_text), { answer: 42 });
    assert.deepEqual(r.text.format.name, 'answer');
    const up = await env.mockLast('echo');
    assert.equal(up.body.response_format.type, 'json_schema');
    assert.equal(up.body.response_format.json_schema.name, 'answer');
    assert.equal(up.body.response_format.json_schema.strict, true);
  });

  test('an Anthropic upstream behind the Responses skin', async () => {
    const r = await client.responses.create({ model: 'test/claude', input: 'hello claude', max_output_tokens: 64 });
    assert.equal(r.status, 'completed');
    assert.equal(r.output_text, 'hello claude');
    assert.equal(r.usage.input_tokens > 0, true);
  });

  test('stateless: store:true and previous_response_id are refused with 400', async () => {
    await assert.rejects(client.responses.create({ model: 'test/echo', input: 'x', store: true }), (e) => e.status === 400 && /stateless/.test(e.message));
    await assert.rejects(
      client.responses.create({ model: 'test/echo', input: 'x', previous_response_id: 'resp_123' }),
      (e) => e.status === 400 && /previous_response_id/.test(e.message),
    );
  });

  test('models.retrieve', async () => {
    const m = await client.models.retrieve('test/echo');
    assert.equal(m.id, 'test/echo');
    assert.equal(m.object, 'model');
    assert.equal(m.owned_by, 'test');
    await assert.rejects(client.models.retrieve('no/such'), (e) => e.status === 404);
  });
});
