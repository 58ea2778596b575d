// SPDX-License-Identifier: MIT
// Built-in MCP tools, auth and the REST facade, end to end with the real binary (issue 5): keys made with the CLI
// (`llmgate keys create --db … --json`) before the gateway starts, so the gateway requires them. Raw fetch JSON-RPC over
// /mcp: 401 JSON without a key, llmgate__chat / llmgate__list_models listed and called (chat through the router on
// mock/echo with the calling key), the per-key tool allow-list (--tools) on tools/list and tools/call, per-key rate
// limits on tools/call; REST facade GET /api/mcp and POST /api/mcp/<tool> (200, 404, 400, 403, 401); 404 on OAuth
// discovery; the tool calls in the log and /metrics.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import { GATEWAY_BIN, gwTest, run, startEnv } from './harness.mjs';

let env;
const test = gwTest(() => env);
const keys = {};

async function makeKey(db, name, extra = []) {
  const r = await run(GATEWAY_BIN, ['keys', 'create', '--db', db, '--name', name, ...extra, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.match(out.key, /^sk-lg-/);
  return { secret: out.key, id: out.data.id };
}

const ACCEPT = 'application/json, text/event-stream';

async function rpc(p, body, headers = {}) {
  const r = await fetch(env.base + p, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: ACCEPT, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(15000),
  });
  const text = await r.text();
  let json = null;
  const ct = r.headers.get('content-type') || '';
  if (ct.includes('text/event-stream')) {
    // the last "data:" line carrying our response
    const datas = text
      .split('\n')
      .filter((l) => l.startsWith('data:') && l.length > 6)
      .map((l) => JSON.parse(l.slice(5)));
    json = datas.find((m) => m.id !== undefined && (m.result !== undefined || m.error !== undefined)) || null;
  } else if (text) {
    try {
      json = JSON.parse(text);
    } catch {}
  }
  return { status: r.status, headers: r.headers, text, json };
}

/** A session for key: initialize + initialized; returns a caller of methods. */
async function session(secret) {
  const auth = secret ? { authorization: `Bearer ${secret}` } : {};
  const init = await rpc(
    '/mcp',
    {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'mcp-builtin-test', version: '1' } },
    },
    auth,
  );
  assert.equal(init.status, 200, init.text);
  const sid = init.headers.get('mcp-session-id');
  assert.ok(sid, 'Mcp-Session-Id');
  const h = { ...auth, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
  const n = await rpc('/mcp', { jsonrpc: '2.0', method: 'notifications/initialized' }, h);
  assert.equal(n.status, 202);
  let id = 1;
  return async (method, params = {}) => {
    const r = await rpc('/mcp', { jsonrpc: '2.0', id: ++id, method, params }, h);
    assert.equal(r.status, 200, r.text);
    assert.ok(r.json, r.text);
    return r.json;
  };
}

async function toolNames(call) {
  const names = [];
  let cursor;
  do {
    const r = await call('tools/list', cursor ? { cursor } : {});
    assert.ok(r.result, JSON.stringify(r));
    names.push(...r.result.tools.map((t) => t.name));
    cursor = r.result.nextCursor;
  } while (cursor);
  return names;
}

async function rest(method, p, body, secret, raw) {
  const headers = secret ? { authorization: `Bearer ${secret}` } : {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(env.base + p, {
    method,
    headers,
    body: raw !== undefined ? raw : body !== undefined ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(15000),
  });
  const text = await r.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: r.status, headers: r.headers, text, json };
}

