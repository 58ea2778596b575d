// SPDX-License-Identifier: MIT
// Client disconnect cancels the upstream transfer at once (mock in_flight drops to 0), and the gateway keeps serving.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe } from 'node:test';
import { startEnv, gwTest, ep, waitFor, sleep, TIMEOUTS } from './harness.mjs';

let env;
const test = gwTest(() => env);

/** Starts a request and destroys the socket once `until(rawSoFar)` is true (or after `ms` for silent responses). */
function startAndAbort(body, { until, ms } = {}) {
  return new Promise((resolve, reject) => {
    let raw = '';
    let aborted = false;
    const req = http.request(`${env.base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      agent: false,
    });
    const abort = () => {
      if (aborted) return;
      aborted = true;
      req.destroy();
      resolve(raw);
    };
    req.on('response', (res) => {
      res.setEncoding('utf8');
      res.on('data', (d) => {
        raw += d;
        if (until && until(raw)) abort();
      });
      res.on('end', () => {
        if (!aborted) reject(new Error(`response ended before the abort: ${raw}`));
      });
      res.on('error', () => {});
    });
    req.on('error', (e) => {
      if (!aborted) reject(e);
    });
    if (ms !== undefined) setTimeout(abort, ms);
    req.end(JSON.stringify(body));
  });
}

async function assertUpstreamCancelled(what) {
  const zero = await waitFor(async () => (await env.mockStats()).in_flight === 0, 5000, 25);
  const st = await env.mockStats();
  assert.ok(zero, `${what}: mock in_flight still ${st.in_flight} 5 s after the client left (upstream not cancelled)`);
}

describe('client disconnect', () => {
  before(async () => {
    env = await startEnv({
      extra: { shutdown_timeout_ms: 3000 },
      providers: [{ name: 'uplong', timeouts: { ...TIMEOUTS, first_byte_ms: 30000, idle_ms: 30000, total_ms: 60000 } }],
      models: {
        'test/hang': { endpoints: [ep('uplong', 'hang')] },
        'test/slowlorem': { endpoints: [ep('uplong', 'slow-500+lorem')] },
      },
    });
  });
  after(async () => {
    await env?.kill();
  });

  test('stream on a hanging upstream: abort after the first keep-alive bytes -> upstream cancelled', async () => {
    const body = { model: 'test/hang', stream: true, messages: [{ role: 'user', content: 'x' }] };
    const p = startAndAbort(body, { until: (raw) => raw.length > 0, ms: 3000 });
    await waitFor(async () => (await env.mockStats()).in_flight === 1, 5000, 25);
    const raw = await p;
    assert.equal((await env.mockCount('hang')) >= 1, true);
    await assertUpstreamCancelled('hang stream');
    assert.ok(raw.length === 0 || raw.startsWith(':'), `only keep-alive comments before the abort: ${raw}`);
  });

  test('slow stream: abort after the first content chunk -> upstream cancelled', async () => {
    const body = { model: 'test/slowlorem', stream: true, messages: [{ role: 'user', content: 'x' }] };
    const raw = await startAndAbort(body, { until: (r) => /"content":"Lorem/.test(r), ms: 5000 });
    assert.match(raw, /Lorem/);
    await assertUpstreamCancelled('slow stream');
  });

  test('many aborted streams in a row leave nothing behind', async () => {
    const body = { model: 'test/slowlorem', stream: true, messages: [{ role: 'user', content: 'x' }] };
    await Promise.all(Array.from({ length: 8 }, () => startAndAbort(body, { until: (r) => /data: /.test(r), ms: 5000 })));
    await assertUpstreamCancelled('8 aborted streams');
    const h = await env.get('/health');
    assert.equal(h.status, 200);
    await waitFor(async () => (await env.get('/health')).json.in_flight === 0, 5000, 50);
    assert.equal((await env.get('/health')).json.in_flight, 0, 'gateway in_flight back to 0');
  });

  test('gateway still serves new requests', async () => {
    await sleep(100);
    const r = await env.chat('test/echo', 'still alive');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.choices[0].message.content, 'still alive');
    const s = await env.chatStream('test/echo', 'still streaming');
    assert.equal(s.status, 200);
    assert.equal(s.data[s.data.length - 1], '[DONE]');
  });

  test('non-stream on a hanging upstream: abort after 500 ms -> upstream cancelled (client close noticed without writing)', async () => {
    const body = { model: 'test/hang', messages: [{ role: 'user', content: 'x' }] };
    const p = startAndAbort(body, { ms: 500 });
    await p;
    await assertUpstreamCancelled('hang non-stream');
  });

  test('gateway exits 0 on SIGTERM', async () => {
    await env.stop();
  });
});
