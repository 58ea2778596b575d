// SPDX-License-Identifier: MIT
// Streaming rules (OpenRouter's SSE behaviour, providers' framing quirks): keep-alive comments, upstream comments, CRLF / split
// framing, mid-stream failures (error chunk + [DONE], never a fake "stop"), in-band errors, EOF without completion.
import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import { startEnv, gwTest, ep, deltaText } from './harness.mjs';

let env;
const test = gwTest(() => env);
const W10 = Array.from({ length: 10 }, (_, i) => `w${i + 1}`).join(' ');
const W30 = Array.from({ length: 30 }, (_, i) => `w${i + 1}`).join(' ');

/** Common well-formedness: every data payload is JSON or [DONE]; [DONE] last; no comment wrapped in data. */
function wellFormed(r) {
  assert.deepEqual(r.bad, [], `non-JSON data payloads: ${JSON.stringify(r.bad)}`);
  for (const d of r.data) assert.ok(!d.startsWith(':'), `comment wrapped in data: ${d}`);
  for (const d of r.data) assert.ok(!/PROCESSING/.test(d), `keep-alive inside a data line: ${d}`);
  assert.equal(r.doneIndex, r.data.length - 1, `[DONE] must be the last data event:\n${r.raw}`);
  assert.ok(/data: \[DONE\]\s*$/.test(r.raw), 'nothing after [DONE]');
}

/** A mid-stream failure: exactly one error chunk with finish_reason "error", never "stop", then [DONE]. */
function endsWithError(r) {
  assert.equal(r.status, 200, r.raw);
  wellFormed(r);
  const errChunks = r.chunks.filter((c) => c.choices?.some((ch) => ch.finish_reason === 'error'));
  assert.equal(errChunks.length, 1, `one finish_reason:"error" chunk expected:\n${r.raw}`);
  const ec = errChunks[0];
  assert.ok(ec.error && typeof ec.error === 'object', `error object in the error chunk: ${JSON.stringify(ec)}`);
  assert.equal(typeof ec.error.message, 'string');
  assert.equal(typeof ec.error.code, 'number');
  assert.ok(!r.chunks.some((c) => c.choices?.some((ch) => ch.finish_reason === 'stop')), `fake "stop" after an error:\n${r.raw}`);
  // the error chunk comes after any content chunk
  const idx = r.chunks.indexOf(ec);
  assert.ok(r.chunks.slice(idx + 1).every((c) => !c.choices?.length || !c.choices[0].delta?.content), 'no content after error');
  return ec;
}

