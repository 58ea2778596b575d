// SPDX-License-Identifier: MIT
// The front door (src/http/frontdoor.c): request smuggling is refused and the connection closed, every refusal is in
// the API's error shape (OpenRouter JSON on /v1, Anthropic's on /v1/messages, JSON-RPC on /mcp) including h2o's own
// 413, an over-limit Content-Length is refused before the body is sent, oversized URLs and header blocks get 414/431.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe } from 'node:test';
import { startEnv, gwTest, ep, sleep } from './harness.mjs';

let env;
const test = gwTest(() => env);
const LIMIT = 65536;

/** Raw HTTP/1.1 exchange: writes `data`, collects everything until the server closes or `ms` passes. */
function raw(port, data, { ms = 3000, keepOpenMs = 0 } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = '';
    let closed = false;
    const done = () => {
      clearTimeout(t);
      sock.destroy();
      resolve({ text: buf, closed });
    };
    const t = setTimeout(done, ms);
    sock.setEncoding('latin1');
    sock.on('data', (d) => (buf += d));
    sock.on('end', () => {
      closed = true;
      done();
    });
    sock.on('error', () => done());
    sock.on('connect', () => {
      if (Array.isArray(data)) {
        (async () => {
          for (const part of data) {
            sock.write(part);
            await sleep(keepOpenMs);
          }
        })();
      } else {
        sock.write(data);
      }
    });
  });
}

/** Split a raw byte stream into HTTP responses (status, headers, body by Content-Length). */
function responses(text) {
  const out = [];
  let rest = text;
  while (rest.startsWith('HTTP/1.1 ')) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) break;
    const head = rest.slice(0, end).split('\r\n');
    const status = Number(head[0].split(' ')[1]);
    const headers = {};
    for (const l of head.slice(1)) {
      const i = l.indexOf(':');
      headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
    }
    const len = Number(headers['content-length'] || 0);
    const body = rest.slice(end + 4, end + 4 + len);
    out.push({ status, headers, body, json: (() => { try { return JSON.parse(body); } catch { return null; } })() });
    rest = rest.slice(end + 4 + len);
  }
  return out;
}

const CHAT = JSON.stringify({ model: 'test/echo', messages: [{ role: 'user', content: 'hi' }] });

function assertOpenAiShape(r, status) {
  assert.equal(r.status, status, JSON.stringify(r));
  assert.match(r.headers['content-type'], /application\/json/);
  assert.equal(r.json?.error?.code, status, r.body);
  assert.equal(typeof r.json.error.message, 'string');
}

