// SPDX-License-Identifier: MIT
// The request pipeline end to end (src/pipeline/): upstream replies the client could not trust are upstream failures
// (fall over before the commit point, error chunk + [DONE] after it), the in-process provider's errors answer and fall
// back, a failed attempt's buffered body is not leaked, a stream that failed after the commit point is logged with its
// error and with the tokens it was billed for, and a stream cut at the shutdown deadline ends properly and is recorded.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe } from 'node:test';
import { startEnv, gwTest, ep, httpGet, waitFor, expectedCost, assertClose, deltaText, parseSse } from './harness.mjs';

const CHEAP = ['0.000001', '0.000002'];
const DEAR = ['0.000003', '0.000004'];
const KINDS = ['json', 'utf8', 'content', 'finish', 'nullchoice'];
const pair = (failing, good, failingProvider = 'up1') => ({
  policy: 'price',
  endpoints: [ep(failingProvider, failing, ...CHEAP), ep('up2', good, ...DEAR)],
});

function rssKb(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]);
}

/** The access-log record of generation id (written at settlement; polled). */
async function accessRecord(env, id) {
  return waitFor(() => env.accessLog().map((l) => JSON.parse(l)).find((r) => r.id === id), 5000, 50);
}

/** Asserts a stream ended after its commit point: some content, then an error chunk, then [DONE], no normal finish. */
function assertErrorAfterCommit(r, { contentBefore = true } = {}) {
  assert.equal(r.status, 200, r.raw);
  assert.ok(r.doneIndex >= 0, `no [DONE]: ${r.raw}`);
  assert.equal(r.doneIndex, r.data.length - 1, `[DONE] is not last: ${r.raw}`);
  assert.equal(r.bad.length, 0, `unparsable chunks reached the client: ${r.bad}`);
  const errIdx = r.chunks.findIndex((c) => c.error);
  assert.ok(errIdx >= 0, `no error chunk: ${r.raw}`);
  const err = r.chunks[errIdx];
  assert.equal(err.choices[0].finish_reason, 'error');
  assert.equal(typeof err.error.message, 'string');
  assert.ok(err.error.code >= 500, JSON.stringify(err));
  if (contentBefore) assert.ok(deltaText(r.chunks.slice(0, errIdx)).length > 0, `no content before the error: ${r.raw}`);
  for (const c of r.chunks) {
    for (const ch of c.choices || []) {
      assert.notEqual(ch.finish_reason, 'stop', `a failed stream must not end with stop: ${r.raw}`);
      if (ch.delta && ch.delta.content !== undefined && ch.delta.content !== null)
        assert.equal(typeof ch.delta.content, 'string', `malformed content forwarded: ${r.raw}`);
    }
  }
  return err;
}

