// SPDX-License-Identifier: MIT
// Provider plugins end to end: OpenAI-shaped client -> llmgate -> `anthropic` plugin -> mock /v1/messages and
// -> `gemini` plugin -> mock /v1beta/models/{m}:generateContent | :streamGenerateContent?alt=sse | :batchEmbedContents.
// The mock speaks the providers' real wire formats (tests/mock/README.md, "Anthropic endpoint" / "Gemini endpoints");
// /_mock/last shows the translated upstream request. Checks: stream and non-stream, two streamed tool calls, tool
// results folded back, cache-token usage and cost from the catalog's cache prices, thoughtSignature round trip,
// 529 -> fallback to Gemini, Anthropic error event before content -> fallback, after content -> error chunk, Gemini
// in-band error -> error chunk (never "stop"), truncated streams, max_tokens -> "length", embeddings.
import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import { startEnv, gwTest, ep, deltaText, assertClose, assertError, httpPost, TIMEOUTS } from './harness.mjs';

let env;
const test = gwTest(() => env);

const CHEAP = ['0.000001', '0.000001'];
const DEAR = ['0.000002', '0.000002'];
// Anthropic-style catalog prices (per token) with explicit cache prices
const A_PRICE = { prompt: '0.000003', completion: '0.000015', input_cache_read: '0.0000003', input_cache_write: '0.00000375' };
const G_PRICE = { prompt: '0.0000003', completion: '0.0000025', input_cache_read: '0.000000075' };
// what the mock's "tools" directive answers (tests/mock/README.md)
const TOOLS_TEXT = 'Let me check the weather and the time.';
const WEATHER = { location: 'Paris', unit: 'celsius' };
const TIME = { timezone: 'Europe/Paris' };
const SIG = 'bW9jay10aG91Z2h0LXNpZ25hdHVyZS0x';
const A_CACHE_WRITE = 1000;
const A_CACHE_READ = 2000;
const G_CACHED = 1500;

const words = (s) => s.split(/\s+/).filter(Boolean).length;

/** SSE sanity shared by every stream: JSON payloads only, [DONE] last. */
function wellFormed(r) {
  assert.equal(r.status, 200, r.raw);
  assert.deepEqual(r.bad, [], `non-JSON data payloads: ${JSON.stringify(r.bad)}`);
  assert.equal(r.doneIndex, r.data.length - 1, `[DONE] must be the last data event:\n${r.raw}`);
}

/** Exactly one finish_reason "error" chunk carrying an error object, no fake "stop", nothing after it but usage. */
function endsWithError(r) {
  wellFormed(r);
  const errChunks = r.chunks.filter((c) => c.choices?.some((ch) => ch.finish_reason === 'error'));
  assert.equal(errChunks.length, 1, `one finish_reason:"error" chunk expected:\n${r.raw}`);
  const ec = errChunks[0];
  assert.ok(ec.error && typeof ec.error === 'object', `error object in the error chunk: ${JSON.stringify(ec)}`);
  assert.equal(typeof ec.error.message, 'string');
  assert.ok(!r.chunks.some((c) => c.choices?.some((ch) => ch.finish_reason === 'stop')), `fake "stop" after an error:\n${r.raw}`);
  const idx = r.chunks.indexOf(ec);
  assert.ok(r.chunks.slice(idx + 1).every((c) => !c.choices?.length || !c.choices[0].delta?.content), 'no content after error');
  return ec;
}

/** Reassembles streamed tool calls by index: [{id, name, args (string), firstDelta}]. */
function toolCallsOf(chunks) {
  const calls = [];
  for (const c of chunks) {
    for (const tc of c.choices?.[0]?.delta?.tool_calls ?? []) {
      assert.equal(typeof tc.index, 'number', `tool call delta without index: ${JSON.stringify(tc)}`);
      if (!calls[tc.index]) {
        calls[tc.index] = { id: tc.id, name: tc.function?.name, args: '', firstDelta: tc };
        assert.ok(tc.id, `the first delta of tool call ${tc.index} carries its id: ${JSON.stringify(tc)}`);
        assert.ok(tc.function?.name, `the first delta of tool call ${tc.index} carries the name: ${JSON.stringify(tc)}`);
      } else if (tc.id) {
        assert.equal(tc.id, calls[tc.index].id, 'tool call id stable across deltas');
      }
      calls[tc.index].args += tc.function?.arguments ?? '';
    }
  }
  return calls;
}

