// SPDX-License-Identifier: MIT
// Real-client tests: the official `@anthropic-ai/sdk` (pinned by package-lock.json) against llmgate's Anthropic-format
// ingress (POST /v1/messages; the SDK appends /v1/messages to baseURL). Each case runs over two routes:
//   "openai":    /v1/messages -> router -> `openai` plugin    -> mock /v1/chat/completions (OpenAI wire)
//   "anthropic": /v1/messages -> router -> `anthropic` plugin -> mock /v1/messages (Anthropic wire)
// Needs tests/clients/node_modules (scripts/install-deps.sh --test runs `npm ci` here). A missing install FAILS.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe } from 'node:test';
import { startEnv, gwTest, ep, TIMEOUTS } from '../integration/harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
let Anthropic;
let env;
let client;
const test = gwTest(() => env);

const WEATHER = { location: 'Paris', unit: 'celsius' };
const TIME = { timezone: 'Europe/Paris' };
const TOOLS = [
  { name: 'get_weather', description: 'Weather at a place', input_schema: { type: 'object', properties: { location: { type: 'string' } } } },
  { name: 'get_time', description: 'Time in a zone', input_schema: { type: 'object', properties: { timezone: { type: 'string' } } } },
];

// route name -> catalog models and the mock model strings behind them
const ROUTES = {
  openai: { echo: 'sdk/oa-echo', tools: 'sdk/oa-tools', upstreamEcho: 'echo+sdk-oa', toolIds: ['call_1', 'call_2'] },
  anthropic: { echo: 'sdk/an-echo', tools: 'sdk/an-tools', upstreamEcho: 'echo+sdk-an', toolIds: ['toolu_mock_1', 'toolu_mock_2'] },
};

const textOf = (msg) =>
  msg.content
    .filter((b) => b.type === 'text')
    .map((b) => b.text)
    .join('');

