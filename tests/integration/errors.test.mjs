// SPDX-License-Identifier: MIT
// Error shapes and status codes: {"error":{"code":<status>,"message","type","metadata"}}.
import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import { startEnv, gwTest, ep, assertError } from './harness.mjs';

let env;
const test = gwTest(() => env);
const msgs = [{ role: 'user', content: 'hello there' }];

describe('errors', () => {
  before(async () => {
    env = await startEnv({
      limits: { max_body_bytes: 65536 },
      models: {
        'test/all500': { endpoints: [ep('up1', 'fail-500'), ep('up2', 'fail-500+b')] },
        'test/all503': { endpoints: [ep('up1', 'fail-503'), ep('up2', 'fail-503+b')] },
        'test/all429': { endpoints: [ep('up1', 'fail-429')] },
        'test/bad400': { endpoints: [ep('up1', 'fail-400'), ep('up2', 'echo+after400')] },
        'test/two': { endpoints: [ep('up1', 'echo', '0.000001', '0.000002'), ep('up2', 'echo', '0.000002', '0.000002')] },
      },
    });
  });
  after(async () => {
    await env?.kill();
  });

  test('malformed JSON -> 400', async () => {
    assertError(await env.post('/v1/chat/completions', '{"model":"test/echo","messages":['), 400);
  });

  test('body not a JSON object -> 400', async () => {
    assertError(await env.post('/v1/chat/completions', '[1,2,3]'), 400);
  });

  test('messages not an array -> 400 naming messages', async () => {
    assertError(await env.post('/v1/chat/completions', { model: 'test/echo', messages: 'hi' }), 400, { mentions: 'messages' });
  });

  test('messages missing -> 400 naming messages', async () => {
    assertError(await env.post('/v1/chat/completions', { model: 'test/echo' }), 400, { mentions: 'messages' });
  });

  test('model missing -> 400 naming model', async () => {
    assertError(await env.post('/v1/chat/completions', { messages: msgs }), 400, { mentions: 'model' });
  });

  test('temperature:"hot" -> 400 naming temperature', async () => {
    assertError(await env.post('/v1/chat/completions', { model: 'test/echo', messages: msgs, temperature: 'hot' }), 400, {
      mentions: 'temperature',
    });
  });

  test('stream:"yes" -> 400 naming stream', async () => {
    assertError(await env.post('/v1/chat/completions', { model: 'test/echo', messages: msgs, stream: 'yes' }), 400, {
      mentions: 'stream',
    });
  });

  test('unknown model -> 400 model_not_found', async () => {
    assertError(await env.post('/v1/chat/completions', { model: 'nope/missing', messages: msgs }), 400, {
      type: 'model_not_found',
    });
  });

  test('provider.only leaving nothing -> 404', async () => {
    const e = assertError(
      await env.post('/v1/chat/completions', { model: 'test/two', messages: msgs, provider: { only: ['nobody'] } }),
      404,
    );
    assert.ok(e.type || e.metadata, 'reason given');
  });

  test('provider.max_price leaving nothing -> 404 constraint_filtered', async () => {
    // prices are 1 and 2 USD per million prompt tokens; max_price is per million
    assertError(
      await env.post('/v1/chat/completions', { model: 'test/two', messages: msgs, provider: { max_price: { prompt: 0.5 } } }),
      404,
      { type: 'constraint_filtered' },
    );
  });

  test('provider.max_price keeping one endpoint -> 200 from the cheap one', async () => {
    const r = await env.post('/v1/chat/completions', {
      model: 'test/two',
      messages: msgs,
      provider: { max_price: { prompt: 1.5 } },
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.provider, 'up1');
  });

  test('unknown provider field -> 400 naming it', async () => {
    assertError(
      await env.post('/v1/chat/completions', { model: 'test/echo', messages: msgs, provider: { bogus_pref: true } }),
      400,
      { mentions: 'bogus_pref' },
    );
  });

  test('provider.order of wrong type -> 400 naming order', async () => {
    assertError(await env.post('/v1/chat/completions', { model: 'test/echo', messages: msgs, provider: { order: 'up1' } }), 400, {
      mentions: 'order',
    });
  });

  test('body over limits.max_body_bytes -> 413', async () => {
    const big = 'x'.repeat(100 * 1024);
    let r;
    try {
      r = await env.post('/v1/chat/completions', { model: 'test/echo', messages: [{ role: 'user', content: big }] });
    } catch (e) {
      assert.fail(`connection failed instead of a 413 response: ${e.cause?.code || e.message}`);
    }
    assertError(r, 413);
    // and a normal request still works afterwards
    assert.equal((await env.chat('test/echo')).status, 200);
  });

  test('GET /v1/chat/completions -> 405 with Allow', async () => {
    const r = await env.get('/v1/chat/completions');
    assertError(r, 405);
    assert.match(r.headers.get('allow') || '', /POST/);
  });

  test('POST /v1/models -> 405', async () => {
    assertError(await env.post('/v1/models', {}), 405);
  });

  test('unknown path -> 404 JSON', async () => {
    assertError(await env.get('/v1/does-not-exist'), 404);
    assertError(await env.post('/nowhere', {}), 404);
  });

  test('all providers 500 -> 502 with metadata.attempts', async () => {
    await env.mockReset();
    const r = await env.post('/v1/chat/completions', { model: 'test/all500', messages: msgs });
    const e = assertError(r, 502);
    const attempts = e.metadata?.attempts;
    assert.ok(Array.isArray(attempts), `metadata.attempts: ${r.text}`);
    assert.equal(attempts.length, 2, r.text);
    assert.deepEqual(attempts.map((a) => a.provider).sort(), ['up1', 'up2']);
    for (const a of attempts) assert.equal(a.status, 500, JSON.stringify(a));
    assert.equal(await env.mockCount('fail-500'), 1);
    assert.equal(await env.mockCount('fail-500+b'), 1);
  });

  test('all providers 503 -> 503', async () => {
    const r = await env.post('/v1/chat/completions', { model: 'test/all503', messages: msgs });
    const e = assertError(r, 503);
    assert.equal(e.metadata?.attempts?.length, 2, r.text);
  });

  test('streaming request, all providers 500 -> 502 JSON (nothing streamed yet)', async () => {
    const r = await env.chatStream('test/all500');
    assert.equal(r.status, 502, r.raw);
    assert.equal(r.json?.error?.code, 502, r.raw);
  });

  test('only provider 429 -> 429', async () => {
    const r = await env.post('/v1/chat/completions', { model: 'test/all429', messages: msgs });
    assertError(r, 429);
  });

  test('upstream 400 (client error) -> 400 error, no other provider tried', async () => {
    await env.mockReset();
    const r = await env.post('/v1/chat/completions', {
      model: 'test/bad400',
      messages: msgs,
      provider: { order: ['up1', 'up2'] },
    });
    assertError(r, 400);
    assert.equal(await env.mockCount('echo+after400'), 0, 'a 400 is not retried on another provider');
  });

  test('gateway still healthy after all errors', async () => {
    assert.equal((await env.get('/health')).status, 200);
    assert.equal((await env.chat('test/echo')).status, 200);
  });

  test('gateway exits 0 on SIGTERM', async () => {
    await env.stop();
  });
});