const finishReasons = (chunks) => chunks.flatMap((c) => (c.choices ?? []).map((ch) => ch.finish_reason)).filter((f) => f != null);

describe('anthropic and gemini plugins against the mock', () => {
  before(async () => {
    const anth = (model, price = CHEAP, extra = {}) => ep('anth', model, ...price, extra);
    const gem = (model, price = CHEAP, extra = {}) => ep('gem', model, ...price, extra);
    env = await startEnv({
      providers: [
        { name: 'anth', plugin: 'anthropic', base_url: 'MOCK/v1', api_key: 'ak', timeouts: { ...TIMEOUTS } },
        { name: 'gem', plugin: 'gemini', base_url: 'MOCK/v1beta', api_key: 'gk', timeouts: { ...TIMEOUTS } },
      ],
      models: {
        'a/echo': { endpoints: [anth('echo+a-ns', CHEAP, { max_completion_tokens: 321 })] },
        'a/stream': { endpoints: [anth('echo+a-st')] },
        'a/tools': { endpoints: [anth('tools+a-tools')] },
        'a/toolsst': { endpoints: [anth('tools+a-toolsst')] },
        'a/results': { endpoints: [anth('echo+a-results')] },
        'a/cache': { endpoints: [ep('anth', 'echo+cache+a-cache', '0', '0', { pricing: A_PRICE })] },
        'a/cachest': { endpoints: [ep('anth', 'echo+cache+a-cachest', '0', '0', { pricing: A_PRICE })] },
        'a/length': { endpoints: [anth('words-10+a-len')] },
        'a/crlfsplit': { endpoints: [anth('lorem+crlf+split+a-cs')] },
        'a/nodone': { endpoints: [anth('words-5+no-done+a-nd')] },
        'a/errmid': { endpoints: [anth('words-5+inband-error+a-em')] },
        'a/resetmid': { endpoints: [anth('words-10+reset-mid+a-rm')] },
        'x/fb529': { policy: 'price', endpoints: [anth('fail-529+fb'), gem('echo+fb', DEAR)] },
        'x/fb529s': { policy: 'price', endpoints: [anth('fail-529+fbs'), gem('echo+fbs', DEAR)] },
        'x/fberr': { policy: 'price', endpoints: [anth('inband-error-first+ef'), gem('echo+ef', DEAR)] },
        'g/echo': { endpoints: [gem('echo+g-ns')] },
        'g/stream': { endpoints: [gem('echo+g-st')] },
        'g/tools': { endpoints: [gem('tools+g-tools')] },
        'g/toolsst': { endpoints: [gem('tools+g-toolsst')] },
        'g/sig': { endpoints: [gem('tools+require-sig+g-sig')] },
        'g/cache': { endpoints: [ep('gem', 'echo+cache+g-cache', '0', '0', { pricing: G_PRICE })] },
        'g/cachest': { endpoints: [ep('gem', 'echo+cache+g-cachest', '0', '0', { pricing: G_PRICE })] },
        'g/length': { endpoints: [gem('words-10+g-len')] },
        'g/errmid': { endpoints: [gem('words-5+inband-error+g-em')] },
        'g/nodone': { endpoints: [gem('words-5+no-done+g-nd')] },
        'g/embed': { endpoints: [gem('g-embed', ['0.0000001', '0'])] },
        'a/only529': { endpoints: [anth('fail-529+only')] },
        'g/only429': { endpoints: [gem('fail-429+only')] },
        'g/only400': { endpoints: [gem('fail-400+only')] },
      },
      mutate(conf) {
        const origin = conf.providers.find((p) => p.name === 'up1').base_url.replace(/\/v1$/, '');
        for (const p of conf.providers) if (typeof p.base_url === 'string') p.base_url = p.base_url.replace(/^MOCK/, origin);
      },
    });
  });
  after(async () => {
    await env?.kill();
  });

  // ---- Anthropic ------------------------------------------------------------------------------------------------------

  test('anthropic non-stream: text, usage, provider; upstream body has system hoisted, max_tokens from the catalog, headers', async () => {
    const r = await env.post('/v1/chat/completions', {
      model: 'a/echo',
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: 'hello there world' },
      ],
      temperature: 1.7,
      stop: ['END'],
    });
    assert.equal(r.status, 200, r.text);
    const j = r.json;
    assert.equal(j.object, 'chat.completion');
    assert.equal(j.model, 'a/echo');
    assert.equal(j.provider, 'anth');
    assert.equal(j.choices[0].message.role, 'assistant');
    assert.equal(j.choices[0].message.content, 'hello there world');
    assert.equal(j.choices[0].finish_reason, 'stop');
    assert.equal(j.usage.prompt_tokens, 5); // "be brief" + "hello there world"
    assert.equal(j.usage.completion_tokens, 3);
    assert.equal(j.usage.total_tokens, 8);
    assertClose(j.usage.cost, 5 * 0.000001 + 3 * 0.000001, 'usage.cost');

    const last = await env.mockLast('echo+a-ns');
    assert.ok(last, 'the mock saw the request');
    const b = last.body;
    const sys = typeof b.system === 'string' ? b.system : b.system.map((x) => x.text).join('');
    assert.equal(sys, 'be brief', `system hoisted: ${JSON.stringify(b)}`);
    assert.deepEqual(
      b.messages.map((m) => m.role),
      ['user'],
    );
    assert.equal(b.max_tokens, 321, 'max_tokens = the endpoint max_completion_tokens');
    assert.ok(b.temperature <= 1, `temperature clamped to Anthropic's 0..1: ${b.temperature}`);
    assert.deepEqual(b.stop_sequences, ['END']);
    assert.notEqual(b.stream, true, "non-stream request upstream");
    assert.equal(last.headers['x-api-key'], 'ak');
    assert.ok(last.headers['anthropic-version'], 'anthropic-version header sent');
    assert.equal(last.headers.authorization, undefined, 'no bearer header to Anthropic');
  });

  test('anthropic stream: role first, text reassembles, stop, usage chunk, [DONE]', async () => {
    const r = await env.chatStream('a/stream', 'stream me back please', { stream_options: { include_usage: true } });
    wellFormed(r);
    assert.equal(r.chunks[0].choices[0].delta.role, 'assistant');
    assert.equal(deltaText(r.chunks), 'stream me back please');
    assert.deepEqual(finishReasons(r.chunks), ['stop']);
    const u = r.chunks[r.chunks.length - 1];
    assert.deepEqual(u.choices, [], 'usage chunk has choices: []');
    assert.equal(u.usage.prompt_tokens, 4);
    assert.equal(u.usage.completion_tokens, 4);
    for (const c of r.chunks) assert.equal(c.model, 'a/stream');
    const last = await env.mockLast('echo+a-st');
    assert.equal(last.body.stream, true);
  });

  test('anthropic tools non-stream: text + two tool_calls with parsed arguments, finish_reason tool_calls', async () => {
    const tools = [
      { type: 'function', function: { name: 'get_weather', description: 'w', parameters: { type: 'object', properties: {} } } },
      { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: {} } } },
    ];
    const r = await env.post('/v1/chat/completions', {
      model: 'a/tools',
      messages: [{ role: 'user', content: 'weather and time in Paris?' }],
      tools,
      tool_choice: 'required',
      parallel_tool_calls: false,
    });
    assert.equal(r.status, 200, r.text);
    const m = r.json.choices[0].message;
    assert.equal(r.json.choices[0].finish_reason, 'tool_calls');
    assert.equal(m.content, TOOLS_TEXT);
    assert.equal(m.tool_calls.length, 2);
    assert.deepEqual(
      m.tool_calls.map((t) => [t.id, t.type, t.function.name]),
      [
        ['toolu_mock_1', 'function', 'get_weather'],
        ['toolu_mock_2', 'function', 'get_time'],
      ],
    );
    assert.deepEqual(JSON.parse(m.tool_calls[0].function.arguments), WEATHER);
    assert.deepEqual(JSON.parse(m.tool_calls[1].function.arguments), TIME);
    const b = (await env.mockLast('tools+a-tools')).body;
    assert.deepEqual(
      b.tools.map((t) => [t.name, t.input_schema?.type]),
      [
        ['get_weather', 'object'],
        ['get_time', 'object'],
      ],
    );
    assert.equal(b.tool_choice.type, 'any', 'required -> any');
    assert.equal(b.tool_choice.disable_parallel_tool_use, true, 'parallel_tool_calls:false -> disable_parallel_tool_use');
  });

  test('anthropic tools stream: two tool calls, indexes 0 and 1 (block index != tool index), arguments reassemble', async () => {
    const r = await env.chatStream('a/toolsst', 'weather and time?', {
      tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } }],
    });
    wellFormed(r);
    assert.equal(r.chunks[0].choices[0].delta.role, 'assistant');
    assert.equal(deltaText(r.chunks), TOOLS_TEXT);
    const calls = toolCallsOf(r.chunks);
    assert.equal(calls.length, 2, JSON.stringify(calls));
    assert.deepEqual(
      calls.map((c) => [c.id, c.name]),
      [
        ['toolu_mock_1', 'get_weather'],
        ['toolu_mock_2', 'get_time'],
      ],
    );
    assert.equal(calls[0].firstDelta.type, 'function');
    assert.deepEqual(JSON.parse(calls[0].args), WEATHER);
    assert.deepEqual(JSON.parse(calls[1].args), TIME);
    assert.deepEqual(finishReasons(r.chunks), ['tool_calls']);
  });

  test('anthropic tool results: assistant tool_calls -> tool_use blocks, consecutive tool messages -> one user turn', async () => {
    const r = await env.post('/v1/chat/completions', {
      model: 'a/results',
      messages: [
        { role: 'system', content: 'sys one' },
        { role: 'user', content: 'weather and time?' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            { id: 'toolu_mock_1', type: 'function', function: { name: 'get_weather', arguments: JSON.stringify(WEATHER) } },
            { id: 'toolu_mock_2', type: 'function', function: { name: 'get_time', arguments: '' } },
          ],
        },
        { role: 'tool', tool_call_id: 'toolu_mock_1', content: 'sunny 21C' },
        { role: 'tool', tool_call_id: 'toolu_mock_2', content: '14:05' },
        { role: 'system', content: 'sys two' },
      ],
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.choices[0].finish_reason, 'stop');
    const b = (await env.mockLast('echo+a-results')).body;
    const sys = typeof b.system === 'string' ? b.system : b.system.map((x) => x.text).join('\n');
    assert.match(sys, /sys one[\s\S]*sys two/, 'every system message hoisted');
    assert.deepEqual(
      b.messages.map((m) => m.role),
      ['user', 'assistant', 'user'],
      JSON.stringify(b.messages),
    );
    const uses = b.messages[1].content.filter((x) => x.type === 'tool_use');
    assert.deepEqual(
      uses.map((u) => [u.id, u.name, u.input]),
      [
        ['toolu_mock_1', 'get_weather', WEATHER],
        ['toolu_mock_2', 'get_time', {}],
      ],
    );
    const results = b.messages[2].content;
    assert.deepEqual(
      results.map((x) => [x.type, x.tool_use_id]),
      [
        ['tool_result', 'toolu_mock_1'],
        ['tool_result', 'toolu_mock_2'],
      ],
    );
    const txt = (c) => (typeof c === 'string' ? c : c.map((x) => x.text).join(''));
    assert.equal(txt(results[0].content), 'sunny 21C');
    assert.equal(txt(results[1].content), '14:05');
  });

  for (const stream of [false, true]) {
    test(`anthropic cache tokens (${stream ? 'stream' : 'non-stream'}): prompt_tokens, cached/write details, cost from catalog cache prices`, async () => {
      const model = stream ? 'a/cachest' : 'a/cache';
      const content = 'cache these five words';
      let u;
      if (stream) {
        const r = await env.chatStream(model, content, { stream_options: { include_usage: true } });
        wellFormed(r);
        assert.equal(deltaText(r.chunks), content);
        u = r.chunks[r.chunks.length - 1].usage;
      } else {
        const r = await env.chat(model, content);
        assert.equal(r.status, 200, r.text);
        u = r.json.usage;
      }
      const input = words(content);
      const output = words(content);
      assert.equal(u.prompt_tokens, input + A_CACHE_WRITE + A_CACHE_READ, 'prompt = input + cache_creation + cache_read');
      assert.equal(u.completion_tokens, output);
      assert.equal(u.total_tokens, u.prompt_tokens + u.completion_tokens);
      assert.equal(u.prompt_tokens_details?.cached_tokens, A_CACHE_READ, JSON.stringify(u));
      assert.equal(u.prompt_tokens_details?.cache_write_tokens, A_CACHE_WRITE, JSON.stringify(u));
      const cost =
        input * Number(A_PRICE.prompt) +
        A_CACHE_WRITE * Number(A_PRICE.input_cache_write) +
        A_CACHE_READ * Number(A_PRICE.input_cache_read) +
        output * Number(A_PRICE.completion);
      assertClose(u.cost, cost, 'cost with cache reads and writes priced separately');
    });
  }

  test('anthropic max_tokens stop -> finish_reason "length"', async () => {
    const r = await env.chat('a/length', 'x', { max_tokens: 3 });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.choices[0].message.content, 'w1 w2 w3');
    assert.equal(r.json.choices[0].finish_reason, 'length');
    assert.equal((await env.mockLast('words-10+a-len')).body.max_tokens, 3);
    const s = await env.chatStream('a/length', 'x', { max_completion_tokens: 2 });
    wellFormed(s);
    assert.equal(deltaText(s.chunks), 'w1 w2');
    assert.deepEqual(finishReasons(s.chunks), ['length']);
  });

  test('anthropic stream with CRLF line endings split into 7-byte pieces reassembles', async () => {
    const r = await env.chatStream('a/crlfsplit', 'x');
    wellFormed(r);
    assert.equal(deltaText(r.chunks).split(/\s+/).length, 58);
    assert.deepEqual(finishReasons(r.chunks), ['stop']);
  });

  test('anthropic error event after content -> error chunk with finish_reason "error", then [DONE]', async () => {
    const r = await env.chatStream('a/errmid', 'x');
    const ec = endsWithError(r);
    assert.ok(deltaText(r.chunks).startsWith('w1'), `content before the error: ${r.raw}`);
    assert.match(JSON.stringify(ec.error), /overload/i);
  });

  test('anthropic stream without message_stop -> error chunk, never a silent success', async () => {
    // the mock sends message_delta (stop_reason end_turn) but no message_stop: the plugin maps message_delta to the
    // finish chunk as it arrives, so a "stop" may precede the error; what matters is that the stream ends in an error
    const r = await env.chatStream('a/nodone', 'x');
    wellFormed(r);
    assert.equal(deltaText(r.chunks), 'w1 w2 w3 w4 w5');
    const withChoices = r.chunks.filter((c) => c.choices?.length);
    const lastChoice = withChoices[withChoices.length - 1];
    assert.equal(lastChoice.choices[0].finish_reason, 'error', `the stream ends with an error chunk:\n${r.raw}`);
    assert.ok(lastChoice.error && typeof lastChoice.error.message === 'string', JSON.stringify(lastChoice));
    assert.equal(r.chunks.filter((c) => c.choices?.some((ch) => ch.finish_reason === 'error')).length, 1);
  });

  test('anthropic connection reset mid-stream -> error chunk', async () => {
    const r = await env.chatStream('a/resetmid', 'x');
    endsWithError(r);
    assert.ok(deltaText(r.chunks).startsWith('w1'));
  });

  // ---- fallback between plugins -----------------------------------------------------------------------------------------

  test('anthropic 529 overloaded -> falls back to the gemini endpoint of the same model (provider gem)', async () => {
    for (const stream of [false, true]) {
      const failing = stream ? 'fail-529+fbs' : 'fail-529+fb';
      if (!stream) {
        const r = await env.chat('x/fb529', 'fall back to gemini');
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.provider, 'gem');
        assert.equal(r.json.choices[0].message.content, 'fall back to gemini');
      } else {
        const r = await env.chatStream('x/fb529s', 'fall back to gemini');
        wellFormed(r);
        assert.equal(deltaText(r.chunks), 'fall back to gemini');
        assert.ok(!r.chunks.some((c) => c.error), r.raw);
        assert.equal(r.chunks.find((c) => c.provider)?.provider, 'gem', r.raw);
      }
      assert.equal(await env.mockCount(failing), 1, 'anthropic tried first (cheapest), once');
      assert.equal(await env.mockCount(stream ? 'echo+fbs' : 'echo+fb'), 1);
    }
  });

  test('anthropic error event before any content -> falls back to gemini, client sees a clean stream', async () => {
    const r = await env.chatStream('x/fberr', 'after an early error');
    wellFormed(r);
    assert.ok(!r.chunks.some((c) => c.error), `no error chunk:\n${r.raw}`);
    assert.equal(deltaText(r.chunks), 'after an early error');
    assert.equal(r.chunks[0].choices[0].delta.role, 'assistant');
    assert.ok(
      r.chunks.every((c) => c.provider === 'gem'),
      `nothing from the failed anthropic attempt reaches the client:\n${r.raw}`,
    );
    assert.deepEqual(finishReasons(r.chunks), ['stop']);
    assert.equal(await env.mockCount('inband-error-first+ef'), 1);
    assert.equal(await env.mockCount('echo+ef'), 1);
  });

  // ---- Gemini ---------------------------------------------------------------------------------------------------------

  test('gemini non-stream: text, usage, provider; upstream body has systemInstruction/contents, key in x-goog-api-key', async () => {
    const r = await env.post('/v1/chat/completions', {
      model: 'g/echo',
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: 'hello gemini world' },
      ],
      max_tokens: 50,
      temperature: 0.5,
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.provider, 'gem');
    assert.equal(r.json.choices[0].message.content, 'hello gemini world');
    assert.equal(r.json.choices[0].finish_reason, 'stop');
    assert.equal(r.json.usage.prompt_tokens, 5);
    assert.equal(r.json.usage.completion_tokens, 3);
    const last = await env.mockLast('echo+g-ns');
    assert.ok(last, 'the mock saw the request under the URL model');
    const b = last.body;
    assert.deepEqual(b.systemInstruction.parts.map((p) => p.text).join(''), 'be brief');
    assert.deepEqual(b.contents, [{ role: 'user', parts: [{ text: 'hello gemini world' }] }]);
    assert.equal(b.generationConfig.maxOutputTokens, 50);
    assert.equal(b.generationConfig.temperature, 0.5);
    assert.equal(last.headers['x-goog-api-key'], 'gk');
    assert.equal(last.headers.authorization, undefined);
  });

  test('gemini stream (alt=sse, CRLF, no [DONE] upstream): text, stop, usage from the last chunk, [DONE] added', async () => {
    const r = await env.chatStream('g/stream', 'stream gemini text back', { stream_options: { include_usage: true } });
    wellFormed(r);
    assert.equal(r.chunks[0].choices[0].delta.role, 'assistant');
    assert.equal(deltaText(r.chunks), 'stream gemini text back');
    assert.deepEqual(finishReasons(r.chunks), ['stop']);
    const u = r.chunks[r.chunks.length - 1].usage;
    assert.equal(u.prompt_tokens, 4);
    assert.equal(u.completion_tokens, 4);
  });

  test('gemini tools non-stream: two tool calls with ids, parsed args, thought_signature on the first', async () => {
    const r = await env.chat('g/tools', 'weather and time?', {
      tools: [
        { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: {}, additionalProperties: false } } },
        { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: {} } } },
      ],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
    });
    assert.equal(r.status, 200, r.text);
    const m = r.json.choices[0].message;
    assert.equal(r.json.choices[0].finish_reason, 'tool_calls');
    assert.equal(m.tool_calls.length, 2);
    assert.deepEqual(
      m.tool_calls.map((t) => t.function.name),
      ['get_weather', 'get_time'],
    );
    assert.ok(m.tool_calls[0].id && m.tool_calls[1].id && m.tool_calls[0].id !== m.tool_calls[1].id, 'synthesised distinct ids');
    assert.deepEqual(JSON.parse(m.tool_calls[0].function.arguments), WEATHER);
    assert.deepEqual(JSON.parse(m.tool_calls[1].function.arguments), TIME);
    assert.equal(m.tool_calls[0].extra_content?.google?.thought_signature, SIG);
    const b = (await env.mockLast('tools+g-tools')).body;
    const decls = b.tools.flatMap((t) => t.functionDeclarations ?? []);
    assert.deepEqual(
      decls.map((d) => d.name),
      ['get_weather', 'get_time'],
    );
    assert.equal(JSON.stringify(decls).includes('additionalProperties'), false, 'schema keywords Gemini rejects are stripped');
    assert.equal(b.toolConfig.functionCallingConfig.mode, 'ANY');
    assert.deepEqual(b.toolConfig.functionCallingConfig.allowedFunctionNames, ['get_weather']);
  });

  test('gemini tools stream: each functionCall whole in one chunk -> tool_calls indexes 0 and 1, full arguments', async () => {
    const r = await env.chatStream('g/toolsst', 'weather and time?');
    wellFormed(r);
    const calls = toolCallsOf(r.chunks);
    assert.equal(calls.length, 2, r.raw);
    assert.deepEqual(
      calls.map((c) => c.name),
      ['get_weather', 'get_time'],
    );
    assert.deepEqual(JSON.parse(calls[0].args), WEATHER);
    assert.deepEqual(JSON.parse(calls[1].args), TIME);
    assert.equal(calls[0].firstDelta.extra_content?.google?.thought_signature, SIG, JSON.stringify(calls[0].firstDelta));
    assert.deepEqual(finishReasons(r.chunks), ['tool_calls']);
  });

  test('gemini thoughtSignature round trip: the second upstream request carries the signature on the functionCall', async () => {
    const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } }];
    const first = await env.chat('g/sig', 'weather in Paris?', { tools });
    assert.equal(first.status, 200, first.text);
    const msg = first.json.choices[0].message;
    assert.equal(msg.tool_calls.length, 2);
    const second = await env.post('/v1/chat/completions', {
      model: 'g/sig',
      tools,
      messages: [
        { role: 'user', content: 'weather in Paris?' },
        { role: 'assistant', content: msg.content ?? null, tool_calls: msg.tool_calls },
        { role: 'tool', tool_call_id: msg.tool_calls[0].id, content: '{"temp":21}' },
        { role: 'tool', tool_call_id: msg.tool_calls[1].id, content: '{"time":"14:05"}' },
      ],
    });
    // the mock (require-sig) answers 400 INVALID_ARGUMENT like Gemini 3 when the signature is missing
    assert.equal(second.status, 200, second.text);
    const last = await env.mockLast('tools+require-sig+g-sig');
    assert.equal(last.count, 2);
    const contents = last.body.contents;
    assert.deepEqual(
      contents.map((c) => c.role),
      ['user', 'model', 'user'],
      JSON.stringify(contents),
    );
    const calls = contents[1].parts.filter((p) => p.functionCall);
    assert.equal(calls.length, 2);
    assert.equal(calls[0].thoughtSignature, SIG, 'signature byte for byte');
    assert.deepEqual(calls[0].functionCall.args, WEATHER);
    const responses = contents[2].parts.filter((p) => p.functionResponse);
    assert.deepEqual(
      responses.map((p) => p.functionResponse.name),
      ['get_weather', 'get_time'],
      'function responses mapped back by name and order',
    );
  });

  for (const stream of [false, true]) {
    test(`gemini cached tokens (${stream ? 'stream' : 'non-stream'}): cached_tokens is a subset of prompt_tokens, cost from the catalog`, async () => {
      const model = stream ? 'g/cachest' : 'g/cache';
      const content = 'cached gemini prompt';
      let u;
      if (stream) {
        const r = await env.chatStream(model, content, { stream_options: { include_usage: true } });
        wellFormed(r);
        u = r.chunks[r.chunks.length - 1].usage;
      } else {
        const r = await env.chat(model, content);
        assert.equal(r.status, 200, r.text);
        u = r.json.usage;
      }
      const input = words(content);
      assert.equal(u.prompt_tokens, input + G_CACHED, 'promptTokenCount already includes the cached tokens');
      assert.equal(u.prompt_tokens_details?.cached_tokens, G_CACHED, JSON.stringify(u));
      assert.equal(u.completion_tokens, input);
      const cost = input * Number(G_PRICE.prompt) + G_CACHED * Number(G_PRICE.input_cache_read) + input * Number(G_PRICE.completion);
      assertClose(u.cost, cost, 'gemini cost');
    });
  }

  test('gemini MAX_TOKENS -> finish_reason "length"', async () => {
    const r = await env.chat('g/length', 'x', { max_tokens: 4 });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.choices[0].message.content, 'w1 w2 w3 w4');
    assert.equal(r.json.choices[0].finish_reason, 'length');
  });

  test('gemini in-band {"error":...} mid-stream -> error chunk, never "stop"', async () => {
    const r = await env.chatStream('g/errmid', 'x');
    const ec = endsWithError(r);
    assert.ok(deltaText(r.chunks).startsWith('w1'), r.raw);
    assert.match(JSON.stringify(ec.error), /overloaded|UNAVAILABLE|503/i);
  });

  test('gemini stream ending without finishReason -> error chunk, never a silent stop', async () => {
    const r = await env.chatStream('g/nodone', 'x');
    endsWithError(r);
    assert.equal(deltaText(r.chunks), 'w1 w2 w3 w4 w5');
  });

  test('embeddings through gemini :batchEmbedContents', async () => {
    const r = await env.post('/v1/embeddings', { model: 'g/embed', input: ['one two', 'three'] });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.object, 'list');
    assert.equal(r.json.data.length, 2);
    assert.deepEqual(
      r.json.data.map((d) => d.index),
      [0, 1],
    );
    const last = await env.mockLast('g-embed');
    assert.deepEqual(last.body.requests, [
      { model: 'models/g-embed', content: { parts: [{ text: 'one two' }] } },
      { model: 'models/g-embed', content: { parts: [{ text: 'three' }] } },
    ]);
    assert.equal(last.headers['x-goog-api-key'], 'gk');
    // the same vectors as the mock answers directly
    const direct = await httpPost(env.mockBase, '/v1beta/models/g-embed:batchEmbedContents', last.body, { 'x-goog-api-key': 'gk' });
    assert.equal(direct.status, 200, direct.text);
    assert.deepEqual(
      r.json.data.map((d) => d.embedding),
      direct.json.embeddings.map((e) => e.values),
    );
  });

  test('upstream errors in each provider\'s shape are classified: 529 -> 503 overloaded, RESOURCE_EXHAUSTED -> 429, 400 not retried', async () => {
    let e = assertError(await env.chat('a/only529', 'x'), 503, { type: 'provider_overloaded' });
    assert.equal(e.metadata?.provider_code, 'overloaded_error', JSON.stringify(e));
    e = assertError(await env.chat('g/only429', 'x'), 429, { type: 'rate_limit_exceeded' });
    assert.equal(e.metadata?.provider_code, 'RESOURCE_EXHAUSTED', JSON.stringify(e));
    e = assertError(await env.chat('g/only400', 'x'), 400);
    assert.match(e.message, /mock failure 400/);
    assert.equal(await env.mockCount('fail-400+only'), 1, 'a 400 is not retried');
  });

  test('gateway exits 0 on SIGTERM', async () => {
    await env.stop();
  });
});
