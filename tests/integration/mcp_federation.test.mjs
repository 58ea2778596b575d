// SPDX-License-Identifier: MIT
// MCP federation through the real gateway: /mcp federating tests/mcp's fake_mcp_server (a C stdio MCP server, no npm
// needed) twice — prefixed ("fake__echo") and unprefixed — plus a virtual server /mcp/sub with a curated subset.
// Raw Streamable HTTP (fetch): tools/list pagination, calls (text, structuredContent, isError, JSON-RPC errors),
// progress routed back on the POST's SSE stream, an upstream that crashes mid-call (its in-flight calls fail at once,
// its tools disappear with notifications/tools/list_changed on the GET stream, and come back after the restart), and
// a timeout that fails with a clear tool error.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import { spawn } from 'node:child_process';
import { BUILD_DIR, GATEWAY_BIN, childEnv, gwTest, parseSse, sleep, startEnv } from './harness.mjs';

const FAKE = process.env.LLMGATE_FAKE_MCP || path.join(BUILD_DIR, 'tests', 'mcp', 'fake_mcp_server');

/** A minimal Streamable HTTP MCP client (one session). */
export class McpSession {
  constructor(base, p = '/mcp', headers = {}) {
    this.url = base + p;
    this.headers = headers;
    this.nextId = 1;
    this.sid = null;
  }
  hdrs(extra = {}) {
    const h = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...this.headers, ...extra };
    if (this.sid) {
      h['mcp-session-id'] = this.sid;
      h['mcp-protocol-version'] = '2025-11-25';
    }
    return h;
  }
  /** POST one message; returns { status, messages[] } (JSON body or every SSE event). */
  async post(msg, timeout = 30000) {
    const res = await fetch(this.url, { method: 'POST', headers: this.hdrs(), body: JSON.stringify(msg), signal: AbortSignal.timeout(timeout) });
    const text = await res.text();
    const ct = res.headers.get('content-type') || '';
    let messages = [];
    if (ct.includes('text/event-stream')) messages = parseSse(text).chunks;
    else if (text) messages = [JSON.parse(text)];
    return { status: res.status, headers: res.headers, messages };
  }
  async request(method, params, timeout) {
    const id = this.nextId++;
    const r = await this.post({ jsonrpc: '2.0', id, method, ...(params ? { params } : {}) }, timeout);
    assert.equal(r.status, 200, `${method}: HTTP ${r.status}`);
    const resp = r.messages.find((m) => m.id === id);
    assert.ok(resp, `${method}: no response in ${JSON.stringify(r.messages)}`);
    return { ...resp, notifications: r.messages.filter((m) => m.id === undefined) };
  }
  async initialize() {
    const res = await fetch(this.url, {
      method: 'POST',
      headers: this.hdrs(),
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: this.nextId++,
        method: 'initialize',
        params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'llmgate-it', version: '1.0' } },
      }),
    });
    assert.equal(res.status, 200);
    await res.text();
    this.sid = res.headers.get('mcp-session-id');
    assert.ok(this.sid, 'no Mcp-Session-Id');
    const n = await this.post({ jsonrpc: '2.0', method: 'notifications/initialized' });
    assert.equal(n.status, 202);
  }
  /** Every tool over all pages (cursor loop). */
  async listAllTools() {
    const names = [];
    let cursor;
    let pages = 0;
    do {
      const r = await this.request('tools/list', cursor ? { cursor } : {});
      assert.ok(!r.error, JSON.stringify(r.error));
      for (const t of r.result.tools) names.push(t.name);
      cursor = r.result.nextCursor;
      pages++;
      assert.ok(pages < 50, 'cursor loop does not end');
    } while (cursor);
    return { names, pages };
  }
  /** Opens the GET SSE stream; returns { events, close() }. */
  async listen() {
    const ctrl = new AbortController();
    const res = await fetch(this.url, { method: 'GET', headers: { ...this.hdrs(), accept: 'text/event-stream' }, signal: ctrl.signal });
    assert.equal(res.status, 200, `GET stream: HTTP ${res.status}`);
    const events = [];
    (async () => {
      const dec = new TextDecoder();
      let buf = '';
      try {
        for await (const chunk of res.body) {
          buf += dec.decode(chunk, { stream: true });
          let i;
          while ((i = buf.search(/\r?\n\r?\n/)) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i).replace(/^\r?\n\r?\n/, '');
            const data = block
              .split(/\r?\n/)
              .filter((l) => l.startsWith('data:'))
              .map((l) => l.slice(5).trim())
              .join('\n');
            if (data) events.push(JSON.parse(data));
          }
        }
      } catch {}
    })();
    return { events, close: () => ctrl.abort() };
  }
}