describe('pipeline: upstream faults, in-process provider errors, settlement', () => {
  let env;
  const test = gwTest(() => env);
  before(async () => {
    const models = {
      'test/onlydone': pair('only-done', 'echo+od'),
      'test/late-single': { endpoints: [ep('up1', 'corrupt-mid-content+single', ...CHEAP)] },
      'test/mock-err-fb': { endpoints: [ep('mock', 'error-500', ...CHEAP)] },
      'test/mock-503': { endpoints: [ep('mock', 'error-503', ...CHEAP)] },
      'test/mock-unknown': pair('no-such-model', 'echo+mu', 'mock'),
      'test/mock-err-pair': pair('error-502', 'echo+mp', 'mock'),
      'test/after-mock': { endpoints: [ep('up2', 'echo+after', ...DEAR)] },
      'test/leak': { endpoints: [ep('up1', 'corrupt-json+words-30000+leak', ...CHEAP), ep('up2', 'echo+leak', ...DEAR)] },
    };
    for (const k of KINDS) {
      models[`test/early-${k}`] = pair(`corrupt-${k}+e`, `echo+e${k}`);
      models[`test/late-${k}`] = pair(`corrupt-mid-${k}+l`, `echo+l${k}`);
      models[`test/body-${k}`] = pair(`corrupt-${k}+b`, `echo+b${k}`);
    }
    env = await startEnv({ models, limits: { max_upstream_bytes: 262144 } });
  });
  after(async () => {
    await env?.kill();
  });

  for (const k of KINDS) {
    test(`stream: a broken event before any content (${k}) -> falls over to the next endpoint`, async () => {
      const r = await env.chatStream(`test/early-${k}`, 'two words');
      assert.equal(r.status, 200, r.raw);
      assert.equal(r.bad.length, 0);
      assert.ok(!r.chunks.some((c) => c.error), `error chunk although a fallback answered: ${r.raw}`);
      assert.equal(deltaText(r.chunks), 'two words');
      assert.equal(r.chunks.at(-1).provider, 'up2');
      assert.ok(r.chunks.some((c) => c.choices?.[0]?.finish_reason === 'stop'));
      assert.equal(r.doneIndex, r.data.length - 1);
      assert.equal(await env.mockCount(`corrupt-${k}+e`), 1);
    });

    test(`stream: a broken event after content (${k}) -> error chunk and [DONE], never "stop"`, async () => {
      const r = await env.chatStream(`test/late-${k}`, 'several words of text here');
      assertErrorAfterCommit(r);
      assert.equal(await env.mockCount(`echo+l${k}`), 0, 'no failover after the commit point');
    });

    test(`non-stream: a malformed answer (${k}) -> falls over`, async () => {
      const r = await env.chat(`test/body-${k}`, 'whole body');
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.provider, 'up2');
      assert.equal(r.json.choices[0].message.content, 'whole body');
    });
  }

  test('stream: an upstream that sends only [DONE] is a failure -> fallback answers with a finish_reason', async () => {
    const r = await env.chatStream('test/onlydone', 'only done');
    assert.equal(r.status, 200, r.raw);
    assert.equal(deltaText(r.chunks), 'only done');
    assert.equal(r.chunks.at(-1).provider, 'up2');
    assert.ok(r.chunks.some((c) => c.choices?.[0]?.finish_reason === 'stop'));
    const nonStream = await env.chat('test/onlydone', 'plain');
    assert.equal(nonStream.status, 200);
  });

  test('in-process provider: an error model answers (no hang) in the API error shape', async () => {
    const r = await env.chat('test/mock-503', 'hi', {}, undefined);
    assert.ok(r.status === 503 || r.status === 502, r.text);
    assert.equal(typeof r.json.error.message, 'string');
    const s = await env.chatStream('test/mock-503', 'hi');
    assert.ok(s.status >= 500 || s.chunks.some((c) => c.error), s.raw);
    if (s.status === 200) assert.equal(s.doneIndex, s.data.length - 1);
  });

  test('in-process provider: error model or unknown upstream model -> models[] / endpoint fallback runs', async () => {
    const viaModels = await env.post('/v1/chat/completions', {
      model: 'test/mock-err-fb',
      models: ['test/after-mock'],
      messages: [{ role: 'user', content: 'fall back please' }],
    });
    assert.equal(viaModels.status, 200, viaModels.text);
    assert.equal(viaModels.json.model, 'test/after-mock');
    assert.equal(viaModels.json.choices[0].message.content, 'fall back please');
    const streamed = await env.sse('/v1/chat/completions', {
      model: 'test/mock-err-fb',
      models: ['test/after-mock'],
      stream: true,
      messages: [{ role: 'user', content: 'stream fall back' }],
    });
    assert.equal(streamed.status, 200, streamed.raw);
    assert.equal(deltaText(streamed.chunks), 'stream fall back');
    assert.ok(!streamed.chunks.some((c) => c.error));
    for (const model of ['test/mock-unknown', 'test/mock-err-pair']) {
      const r = await env.chat(model, 'endpoint fallback');
      assert.equal(r.status, 200, `${model}: ${r.text}`);
      assert.equal(r.json.provider, 'up2');
    }
  });

  test('access log: a stream failed after the commit point records the error, and tokens match the cost', async () => {
    const r = await env.chatStream('test/late-single', 'one two three four five six');
    const errChunk = assertErrorAfterCommit(r);
    const id = r.headers.get('x-generation-id');
    const rec = await accessRecord(env, id);
    assert.ok(rec, `no access-log record for ${id}`);
    assert.equal(rec.status, errChunk.error.code, JSON.stringify(rec));
    assert.ok(rec.status >= 500, JSON.stringify(rec));
    assert.equal(rec.error_type, errChunk.error.metadata.error_type, JSON.stringify(rec));
    assert.ok(rec.completion_tokens > 0, `streamed text was billed as 0 tokens: ${JSON.stringify(rec)}`);
    assertClose(rec.cost, expectedCost(rec, ...CHEAP), 'cost = access-logged tokens x price');
    const usage = r.chunks.find((c) => c.usage)?.usage;
    assert.ok(usage, `the client was not told what it was billed: ${r.raw}`);
    assert.equal(usage.prompt_tokens, rec.prompt_tokens);
    assert.equal(usage.completion_tokens, rec.completion_tokens);
    assertClose(usage.cost, rec.cost, 'usage.cost sent = cost logged');
  });

  test('fallback after a big broken upstream body does not leak the failed attempt\'s buffer', async () => {
    const one = async () => {
      // provider.order pins the plan: the big broken body first on every request, however recently it failed
      const r = await env.chat('test/leak', 'small', { provider: { order: ['up1', 'up2'] } });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.provider, 'up2');
    };
    for (let i = 0; i < 10; i++) await one(); // warm up both workers' pools and connections
    const before = rssKb(env.proc.pid);
    const N = 120; // each failed attempt buffers 256 KiB before the cap; leaking would add ~30 MB
    for (let i = 0; i < N; i += 4) await Promise.all([one(), one(), one(), one()]);
    const grown = rssKb(env.proc.pid) - before;
    if (process.env.LG_DEBUG_RSS) console.log(`RSS before ${before} kB, grown ${grown} kB`);
    assert.equal(await env.mockCount('corrupt-json+words-30000+leak'), N + 10, 'every request failed over from the big body');
    assert.ok(grown < 10 * 1024, `RSS grew by ${grown} kB over ${N} fallbacks after big broken bodies`);
  });
});