describe('front door', () => {
  before(async () => {
    env = await startEnv({ limits: { max_body_bytes: LIMIT }, models: { 'test/slow': { endpoints: [ep('up1', 'delay-800+echo')] } } });
  });
  after(async () => {
    await env?.stop();
  });

  test('Content-Length with Transfer-Encoding is refused with 400 and the smuggled request is never served', async () => {
    const smuggled = 'GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n';
    const chunk = CHAT.length.toString(16) + '\r\n' + CHAT + '\r\n0\r\n\r\n';
    const req =
      'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
      `Content-Length: ${chunk.length}\r\nTransfer-Encoding: chunked\r\n\r\n` + chunk + smuggled;
    const r = await raw(env.port, req);
    const rs = responses(r.text);
    assert.equal(rs.length, 1, `expected exactly one response, got:\n${r.text}`);
    assertOpenAiShape(rs[0], 400);
    assert.match(rs[0].json.error.message, /Content-Length and Transfer-Encoding/);
    assert.equal(rs[0].headers.connection, 'close');
    assert.ok(r.closed, 'the connection must be closed');
  });

  test('disagreeing Content-Length values are refused with 400 and close', async () => {
    const req = `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: ${CHAT.length}\r\nContent-Length: 5\r\n\r\n${CHAT}`;
    const r = await raw(env.port, req);
    const rs = responses(r.text);
    assert.equal(rs.length, 1, r.text);
    assertOpenAiShape(rs[0], 400);
    assert.ok(r.closed);
  });

  test('a plain chunked body is still served and the connection kept', async () => {
    const chunk = CHAT.length.toString(16) + '\r\n' + CHAT + '\r\n0\r\n\r\n';
    const req = 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n' + chunk + 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n';
    const r = await raw(env.port, req, { ms: 1500 });
    const rs = responses(r.text);
    assert.equal(rs.length, 2, r.text);
    assert.equal(rs[0].status, 200, rs[0].body);
    assert.equal(rs[1].status, 200);
  });

  test('an over-limit Content-Length is refused before the body is sent, in each route\'s error shape', async () => {
    const head = (path) => `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${LIMIT * 3}\r\n\r\n`;
    // no body bytes are written: the answer can only come from the Content-Length
    let rs = responses((await raw(env.port, head('/v1/chat/completions'), { ms: 3000 })).text);
    assert.equal(rs.length, 1);
    assertOpenAiShape(rs[0], 413);
    assert.equal(rs[0].json.error.metadata?.error_type ?? rs[0].json.error.type, rs[0].json.error.metadata?.error_type ?? rs[0].json.error.type);
    rs = responses((await raw(env.port, head('/v1/messages'))).text);
    assert.equal(rs.length, 1);
    assert.equal(rs[0].status, 413);
    assert.equal(rs[0].json?.type, 'error', rs[0].body);
    assert.equal(typeof rs[0].json.error.type, 'string');
    assert.equal(typeof rs[0].json.error.message, 'string');
    rs = responses((await raw(env.port, head('/mcp'))).text);
    assert.equal(rs.length, 1);
    assert.equal(rs[0].status, 413);
    assert.equal(rs[0].json?.jsonrpc, '2.0', rs[0].body);
    assert.equal(rs[0].json.id, null);
    assert.equal(typeof rs[0].json.error.code, 'number');
    // just over the limit (between 1x and 2x, which h2o used to read in full)
    const r = await fetch(env.base + '/v1/chat/completions', { method: 'POST', body: 'x'.repeat(LIMIT + 10), headers: { 'content-type': 'application/json' } });
    assert.equal(r.status, 413);
    assert.equal((await r.json()).error.code, 413);
  });

  test('a chunked body that grows past the limit gets the JSON 413', async () => {
    const piece = 'a'.repeat(16384);
    const parts = ['POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n'];
    for (let i = 0; i < 8; i++) parts.push(piece.length.toString(16) + '\r\n' + piece + '\r\n');
    const r = await raw(env.port, parts, { keepOpenMs: 5 });
    const rs = responses(r.text);
    assert.equal(rs.length, 1, r.text.slice(0, 300));
    assertOpenAiShape(rs[0], 413);
  });

  test('oversized URLs and header blocks get 414 / 431 in the error shape', async () => {
    let r = await fetch(env.base + '/v1/models?x=' + 'a'.repeat(9000));
    assert.equal(r.status, 414);
    assert.equal((await r.json()).error.code, 414);
    const big = {};
    for (let i = 0; i < 20; i++) big['x-pad-' + i] = 'b'.repeat(4000);
    r = await fetch(env.base + '/v1/messages', { method: 'POST', headers: big, body: '{}' });
    assert.equal(r.status, 431);
    assert.equal((await r.json()).type, 'error');
  });

  test('h2o\'s own framing errors come back as JSON too', async () => {
    const r = await raw(env.port, 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n');
    const rs = responses(r.text);
    assert.equal(rs.length, 1, r.text);
    assertOpenAiShape(rs[0], 400);
  });
});

describe('shutdown drain on kept-alive connections', () => {
  let denv;
  const dtest = gwTest(() => denv);
  before(async () => {
    denv = await startEnv({ models: { 'test/slow': { endpoints: [ep('up1', 'delay-800+echo')] } } });
  });
  after(async () => {
    await denv?.kill();
  });

  dtest('after SIGTERM idle keep-alives are closed, in-flight responses say Connection: close, nothing new is taken', async () => {
    // an idle kept-alive connection
    const idle = net.connect(denv.port, '127.0.0.1');
    let idleClosedAt = 0;
    idle.on('end', () => (idleClosedAt = Date.now()));
    idle.on('error', () => {});
    idle.resume();
    await new Promise((r) => idle.on('connect', r));
    idle.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
    await sleep(200);
    // a slow request in flight, with a second request pipelined behind it
    const slowBody = JSON.stringify({ model: 'test/slow', messages: [{ role: 'user', content: 'x' }] });
    const busy = raw(
      denv.port,
      `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: ${slowBody.length}\r\n\r\n${slowBody}` +
        'GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n',
      { ms: 8000 },
    );
    await sleep(300);
    const t0 = Date.now();
    denv.signal('SIGTERM');
    const r = await busy;
    const busyDoneAt = Date.now();
    const rs = responses(r.text);
    assert.equal(rs.length, 1, `the pipelined request must not be taken after SIGTERM:\n${r.text.slice(0, 500)}`);
    assert.equal(rs[0].status, 200, rs[0].body);
    assert.equal(rs[0].headers.connection, 'close');
    assert.ok(r.closed);
    // the idle connection is closed at the signal, not when the process exits after the drain
    assert.ok(idleClosedAt !== 0 && idleClosedAt >= t0 && idleClosedAt <= busyDoneAt, 'the idle keep-alive connection is closed at once');
    const res = await denv.waitExit(10000);
    assert.deepEqual(res, { code: 0, signal: null });
  });
});
