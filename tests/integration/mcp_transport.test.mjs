// SPDX-License-Identifier: MIT
// MCP Streamable HTTP transport, bad input (issue 5): non-JSON, batches, huge messages, missing/unknown/other session,
// foreign Origin, missing Accept, unsupported protocol version, unknown method/tool — each gets its specified status and
// JSON-RPC error, and the gateway keeps serving. Uses the built-in conformance fixture server at /mcp/conformance.
import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import { startEnv, gwTest } from './harness.mjs';

let env, url;
const test = gwTest(() => env);
const MAX = 65536;
const ACCEPT = 'application/json, text/event-stream';

async function post(body, headers = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: ACCEPT, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  if (/json/.test(res.headers.get('content-type') || '')) json = JSON.parse(text);
  else if (/event-stream/.test(res.headers.get('content-type') || '')) {
    const data = text.split('\n').filter((l) => l.startsWith('data: ') && l.length > 6);
    json = data.length ? JSON.parse(data.at(-1).slice(6)) : null;
  }
  return { status: res.status, headers: res.headers, text, json };
}

async function initialize(headers = {}) {
  const r = await post({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } } }, headers);
  assert.equal(r.status, 200, r.text);
  const sid = r.headers.get('mcp-session-id');
  assert.match(sid, /^[\x21-\x7e]{16,}$/);
  const ack = await post({ jsonrpc: '2.0', method: 'notifications/initialized' }, { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25', ...headers });
  assert.equal(ack.status, 202);
  return sid;
}

const sess = (sid) => ({ 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' });

describe('mcp transport: bad input', () => {
  before(async () => {
    env = await startEnv({ extra: { mcp: { conformance_fixtures: true, max_message_bytes: MAX, tool_rate_limits: { 'test_error*': 2 } } } });
    url = `${env.base}/mcp/conformance`;
  });
  after(async () => {
    await env?.stop();
  });

  test('non-JSON body → 400 with -32700 and id null', async () => {
    const r = await post('{not json');
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, -32700);
    assert.equal(r.json.id, null);
  });

  test('JSON-RPC batch in a 2025-11-25 session → 400 -32600', async () => {
    const sid = await initialize();
    const r = await post([{ jsonrpc: '2.0', id: 2, method: 'ping' }, { jsonrpc: '2.0', id: 3, method: 'ping' }], sess(sid));
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, -32600);
  });

  test('a message over the size limit gets a clear error, and the gateway keeps serving', async () => {
    const sid = await initialize();
    const big = { jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'test_simple_text', arguments: { pad: 'x'.repeat(MAX * 2) } } };
    const r = await post(big, sess(sid));
    assert.ok(r.status === 413 || r.status === 400, `status ${r.status}`);
    assert.match(r.text, /too large|limit|size/i);
    const ok = await post({ jsonrpc: '2.0', id: 5, method: 'ping' }, sess(sid));
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.json.result, {});
  });

  test('missing session → 400; unknown session → 404; deleted session → 404', async () => {
    const missing = await post({ jsonrpc: '2.0', id: 6, method: 'tools/list' }, { 'mcp-protocol-version': '2025-11-25' });
    assert.equal(missing.status, 400);
    const unknown = await post({ jsonrpc: '2.0', id: 7, method: 'tools/list' }, sess('deadbeefdeadbeefdeadbeefdeadbeef'));
    assert.equal(unknown.status, 404);
    const sid = await initialize();
    const del = await fetch(url, { method: 'DELETE', headers: sess(sid) });
    assert.ok(del.status === 200 || del.status === 204, `DELETE ${del.status}`);
    const after = await post({ jsonrpc: '2.0', id: 8, method: 'ping' }, sess(sid));
    assert.equal(after.status, 404);
  });

  test('foreign Origin → 403; loopback Origin is fine', async () => {
    const bad = await post({ jsonrpc: '2.0', id: 9, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } } }, { origin: 'http://evil.example.com' });
    assert.equal(bad.status, 403);
    const good = await post({ jsonrpc: '2.0', id: 10, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } } }, { origin: `http://localhost:${new URL(url).port}` });
    assert.equal(good.status, 200, good.text);
  });

  test('Accept without application/json and text/event-stream → 406', async () => {
    const r = await post({ jsonrpc: '2.0', id: 11, method: 'ping' }, { accept: 'text/html' });
    assert.equal(r.status, 406);
  });

  test('unsupported MCP-Protocol-Version header → 400', async () => {
    const sid = await initialize();
    const r = await post({ jsonrpc: '2.0', id: 12, method: 'ping' }, { 'mcp-session-id': sid, 'mcp-protocol-version': '1999-01-01' });
    assert.equal(r.status, 400);
  });

  test('unknown method → -32601; unknown tool → -32602 or an isError result; invalid request → -32600', async () => {
    const sid = await initialize();
    const m = await post({ jsonrpc: '2.0', id: 13, method: 'no/such/method' }, sess(sid));
    assert.equal(m.json.error.code, -32601);
    const t = await post({ jsonrpc: '2.0', id: 14, method: 'tools/call', params: { name: 'no_such_tool', arguments: {} } }, sess(sid));
    assert.ok(t.json.error?.code === -32602 || t.json.result?.isError === true, t.text);
    const inv = await post({ jsonrpc: '2.0', id: 15 }, sess(sid));
    assert.equal(inv.json.error.code, -32600);
  });

  test('per-tool rate limit (mcp.tool_rate_limits) refuses the third call within a minute with a JSON-RPC error', async () => {
    const sid = await initialize();
    const call = (id) => post({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'test_error_handling', arguments: {} } }, sess(sid));
    const a = await call(20);
    const b = await call(21);
    assert.equal(a.json.result.isError, true, a.text); // the fixture tool itself reports an error: the call went through
    assert.equal(b.json.result.isError, true, b.text);
    const c = await call(22);
    assert.equal(c.status, 200);
    assert.ok(c.json.error.code <= -32000 && c.json.error.code >= -32019, c.text);
    assert.equal(c.json.error.data.reason, 'tool_rate_limited');
    // other tools are not limited
    const other = await post({ jsonrpc: '2.0', id: 23, method: 'tools/call', params: { name: 'test_simple_text', arguments: {} } }, sess(sid));
    assert.equal(other.json.result.content[0].text, 'This is a simple text response for testing.');
  });

  test('OAuth discovery paths answer 404 fast (API-key mode)', async () => {
    for (const p of ['/.well-known/oauth-protected-resource', '/.well-known/oauth-authorization-server', '/.well-known/openid-configuration', '/.well-known/oauth-protected-resource/mcp']) {
      const r = await fetch(env.base + p);
      assert.equal(r.status, 404, p);
      await r.arrayBuffer();
    }
  });

  test('the /v1 API is unaffected by the MCP traffic above', async () => {
    const r = await env.chat('test/echo', 'still here');
    assert.equal(r.status, 200, r.text);
  });
});
