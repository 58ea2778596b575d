// SPDX-License-Identifier: MIT
// HTTP/2 "Rapid Reset" guard (CVE-2023-44487; Debian's h2o 2.2.5 has no fix): a connection that keeps opening and
// cancelling requests is refused cheaply (429, no upstream work) after the limit, while other connections are served.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { after, before, describe } from 'node:test';
import { startEnv, gwTest, ep, sleep, waitFor } from './harness.mjs';

let env;
const test = gwTest(() => env);
const LIMIT = 100; // LG_ABUSE_MAX_CANCELS in src/http/abuse.h

function request(session, body) {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':method': 'POST', ':path': '/v1/chat/completions', 'content-type': 'application/json' });
    let data = '';
    let status;
    req.setEncoding('utf8');
    req.on('response', (h) => (status = h[':status']));
    req.on('data', (d) => (data += d));
    req.on('end', () => resolve({ status, body: data }));
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

describe('rapid reset guard', () => {
  before(async () => {
    env = await startEnv({ models: { 'test/slow': { endpoints: [ep('up1', 'delay-2000+echo')] } } });
  });
  after(async () => {
    await env?.stop();
  });

  test('a connection that cancels too many requests gets 429 without upstream work; others are unaffected', async () => {
    const session = http2.connect(env.base);
    session.on('error', () => {});
    const body = { model: 'test/slow', messages: [{ role: 'user', content: 'x' }] };
    const total = LIMIT + 50;
    for (let i = 0; i < total; i++) {
      const req = session.request({ ':method': 'POST', ':path': '/v1/chat/completions', 'content-type': 'application/json' });
      req.on('error', () => {});
      req.end(JSON.stringify(body));
      // let the gateway see the request (and start its upstream call) before the reset arrives
      await sleep(i % 10 === 0 ? 20 : 2);
      req.close(http2.constants.NGHTTP2_CANCEL);
    }
    // the cancellations are processed; the next request on this connection is refused at once
    const refused = await waitFor(async () => {
      const r = await request(session, body);
      return r.status === 429 ? r : null;
    }, 5000, 100);
    assert.equal(refused.status, 429);
    assert.match(JSON.parse(refused.body).error.message, /cancelled requests/);
    session.close();
    // upstream saw at most the requests admitted before the guard tripped (plus a little slack for in-flight ones)
    const stats = await (await fetch(env.mockBase + '/_mock/stats')).json();
    assert.ok(stats.total <= LIMIT + 10, `upstream got ${stats.total} requests for ${total} cancelled ones`);
    // a fresh connection is served normally
    const ok = await env.chat('test/echo', 'still fine');
    assert.equal(ok.status, 200, ok.text);
    // cancelled-before-response requests are not one access-log line each: past 10 per second they are folded
    const recs = env.accessLog().map((l) => JSON.parse(l));
    const single = recs.filter((r) => r.status === 499 && !r.aggregate);
    const folded = recs.filter((r) => r.aggregate === 'cancelled').reduce((n, r) => n + r.count, 0);
    assert.ok(single.length < 60, `${single.length} single lines for ${total} cancelled requests`);
    assert.ok(single.length + folded <= total);
  });
});

describe('rapid reset across connections', () => {
  let aenv;
  const atest = gwTest(() => aenv);
  const ADDR_LIMIT = 200; // LG_ABUSE_ADDR_MAX_CANCELS in src/http/abuse.h
  before(async () => {
    // one worker: the per-address table is per worker (documented), so the count is deterministic here
    aenv = await startEnv({ models: { 'test/slow': { endpoints: [ep('up1', 'delay-2000+echo')] } }, mutate: (c) => (c.workers = 1) });
  });
  after(async () => {
    await aenv?.stop();
  });

  atest('reconnecting before the per-connection limit still gets the address refused and its connections closed', async () => {
    const body = JSON.stringify({ model: 'test/slow', messages: [{ role: 'user', content: 'x' }] });
    const perConn = 50; // well under the per-connection limit
    for (let c = 0; c < Math.ceil((ADDR_LIMIT + 40) / perConn); c++) {
      const session = http2.connect(aenv.base);
      session.on('error', () => {});
      for (let i = 0; i < perConn && !session.destroyed && !session.closed; i++) {
        let req;
        try {
          req = session.request({ ':method': 'POST', ':path': '/v1/chat/completions', 'content-type': 'application/json' });
        } catch {
          break; // the gateway already closed this connection: the guard tripped
        }
        req.on('error', () => {});
        req.end(body);
        await sleep(i % 10 === 0 ? 20 : 2);
        req.close(http2.constants.NGHTTP2_CANCEL);
      }
      await sleep(50);
      session.destroy();
    }
    // a brand-new connection from the same address is refused (429 in the error shape) and then closed by the gateway
    const session = http2.connect(aenv.base);
    session.on('error', () => {});
    const closed = new Promise((r) => session.on('close', r));
    const refused = await waitFor(async () => {
      const r = await request(session, { model: 'test/echo', messages: [{ role: 'user', content: 'x' }] }).catch(() => null);
      return r && r.status === 429 ? r : null;
    }, 5000, 100);
    assert.equal(refused.status, 429);
    assert.match(JSON.parse(refused.body).error.message, /client address/);
    const how = await Promise.race([closed.then(() => 'closed'), sleep(5000).then(() => 'open')]);
    assert.equal(how, 'closed', 'the gateway closes the abusive connection');
    // another client address is unaffected
    const other = http2.connect(aenv.base, { localAddress: '127.0.0.2' });
    other.on('error', () => {});
    const ok = await request(other, { model: 'test/echo', messages: [{ role: 'user', content: 'fine' }] });
    assert.equal(ok.status, 200, ok.body);
    // (from the other address: this one is still refused everywhere)
    const metrics = await new Promise((resolve, reject) => {
      const q = other.request({ ':method': 'GET', ':path': '/metrics' });
      let d = '';
      q.setEncoding('utf8');
      q.on('data', (c) => (d += c));
      q.on('end', () => resolve(d));
      q.on('error', reject);
      q.end();
    });
    const m = /llmgate_rejections_total\{reason="abuse"\} (\d+)/.exec(metrics);
    assert.ok(m && Number(m[1]) >= 1, 'refusals counted under reason="abuse"');
    other.close();
    // the gateway logged the block once, not one line per refused stream
    const lines = aenv.log().split('\n').filter((l) => /rapid reset/.test(l));
    assert.equal(lines.length, 1, lines.join('\n'));
  });
});