describe('streaming', () => {
  before(async () => {
    env = await startEnv({
      routing: { keepalive_interval_ms: 300 },
      models: {
        'test/delay': { endpoints: [ep('up1', 'delay-1200')] },
        'test/comments': { endpoints: [ep('up1', 'words-10+comments')] },
        'test/plain': { endpoints: [ep('up1', 'words-30')] },
        'test/crlf': { endpoints: [ep('up1', 'words-30+crlf')] },
        'test/split': { endpoints: [ep('up1', 'words-30+split')] },
        'test/crlfsplit': { endpoints: [ep('up1', 'words-30+crlf+split+comments')] },
        'test/echosplit': { endpoints: [ep('up1', 'echo+split')] },
        'test/resetmid': { endpoints: [ep('up1', 'words-10+reset-mid')] },
        'test/resetmid-fb': { policy: 'price', endpoints: [ep('up1', 'words-10+reset-mid+fb', '0.000001', '0.000001'), ep('up2', 'echo+rmfb', '0.000002', '0.000002')] },
        'test/inbandfirst': {
          policy: 'price',
          endpoints: [ep('up1', 'inband-error-first', '0.000001', '0.000001'), ep('up2', 'echo+ibf', '0.000002', '0.000002')],
        },
        'test/inband': { endpoints: [ep('up1', 'words-10+inband-error')] },
        'test/nodone': { endpoints: [ep('up1', 'words-10+no-done')] },
        'test/garbagesse': { endpoints: [ep('up1', 'garbage-sse')] },
        'test/idle': { endpoints: [ep('up1', 'words-5+slow-1500')] },
        'test/toolsstream': { endpoints: [ep('up1', 'tools+split+crlf')] },
      },
    });
  });
  after(async () => {
    await env?.kill();
  });

  test('slow first token: ": PROCESSING" comments while waiting, never inside data lines', async () => {
    const r = await env.chatStream('test/delay', 'wait for it');
    assert.equal(r.status, 200, r.raw);
    wellFormed(r);
    const ka = r.comments.filter((c) => /PROCESSING/.test(c));
    assert.ok(ka.length >= 2, `expected keep-alive comments during a 1200 ms wait (every 300 ms), got ${JSON.stringify(r.comments)}`);
    const firstData = r.items.findIndex((i) => i.type === 'data');
    const firstKa = r.items.findIndex((i) => i.type === 'comment' && /PROCESSING/.test(i.value));
    assert.ok(firstKa >= 0 && firstKa < firstData, 'keep-alives precede the first data event');
    assert.equal(deltaText(r.chunks), 'wait for it');
  });

  test('upstream comments forwarded as comments, never as data', async () => {
    const r = await env.chatStream('test/comments');
    assert.equal(r.status, 200, r.raw);
    wellFormed(r);
    assert.ok(r.comments.some((c) => /keep-alive/.test(c)), `upstream ": keep-alive" comments forwarded: ${JSON.stringify(r.comments)}`);
    assert.equal(deltaText(r.chunks), W10);
  });

  for (const m of ['test/plain', 'test/crlf', 'test/split', 'test/crlfsplit']) {
    test(`framing ${m}: same content as plain`, async () => {
      const r = await env.chatStream(m);
      assert.equal(r.status, 200, r.raw);
      wellFormed(r);
      assert.equal(deltaText(r.chunks), W30);
      assert.ok(r.chunks.some((c) => c.choices?.[0]?.finish_reason === 'stop'));
      const last = r.chunks[r.chunks.length - 1];
      assert.equal(last.usage?.completion_tokens, 30, 'usage chunk last');
    });
  }

  test('UTF-8 split across upstream reads survives (echo+split)', async () => {
    const text = 'héllo wörld — 你好世界 🎉🎉 ok';
    const r = await env.chatStream('test/echosplit', text);
    assert.equal(r.status, 200, r.raw);
    wellFormed(r);
    assert.equal(deltaText(r.chunks), text);
  });

  test('tool-call deltas through CRLF + split framing', async () => {
    const r = await env.chatStream('test/toolsstream');
    assert.equal(r.status, 200, r.raw);
    wellFormed(r);
    const args = {};
    for (const c of r.chunks)
      for (const tc of c.choices?.[0]?.delta?.tool_calls || []) args[tc.index] = (args[tc.index] || '') + (tc.function?.arguments || '');
    assert.deepEqual(JSON.parse(args[0]), { location: 'Paris', unit: 'celsius' });
    assert.deepEqual(JSON.parse(args[1]), { timezone: 'Europe/Paris' });
  });

  test('reset mid-stream after content -> error chunk (finish_reason "error") then [DONE]', async () => {
    const r = await env.chatStream('test/resetmid');
    const ec = endsWithError(r);
    assert.ok(deltaText(r.chunks).startsWith('w1'), 'content before the error was delivered');
    assert.equal(ec.choices[0].finish_reason, 'error');
  });

  test('reset mid-stream never fails over once content was sent', async () => {
    const r = await env.chatStream('test/resetmid-fb');
    endsWithError(r);
    assert.equal(await env.mockCount('echo+rmfb'), 0, 'no failover after the commit point');
  });

  test('in-band error as the first event -> falls back, client sees a normal stream', async () => {
    const r = await env.chatStream('test/inbandfirst', 'from the fallback');
    assert.equal(r.status, 200, r.raw);
    wellFormed(r);
    assert.equal(deltaText(r.chunks), 'from the fallback');
    assert.ok(!r.chunks.some((c) => c.error), `no error chunk:\n${r.raw}`);
    assert.ok(r.chunks.some((c) => c.choices?.[0]?.finish_reason === 'stop'));
    assert.equal(r.chunks[0].provider, 'up2');
    assert.equal(await env.mockCount('inband-error-first'), 1);
  });

  test('in-band error after content -> error chunk', async () => {
    const r = await env.chatStream('test/inband');
    const ec = endsWithError(r);
    assert.match(ec.error.message, /mock in-band error/);
  });

  test('EOF without finish/[DONE] (no-done) -> error chunk, not stop', async () => {
    const r = await env.chatStream('test/nodone');
    endsWithError(r);
    assert.equal(deltaText(r.chunks), W10);
  });

  test('garbage SSE from the only endpoint -> 502 JSON or an error chunk', async () => {
    const r = await env.chatStream('test/garbagesse');
    if (r.status === 200) {
      endsWithError(r);
    } else {
      assert.equal(r.status, 502, r.raw);
      assert.equal(r.json?.error?.code, 502, r.raw);
    }
  });

  test('idle timeout between chunks (slow-1500 > idle_ms 1000) -> error, never stop', async () => {
    const t0 = Date.now();
    const r = await env.chatStream('test/idle');
    assert.ok(Date.now() - t0 < 9000);
    if (r.status === 200) {
      endsWithError(r);
    } else {
      assert.ok([502, 504].includes(r.status), r.raw);
      assert.equal(r.json?.error?.code, r.status, r.raw);
    }
  });

  test('gateway exits 0 on SIGTERM', async () => {
    await env.stop();
  });
});