describe('official @anthropic-ai/sdk against llmgate /v1/messages', () => {
  before(async () => {
    if (!fs.existsSync(path.join(here, 'node_modules', '@anthropic-ai', 'sdk', 'package.json')))
      throw new Error(
        'tests/clients/node_modules/@anthropic-ai/sdk is missing: run `scripts/install-deps.sh --test` ' +
          '(or `npm ci` in tests/clients) before the real-client tests',
      );
    Anthropic = (await import('@anthropic-ai/sdk')).default;
    env = await startEnv({
      providers: [{ name: 'anth', plugin: 'anthropic', base_url: 'MOCK/v1', api_key: 'ak', timeouts: { ...TIMEOUTS } }],
      models: {
        'sdk/oa-echo': { endpoints: [ep('up1', 'echo+sdk-oa')] },
        'sdk/oa-tools': { endpoints: [ep('up1', 'tools+sdk-oat')] },
        'sdk/an-echo': { endpoints: [ep('anth', 'echo+sdk-an')] },
        'sdk/an-tools': { endpoints: [ep('anth', 'tools+sdk-ant')] },
      },
      mutate(conf) {
        const origin = conf.providers.find((p) => p.name === 'up1').base_url.replace(/\/v1$/, '');
        for (const p of conf.providers) if (typeof p.base_url === 'string') p.base_url = p.base_url.replace(/^MOCK/, origin);
      },
    });
    client = new Anthropic({ baseURL: env.base, apiKey: 'any-key', maxRetries: 0, timeout: 30000 });
  });
  after(async () => {
    await env?.kill();
  });

  test('SDK version is the pinned one', () => {
    const lock = JSON.parse(fs.readFileSync(path.join(here, 'package-lock.json'), 'utf8'));
    const installed = JSON.parse(fs.readFileSync(path.join(here, 'node_modules', '@anthropic-ai', 'sdk', 'package.json'), 'utf8'));
    assert.equal(installed.version, lock.packages['node_modules/@anthropic-ai/sdk'].version, 'node_modules matches the lockfile');
  });

  for (const [route, R] of Object.entries(ROUTES)) {
    test(`[${route}] messages.create (non-stream)`, async () => {
      const msg = await client.messages.create({
        model: R.echo,
        max_tokens: 256,
        system: 'You are terse.',
        messages: [{ role: 'user', content: 'hello from the anthropic sdk' }],
      });
      assert.equal(msg.type, 'message');
      assert.equal(msg.role, 'assistant');
      assert.equal(typeof msg.id, 'string');
      assert.equal(msg.content.length, 1, JSON.stringify(msg));
      assert.equal(msg.content[0].type, 'text');
      assert.equal(msg.content[0].text, 'hello from the anthropic sdk');
      assert.equal(msg.stop_reason, 'end_turn');
      assert.equal(msg.usage.output_tokens, 5);
      assert.ok(msg.usage.input_tokens > 0, JSON.stringify(msg.usage));
      const last = await env.mockLast(R.upstreamEcho);
      assert.ok(last, `the ${route} mock endpoint served it`);
      if (route === 'anthropic') {
        const sys = typeof last.body.system === 'string' ? last.body.system : last.body.system.map((b) => b.text).join('');
        assert.equal(sys, 'You are terse.');
        assert.equal(last.body.max_tokens, 256);
        assert.equal(last.headers['x-api-key'], 'ak', 'provider key upstream, never the client key');
      } else {
        assert.equal(last.body.messages[0].role, 'system');
        assert.equal(last.headers.authorization, 'Bearer k1');
      }
    });

    test(`[${route}] messages.stream() helper: text events and finalMessage()`, async () => {
      const stream = client.messages.stream({
        model: R.echo,
        max_tokens: 256,
        messages: [{ role: 'user', content: 'stream this back to me' }],
      });
      let text = '';
      stream.on('text', (t) => (text += t));
      const msg = await stream.finalMessage();
      assert.equal(text, 'stream this back to me');
      assert.equal(textOf(msg), 'stream this back to me');
      assert.equal(msg.stop_reason, 'end_turn');
      assert.equal(msg.usage.output_tokens, 5);
    });

    test(`[${route}] raw stream:true iteration: Anthropic event order`, async () => {
      const stream = await client.messages.create({
        model: R.echo,
        max_tokens: 256,
        stream: true,
        messages: [{ role: 'user', content: 'raw events please' }],
      });
      const types = [];
      let text = '';
      let stopReason;
      for await (const ev of stream) {
        types.push(ev.type);
        if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') text += ev.delta.text;
        if (ev.type === 'message_delta') stopReason = ev.delta.stop_reason;
      }
      assert.equal(text, 'raw events please');
      assert.equal(stopReason, 'end_turn');
      assert.equal(types[0], 'message_start');
      assert.equal(types[types.length - 1], 'message_stop');
      assert.equal(types[types.length - 2], 'message_delta');
      const starts = types.filter((t) => t === 'content_block_start').length;
      assert.equal(starts, types.filter((t) => t === 'content_block_stop').length, 'every block is closed');
      assert.ok(starts >= 1);
      assert.ok(types.indexOf('content_block_start') < types.indexOf('content_block_delta'));
    });

    test(`[${route}] tools: messages.create returns tool_use blocks with input objects`, async () => {
      const msg = await client.messages.create({
        model: R.tools,
        max_tokens: 256,
        tools: TOOLS,
        messages: [{ role: 'user', content: 'weather and time in Paris?' }],
      });
      assert.equal(msg.stop_reason, 'tool_use');
      const uses = msg.content.filter((b) => b.type === 'tool_use');
      assert.deepEqual(
        uses.map((u) => [u.id, u.name]),
        [
          [R.toolIds[0], 'get_weather'],
          [R.toolIds[1], 'get_time'],
        ],
      );
      assert.deepEqual(uses[0].input, WEATHER);
      assert.deepEqual(uses[1].input, TIME);
    });

    test(`[${route}] tools: messages.stream() assembles input_json_delta into input objects`, async () => {
      const stream = client.messages.stream({
        model: R.tools,
        max_tokens: 256,
        tools: TOOLS,
        messages: [{ role: 'user', content: 'weather and time in Paris?' }],
      });
      const msg = await stream.finalMessage();
      assert.equal(msg.stop_reason, 'tool_use');
      const uses = msg.content.filter((b) => b.type === 'tool_use');
      assert.equal(uses.length, 2, JSON.stringify(msg.content));
      assert.deepEqual(
        uses.map((u) => [u.id, u.name]),
        [
          [R.toolIds[0], 'get_weather'],
          [R.toolIds[1], 'get_time'],
        ],
      );
      assert.deepEqual(uses[0].input, WEATHER);
      assert.deepEqual(uses[1].input, TIME);
    });

    test(`[${route}] tool result round trip: tool_result blocks go back upstream`, async () => {
      const msg = await client.messages.create({
        model: R.echo,
        max_tokens: 256,
        tools: TOOLS,
        messages: [
          { role: 'user', content: 'weather?' },
          { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_x1', name: 'get_weather', input: WEATHER }] },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_x1', content: 'sunny' }, { type: 'text', text: 'thanks' }] },
        ],
      });
      assert.equal(msg.stop_reason, 'end_turn');
      const b = (await env.mockLast(R.upstreamEcho)).body;
      if (route === 'anthropic') {
        const use = b.messages[1].content.find((x) => x.type === 'tool_use');
        assert.deepEqual([use.id, use.name, use.input], ['toolu_x1', 'get_weather', WEATHER]);
        const res = b.messages[2].content.find((x) => x.type === 'tool_result');
        assert.equal(res.tool_use_id, 'toolu_x1');
      } else {
        const asst = b.messages.find((m) => m.role === 'assistant');
        assert.equal(asst.tool_calls[0].id, 'toolu_x1');
        assert.deepEqual(JSON.parse(asst.tool_calls[0].function.arguments), WEATHER);
        const tool = b.messages.find((m) => m.role === 'tool');
        assert.equal(tool.tool_call_id, 'toolu_x1');
      }
    });
  }

  test('unknown model -> the SDK throws BadRequestError (400, invalid_request_error)', async () => {
    await assert.rejects(
      client.messages.create({ model: 'nope/unknown', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }),
      (e) => {
        assert.ok(e instanceof Anthropic.APIError, `APIError expected, got ${e?.constructor?.name}: ${e}`);
        assert.ok(e instanceof Anthropic.BadRequestError, `BadRequestError expected, got ${e?.constructor?.name}`);
        assert.equal(e.status, 400);
        assert.equal(e.error?.type, 'error', JSON.stringify(e.error));
        assert.equal(e.error?.error?.type, 'invalid_request_error', JSON.stringify(e.error));
        assert.equal(typeof e.error?.error?.message, 'string');
        return true;
      },
    );
  });

  test('unknown model in a stream -> the SDK throws BadRequestError before any event', async () => {
    await assert.rejects(
      (async () => {
        const s = await client.messages.create({ model: 'nope/unknown', max_tokens: 10, stream: true, messages: [{ role: 'user', content: 'x' }] });
        for await (const ev of s) assert.fail(`no event expected, got ${ev.type}`);
      })(),
      (e) => e instanceof Anthropic.BadRequestError && e.status === 400,
    );
  });

  test('gateway exits 0 on SIGTERM', async () => {
    await env.stop();
  });
});