describe('built-in MCP tools, keys and the REST facade', () => {
  before(async () => {
    env = await startEnv({
      models: { 'mock/echo': { endpoints: [{ provider: 'mock', model: 'echo', pricing: { prompt: '0', completion: '0' } }] } },
      mutate: (conf) => {
        conf.store = { path: path.join(path.dirname(conf.access_log), 'store.db') }; // in the test's temp dir
      },
    });
    // the gateway started OPEN (no keys yet): create the keys now and make it re-read them (SIGHUP)
    const db = path.join(env.dir, 'store.db');
    keys.full = await makeKey(db, 'mcp full');
    keys.limited = await makeKey(db, 'mcp limited', ['--tools', 'llmgate__list_models']);
    keys.slow = await makeKey(db, 'mcp rpm', ['--rpm', '2']);
    env.signal('SIGHUP');
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      const r = await rest('GET', '/api/mcp', undefined, keys.full.secret);
      const anon = await rest('GET', '/api/mcp');
      if (r.status === 200 && anon.status === 401) break;
      await new Promise((res) => setTimeout(res, 100));
    }
  });
  after(async () => {
    if (env) await env.stop();
  });

  test('401 JSON with WWW-Authenticate without a key or with a bad key; discovery paths are 404', async () => {
    const init = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {} } };
    for (const h of [{}, { authorization: 'Bearer sk-lg-nope' }]) {
      const r = await rpc('/mcp', init, h);
      assert.equal(r.status, 401, r.text);
      assert.ok(r.json, 'JSON body');
      assert.match(r.headers.get('www-authenticate') || '', /^Bearer realm="llmgate"/);
      assert.ok(!/resource_metadata/.test(r.headers.get('www-authenticate')));
    }
    for (const p of ['/.well-known/oauth-authorization-server', '/.well-known/oauth-protected-resource/mcp']) {
      const r = await fetch(env.base + p);
      await r.text();
      assert.equal(r.status, 404, p);
    }
  });

  test('tools/list has llmgate__chat and llmgate__list_models with schemas', async () => {
    const call = await session(keys.full.secret);
    const r = await call('tools/list');
    const names = await toolNames(call);
    assert.ok(names.includes('llmgate__chat'), names.join());
    assert.ok(names.includes('llmgate__list_models'), names.join());
    const chat = r.result.tools.find((t) => t.name === 'llmgate__chat');
    if (chat) assert.equal(chat.inputSchema.type, 'object');
  });

  test('tools/call llmgate__chat on mock/echo returns the echo, with usage, as the calling key', async () => {
    const call = await session(keys.full.secret);
    const r = await call('tools/call', { name: 'llmgate__chat', arguments: { model: 'mock/echo', prompt: 'ping from mcp' } });
    assert.ok(r.result, JSON.stringify(r));
    assert.ok(!r.result.isError, JSON.stringify(r.result));
    assert.equal(r.result.content[0].type, 'text');
    assert.match(r.result.content[0].text, /ping from mcp/);
    assert.match(r.result.structuredContent.text, /ping from mcp/);
    assert.ok(r.result.structuredContent.usage, 'usage');
    assert.ok(r.result.structuredContent.model, 'model');
    // messages form
    const m = await call('tools/call', {
      name: 'llmgate__chat',
      arguments: { model: 'mock/echo', messages: [{ role: 'user', content: 'two words' }], max_tokens: 50 },
    });
    assert.match(m.result.content[0].text, /two words/);
    // unknown model and bad arguments are tool errors
    const bad = await call('tools/call', { name: 'llmgate__chat', arguments: { model: 'nope/none', prompt: 'x' } });
    assert.equal(bad.result.isError, true, JSON.stringify(bad));
    const noArgs = await call('tools/call', { name: 'llmgate__chat', arguments: {} });
    assert.equal(noArgs.result.isError, true);
    // the internal call was accounted to the calling key
    const usage = await run(GATEWAY_BIN, ['usage', '--db', path.join(env.dir, 'store.db'), '--key', keys.full.id, '--json']);
    assert.equal(usage.code, 0, usage.stderr);
  });

  test('tools/call llmgate__list_models returns the catalog', async () => {
    const call = await session(keys.full.secret);
    const r = await call('tools/call', { name: 'llmgate__list_models', arguments: {} });
    assert.ok(!r.result.isError, JSON.stringify(r));
    const ids = r.result.structuredContent.models.map((m) => m.id);
    assert.ok(ids.includes('mock/echo'), ids.join());
    assert.ok(ids.includes('test/echo'), ids.join());
    assert.deepEqual(JSON.parse(r.result.content[0].text), r.result.structuredContent);
  });

  test('per-key allow-list: hidden from tools/list, refused on tools/call', async () => {
    const call = await session(keys.limited.secret);
    const names = await toolNames(call);
    assert.deepEqual(names, ['llmgate__list_models']);
    const r = await call('tools/call', { name: 'llmgate__chat', arguments: { model: 'mock/echo', prompt: 'x' } });
    assert.ok(r.error, JSON.stringify(r));
    assert.match(r.error.message, /not permitted/);
    const ok = await call('tools/call', { name: 'llmgate__list_models', arguments: {} });
    assert.ok(ok.result && !ok.result.isError);
  });

  test('per-key rate limit on tools/call: JSON-RPC error with HTTP 200, 429 on REST', async () => {
    const call = await session(keys.slow.secret);
    const res = [];
    for (let i = 0; i < 3; i++) res.push(await call('tools/call', { name: 'llmgate__list_models', arguments: {} }));
    const limited = res.find((r) => r.error);
    assert.ok(limited, JSON.stringify(res));
    assert.ok(limited.error.code <= -32000 && limited.error.code >= -32019, JSON.stringify(limited));
    assert.match(limited.error.message, /rate limited/);
    const r = await rest('POST', '/api/mcp/llmgate__list_models', {}, keys.slow.secret);
    assert.equal(r.status, 429, r.text);
    assert.ok(r.headers.get('retry-after'));
  });

  test('REST facade: GET /api/mcp, POST /api/mcp/<tool>, 404, 400, 403, 401, 405', async () => {
    const list = await rest('GET', '/api/mcp', undefined, keys.full.secret);
    assert.equal(list.status, 200, list.text);
    const names = list.json.data.map((t) => t.name);
    assert.ok(names.includes('llmgate__chat') && names.includes('llmgate__list_models'), names.join());
    for (const t of list.json.data) assert.equal(typeof t.inputSchema, 'object');

    const limitedList = await rest('GET', '/api/mcp', undefined, keys.limited.secret);
    assert.deepEqual(
      limitedList.json.data.map((t) => t.name),
      ['llmgate__list_models'],
    );

    const lm = await rest('POST', '/api/mcp/llmgate__list_models', {}, keys.full.secret);
    assert.equal(lm.status, 200, lm.text);
    assert.ok(lm.json.data.structuredContent.models.some((m) => m.id === 'mock/echo'));

    const chat = await rest('POST', '/api/mcp/llmgate__chat', { model: 'mock/echo', prompt: 'rest hello' }, keys.full.secret);
    assert.equal(chat.status, 200, chat.text);
    assert.match(chat.json.data.content[0].text, /rest hello/);

    // a tool error (isError) is the tool's own answer: 200 with the result
    const toolErr = await rest('POST', '/api/mcp/llmgate__chat', { prompt: 'no model' }, keys.full.secret);
    assert.equal(toolErr.status, 200, toolErr.text);
    assert.equal(toolErr.json.data.isError, true);
    assert.match(toolErr.json.data.content[0].text, /invalid arguments/);

    const unknown = await rest('POST', '/api/mcp/nope__nothing', {}, keys.full.secret);
    assert.equal(unknown.status, 404, unknown.text);
    assert.equal(unknown.json.error.code, 404);

    const badJson = await rest('POST', '/api/mcp/llmgate__list_models', undefined, keys.full.secret, '{not json');
    assert.equal(badJson.status, 400, badJson.text);
    const notObj = await rest('POST', '/api/mcp/llmgate__list_models', undefined, keys.full.secret, '[1,2]');
    assert.equal(notObj.status, 400, notObj.text);

    const forbidden = await rest('POST', '/api/mcp/llmgate__chat', { model: 'mock/echo', prompt: 'x' }, keys.limited.secret);
    assert.equal(forbidden.status, 403, forbidden.text);

    const noKey = await rest('GET', '/api/mcp');
    assert.equal(noKey.status, 401, noKey.text);
    assert.equal(noKey.json.error.code, 401);

    const wrongMethod = await rest('GET', '/api/mcp/llmgate__list_models', undefined, keys.full.secret);
    assert.equal(wrongMethod.status, 405);
  });

  test('every tool call is logged and counted in /metrics', async () => {
    const log = env.log();
    assert.match(log, /tool call key=key_\S+ server=llmgate tool=llmgate__list_models duration_ms=\S+ outcome=ok/);
    assert.match(log, /tool=llmgate__chat .*outcome=error reason=forbidden/);
    assert.ok(!log.includes(keys.full.secret), 'secrets never logged');
    const m = await fetch(env.base + '/metrics');
    const text = await m.text();
    assert.match(text, /llmgate_mcp\w*\{[^}]*server="llmgate"[^}]*tool="list_models"[^}]*\} [1-9]/);
  });
});