export async function until(fn, ms, step = 100) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) return v;
    await sleep(step);
  }
}

let env;
const test = gwTest(() => env);

describe('MCP federation (fake stdio upstreams)', () => {
  before(async () => {
    assert.ok(fs.existsSync(FAKE), `fake_mcp_server not built at ${FAKE}`);
    env = await startEnv({
      mutate(conf) {
        conf.mcp = {
          servers: {
            fake: { command: FAKE, timeout_ms: 1500, rest_path: '/api/fakesrv' },
            plain: { command: FAKE, prefix: false },
            // a Streamable HTTP upstream: the gateway's own virtual server (not listening yet at start: backoff + retry)
            loop: { url: `http://127.0.0.1:${conf.listeners[0].port}/mcp/sub`, headers: { 'X-Upstream-Token': 'own-secret' } },
          },
          virtual_servers: { sub: { tools: ['fake__echo', 'fake__a*'] } },
          circuit: { failures: 50, open_ms: 1000 },
        };
        conf.auth = { admin_key: 'adm-federation-test' };
      },
    });
  });
  after(async () => {
    await env?.stop();
  });

  test('initialize never waits for upstreams; tools/list merges every upstream into one page', async () => {
    const s = new McpSession(env.base);
    await s.initialize();
    const { names, pages } = await until(async () => {
      const l = await s.listAllTools();
      return l.names.includes('fake__echo') && l.names.includes('echo') ? l : null;
    }, 20000);
    assert.equal(pages, 1, `expected one merged page, got ${pages}`);
    for (const t of ['fake__echo', 'fake__add', 'fake__slow', 'fake__crash', 'echo', 'add', 'crash'])
      assert.ok(names.includes(t), `${t} missing from ${names}`);
    assert.equal(new Set(names).size, names.length, 'duplicate names across pages');
  });

  test('calls: text, structuredContent, isError, upstream JSON-RPC error, unknown tool', async () => {
    const s = new McpSession(env.base);
    await s.initialize();
    let r = await s.request('tools/call', { name: 'fake__echo', arguments: { message: 'hello' } });
    assert.equal(r.result.content[0].text, 'Echo: hello');
    r = await s.request('tools/call', { name: 'add', arguments: { a: 20, b: 22 } });
    assert.equal(r.result.structuredContent.sum, 42);
    r = await s.request('tools/call', { name: 'fake__bad', arguments: {} });
    assert.equal(r.result.isError, true);
    r = await s.request('tools/call', { name: 'fake__fail', arguments: {} });
    assert.equal(r.error.code, -32603);
    r = await s.request('tools/call', { name: 'nope__nope', arguments: {} });
    assert.ok(r.error?.code === -32602 || r.result?.isError, JSON.stringify(r));
  });

  test('progress notifications are routed back to the caller with its own token', async () => {
    const s = new McpSession(env.base);
    await s.initialize();
    const r = await s.request('tools/call', { name: 'fake__progress', arguments: {}, _meta: { progressToken: 'tok-42' } });
    assert.equal(r.result.content[0].text, 'progress done');
    const prog = r.notifications.filter((n) => n.method === 'notifications/progress');
    assert.equal(prog.length, 3);
    for (const p of prog) assert.equal(p.params.progressToken, 'tok-42');
    assert.deepEqual(
      prog.map((p) => p.params.progress),
      [1, 2, 3],
    );
  });

  test('virtual server /mcp/sub exposes only its curated tools', async () => {
    const s = new McpSession(env.base, '/mcp/sub');
    await s.initialize();
    const { names } = await s.listAllTools();
    assert.deepEqual(names.sort(), ['fake__add', 'fake__echo']);
    const r = await s.request('tools/call', { name: 'fake__bad', arguments: {} });
    assert.ok(r.error?.code === -32602 || r.result?.isError, JSON.stringify(r));
    const ok = await s.request('tools/call', { name: 'fake__echo', arguments: { message: 'v' } });
    assert.equal(ok.result.content[0].text, 'Echo: v');
  });

  test('upstream state (up, pid, tools) is visible in the admin view, in /health and in /metrics', async () => {
    const s = new McpSession(env.base);
    await s.initialize();
    await s.listAllTools(); // waits for the first start of the stdio upstreams
    const res = await fetch(env.base + '/api/admin/providers', { headers: { authorization: 'Bearer adm-federation-test' } });
    assert.equal(res.status, 200);
    const view = await res.json();
    const fake = view.mcp_upstreams.find((u) => u.name === 'fake');
    assert.ok(fake, JSON.stringify(view.mcp_upstreams));
    assert.equal(fake.state, 'up');
    assert.ok(fake.pid > 0 && fake.tools > 0, JSON.stringify(fake));
    const metrics = await (await fetch(env.base + '/metrics')).text();
    assert.match(metrics, /^llmgate_mcp_upstream_up\{server="fake"\} 1$/m);
    assert.match(metrics, /^llmgate_mcp_upstream_circuit_open\{server="fake"\} 0$/m);
    const health = await (await fetch(env.base + '/health')).json();
    const h = health.mcp_upstreams.find((u) => u.name === 'fake');
    assert.deepEqual(h, { name: 'fake', state: 'up', tools: fake.tools }, JSON.stringify(health.mcp_upstreams));
    assert.ok(health.mcp_upstreams.some((u) => u.name === 'plain'));
  });

  test('HTTP upstream (Streamable HTTP client): listed with its prefix and callable', async () => {
    const s = new McpSession(env.base);
    await s.initialize();
    const ok = await until(async () => (await s.listAllTools()).names.includes('loop__fake__echo'), 20000, 200);
    assert.ok(ok, 'loop__fake__echo never appeared');
    const { names } = await s.listAllTools();
    assert.deepEqual(names.filter((n) => n.startsWith('loop__')).sort(), ['loop__fake__add', 'loop__fake__echo']);
    const r = await s.request('tools/call', { name: 'loop__fake__echo', arguments: { message: 'over http' } });
    assert.equal(r.result.content[0].text, 'Echo: over http');
  });

  test('timeout: a hung call fails with a clear tool error', async () => {
    const s = new McpSession(env.base);
    await s.initialize();
    const t0 = Date.now();
    const r = await s.request('tools/call', { name: 'fake__slow', arguments: { ms: 10000 } });
    assert.ok(Date.now() - t0 < 6000);
    assert.equal(r.result.isError, true);
    assert.match(r.result.content[0].text, /did not answer within 1500 ms/);
  });

  test('a crashing upstream: in-flight calls fail at once, tools disappear with list_changed, then come back', async () => {
    const s = new McpSession(env.base);
    await s.initialize();
    const stream = await s.listen();
    await sleep(200);
    const slow = s.request('tools/call', { name: 'fake__slow', arguments: { ms: 1200 } });
    await sleep(100);
    const t0 = Date.now();
    const crash = await s.request('tools/call', { name: 'fake__crash', arguments: {} });
    assert.equal(crash.result.isError, true);
    assert.match(crash.result.content[0].text, /upstream fake/);
    const slowR = await slow;
    assert.equal(slowR.result.isError, true, JSON.stringify(slowR));
    assert.ok(Date.now() - t0 < 1000, 'the in-flight call did not fail at once');
    // the other upstream keeps working meanwhile
    const other = await s.request('tools/call', { name: 'echo', arguments: { message: 'alive' } });
    assert.equal(other.result.content[0].text, 'Echo: alive');
    const changed = await until(() => stream.events.some((e) => e.method === 'notifications/tools/list_changed'), 5000);
    assert.ok(changed, `no list_changed on the GET stream: ${JSON.stringify(stream.events)}`);
    // back after the restart (backoff starts at 0.5 s)
    const back = await until(async () => (await s.listAllTools()).names.includes('fake__echo'), 15000, 200);
    assert.ok(back, 'fake__echo did not come back');
    const r = await s.request('tools/call', { name: 'fake__echo', arguments: { message: 'again' } });
    assert.equal(r.result.content[0].text, 'Echo: again');
    stream.close();
  });

  test('llmgate mcp --stdio: an upstream list change reaches the stdio client as notifications/tools/list_changed', async () => {
    const proc = spawn(GATEWAY_BIN, ['mcp', '--stdio', '--config', env.configPath], { stdio: ['pipe', 'pipe', 'pipe'], env: childEnv() });
    const msgs = [];
    let buf = '';
    let stderr = '';
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i).trim();
        buf = buf.slice(i + 1);
        if (line) msgs.push(JSON.parse(line));
      }
    });
    proc.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
    const send = (m) => proc.stdin.write(JSON.stringify(m) + '\n');
    const reply = async (id) => {
      const m = await until(() => msgs.find((x) => x.id === id), 15000, 50);
      assert.ok(m, `no reply to ${id}; stderr: ${stderr.slice(-2000)}`);
      return m;
    };
    try {
      send({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } } });
      await reply(1);
      send({ jsonrpc: '2.0', method: 'notifications/initialized' });
      // wait for the stdio child upstream to be up, then make it change its list
      let n = 10;
      const listed = await until(async () => {
        send({ jsonrpc: '2.0', id: ++n, method: 'tools/list' });
        const r = await reply(n);
        return r.result.tools.some((t) => t.name === 'fake__toggle');
      }, 15000, 200);
      assert.ok(listed, 'fake__toggle never listed');
      const before = msgs.filter((m) => m.method === 'notifications/tools/list_changed').length;
      send({ jsonrpc: '2.0', id: 500, method: 'tools/call', params: { name: 'fake__toggle', arguments: {} } });
      assert.match((await reply(500)).result.content[0].text, /extra (on|off)/);
      const got = await until(() => msgs.filter((m) => m.method === 'notifications/tools/list_changed').length > before, 10000, 50);
      assert.ok(got, `no list_changed on stdout: ${JSON.stringify(msgs.slice(-5))}`);
    } finally {
      proc.stdin.end();
      const code = await Promise.race([exited, sleep(15000).then(() => null)]);
      if (code === null) proc.kill('SIGKILL');
      assert.equal(code, 0, stderr.slice(-2000));
    }
  });

  test('REST facade over federated tools: error mapping, unprefixed names, a per-upstream mount', async () => {
    const s = new McpSession(env.base);
    await s.initialize();
    await until(async () => (await s.listAllTools()).names.includes('fake__echo'), 15000);
    const post = async (p, body) => {
      const r = await fetch(env.base + p, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return { status: r.status, json: await r.json() };
    };
    // an upstream's argument validation error (-32603 "... must be one of ...") is the caller's mistake: 422
    let r = await post('/api/mcp/fake__fail', { topology: 'blob' });
    assert.equal(r.status, 422, JSON.stringify(r.json));
    assert.match(r.json.error.message, /topology must be one of/);
    assert.equal(r.json.error.metadata.mcp_code, -32603);
    // any other upstream JSON-RPC error: 502
    r = await post('/api/mcp/fake__fail', {});
    assert.equal(r.status, 502, JSON.stringify(r.json));
    // a tool's isError result is its answer: 200 with the result
    r = await post('/api/mcp/fake__bad', {});
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.data.isError, true);
    assert.equal(r.json.data.content[0].text, 'bad things');
    // the unprefixed name, when exactly one tool has it
    r = await post('/api/mcp/toggle', {});
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.match(r.json.data.content[0].text, /extra (on|off)/);
    // "echo" is both fake__echo and plain's unprefixed echo: the exact name wins
    r = await post('/api/mcp/echo', { message: 'plain one' });
    assert.equal(r.json.data.content[0].text, 'Echo: plain one');
    r = await post('/api/mcp/no_such_tool_anywhere', {});
    assert.equal(r.status, 404);
    // the upstream's own mount: POST /api/fakesrv/<tool>, GET /api/fakesrv lists only its tools
    r = await post('/api/fakesrv/echo', { message: 'mounted' });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.data.content[0].text, 'Echo: mounted');
    const list = await (await fetch(env.base + '/api/fakesrv')).json();
    assert.ok(list.data.length > 0 && list.data.every((t) => t.name.startsWith('fake__')), JSON.stringify(list.data.map((t) => t.name)));
    r = await post('/api/fakesrv/add', { a: 1, b: 2 }); // fake__add (plain has an "add" too: the mount picks fake's)
    assert.deepEqual(r.json.data.structuredContent, { sum: 3 });
    r = await post('/api/fakesrv/toggle_nothing', {});
    assert.equal(r.status, 404, JSON.stringify(r.json));
    assert.match(r.json.error.message, /fake__toggle_nothing/);
  });
});
