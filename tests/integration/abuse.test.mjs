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
  });
});