describe('pipeline: a stream cut at the shutdown deadline', () => {
  let env;
  const test = gwTest(() => env);
  const ADMIN = 'adm-pipeline-cut-test-key-0123456789';
  before(async () => {
    env = await startEnv({
      models: { 'test/slow': { endpoints: [ep('up1', 'slow-400+words-40', ...CHEAP)] } },
      extra: { shutdown_timeout_ms: 300, auth: { admin_key: ADMIN }, store: { path: 'pipeline-cut.db' } },
    });
  });
  after(async () => {
    await env?.kill();
  });

  test('ends with the error chunk and [DONE], and leaves a ledger row', async () => {
    const res = await fetch(env.base + '/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'test/slow', stream: true, messages: [{ role: 'user', content: 'x' }] }),
      signal: AbortSignal.timeout(30000),
    });
    assert.equal(res.status, 200);
    const id = res.headers.get('x-generation-id');
    const reader = res.body.getReader();
    let raw = '';
    const dec = new TextDecoder();
    // read until the first content arrived, then stop the gateway while the stream is still going
    while (!/"content":"w1 /.test(raw)) {
      const { value, done } = await reader.read();
      assert.ok(!done, `stream ended early: ${raw}`);
      raw += dec.decode(value, { stream: true });
    }
    env.signal('SIGTERM');
    for (;;) {
      const { value, done } = await reader.read(); // rejects on a truncated transfer (curl's exit 18)
      if (done) break;
      raw += dec.decode(value, { stream: true });
    }
    const r = { status: 200, ...parseSse(raw) };
    const err = assertErrorAfterCommit(r);
    assert.equal(err.error.metadata.error_type, 'temporarily_unavailable', JSON.stringify(err));
    const exit = await env.waitExit(15000);
    assert.ok(exit, 'gateway did not exit');
    assert.equal(exit.code, 0, env.log().slice(-2000));

    // the ledger row survived the shutdown: restart on the same store and read it back
    const again = await startEnv({
      models: { 'test/slow': { endpoints: [ep('up1', 'slow-400+words-40', ...CHEAP)] } },
      extra: { auth: { admin_key: ADMIN }, store: { path: `${env.dir}/pipeline-cut.db` } },
    });
    try {
      const g = await httpGet(again.base, '/api/v1/generation?id=' + id, { authorization: `Bearer ${ADMIN}` });
      assert.equal(g.status, 200, g.text);
      const d = g.json.data;
      assert.equal(d.streamed, true);
      assert.equal(d.status, 503, g.text);
      assert.equal(d.finish_reason, 'error', g.text);
      assert.ok(d.tokens_completion > 0, g.text);
    } finally {
      await again.kill();
    }
  });
});
