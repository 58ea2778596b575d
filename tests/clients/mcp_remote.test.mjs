// SPDX-License-Identifier: MIT
// Real-client test: `mcp-remote` (the stdio <-> Streamable HTTP bridge Claude Desktop uses, pinned in package.json)
// against the gateway's /mcp with an API key (`--header Authorization:${AUTH}`), and the gateway's own stdio mode
// (`llmgate mcp --stdio --config FILE`), each driven as a desktop client would: newline-delimited JSON-RPC on the
// child's stdin/stdout, initialize -> notifications/initialized -> tools/list -> tools/call (llmgate__list_models).
// Needs tests/clients/node_modules (scripts/install-deps.sh --test runs `npm ci` here). A missing install FAILS.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe } from 'node:test';
import { GATEWAY_BIN, childEnv, gwTest, run, sleep, startEnv } from '../integration/harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const MCP_REMOTE = path.join(here, 'node_modules', '.bin', 'mcp-remote');

/** A child speaking newline-delimited JSON-RPC on stdin/stdout. */
function stdioPeer(cmd, args, env) {
  const proc = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env });
  const msgs = [];
  const waiters = [];
  let buf = '';
  let stderr = '';
  proc.stdout.setEncoding('utf8');
  proc.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      if (!line) continue;
      let m;
      try {
        m = JSON.parse(line);
      } catch {
        msgs.push({ notJson: line });
        continue;
      }
      msgs.push(m);
      for (const w of [...waiters]) if (w.match(m)) (waiters.splice(waiters.indexOf(w), 1), w.resolve(m));
    }
  });
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  return {
    proc,
    msgs,
    exited,
    stderr: () => stderr,
    send(m) {
      proc.stdin.write(JSON.stringify(m) + '\n');
    },
    response(id, ms = 20000) {
      const found = msgs.find((m) => m.id === id && (m.result !== undefined || m.error !== undefined));
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no response to id ${id} within ${ms} ms; stderr:\n${stderr.slice(-3000)}`)), ms);
        t.unref();
        waiters.push({ match: (m) => m.id === id && (m.result !== undefined || m.error !== undefined), resolve: (m) => (clearTimeout(t), resolve(m)) });
      });
    },
    async request(id, method, params = {}) {
      this.send({ jsonrpc: '2.0', id, method, params });
      return this.response(id);
    },
  };
}

async function drive(peer) {
  const init = await peer.request(1, 'initialize', {
    protocolVersion: '2025-11-25',
    capabilities: {},
    clientInfo: { name: 'llmgate-stdio-test', version: '1.0.0' },
  });
  assert.ok(init.result, JSON.stringify(init));
  assert.ok(['2025-11-25', '2025-06-18', '2025-03-26'].includes(init.result.protocolVersion), JSON.stringify(init));
  assert.ok(init.result.capabilities.tools, JSON.stringify(init.result));
  peer.send({ jsonrpc: '2.0', method: 'notifications/initialized' });

  const names = [];
  let cursor;
  let id = 2;
  do {
    const r = await peer.request(id++, 'tools/list', cursor ? { cursor } : {});
    assert.ok(r.result, JSON.stringify(r));
    names.push(...r.result.tools.map((t) => t.name));
    cursor = r.result.nextCursor;
  } while (cursor);
  assert.ok(names.includes('llmgate__list_models'), names.join());
  assert.ok(names.includes('llmgate__chat'), names.join());

  const call = await peer.request(100, 'tools/call', { name: 'llmgate__list_models', arguments: {} });
  assert.ok(call.result, JSON.stringify(call));
  assert.ok(!call.result.isError, JSON.stringify(call.result));
  assert.ok(call.result.structuredContent.models.some((m) => m.id === 'mock/echo'), JSON.stringify(call.result));
  assert.ok(!peer.msgs.some((m) => m.notJson), 'only JSON-RPC on stdout: ' + JSON.stringify(peer.msgs.filter((m) => m.notJson)));
  return { init, names, call };
}

/** Resolves null after ms without keeping the test process alive. */
function expire(ms) {
  return new Promise((resolve) => setTimeout(() => resolve(null), ms).unref());
}

async function stop(peer, ms = 10000) {
  peer.proc.stdin.end();
  let res = await Promise.race([peer.exited, expire(ms)]);
  if (res === null) {
    peer.proc.kill('SIGKILL');
    res = await peer.exited;
  }
  return res;
}

const MODELS = { 'mock/echo': { endpoints: [{ provider: 'mock', model: 'echo', pricing: { prompt: '0', completion: '0' } }] } };

describe('mcp-remote bridge and llmgate stdio mode', () => {
  let env;
  let key;
  let home;
  const test = gwTest(() => env);

  before(async () => {
    assert.ok(
      fs.existsSync(MCP_REMOTE),
      `${MCP_REMOTE} missing: run \`npm ci\` in tests/clients (scripts/install-deps.sh --test) — this test does not skip`,
    );
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'llmgate-mcp-remote-home-'));
    env = await startEnv({
      models: MODELS,
      mutate: (conf) => {
        conf.store = { path: path.join(path.dirname(conf.access_log), 'store.db') };
      },
    });
    const r = await run(GATEWAY_BIN, ['keys', 'create', '--db', path.join(env.dir, 'store.db'), '--name', 'mcp-remote', '--json']);
    assert.equal(r.code, 0, r.stderr);
    key = JSON.parse(r.stdout).key;
    env.signal('SIGHUP'); // the gateway re-reads the keys and stops running open
    const deadline = Date.now() + 5000;
    for (;;) {
      const anon = await fetch(env.base + '/api/mcp');
      await anon.text();
      if (anon.status === 401 || Date.now() > deadline) break;
      await sleep(100);
    }
  });
  after(async () => {
    if (env) await env.stop();
    if (home) fs.rmSync(home, { recursive: true, force: true });
  });

  test('mcp-remote --transport http-only --header Authorization:${AUTH}: initialize, tools/list, tools/call', async () => {
    const peer = stdioPeer(
      MCP_REMOTE,
      [env.base + '/mcp', '--transport', 'http-only', '--header', 'Authorization:${AUTH}'],
      childEnv({ HOME: home, AUTH: `Bearer ${key}` }),
    );
    try {
      const { init } = await drive(peer);
      assert.match(init.result.serverInfo.name, /llmgate/);
    } finally {
      await stop(peer);
    }
    // the gateway saw mcp-remote's requests with the key (and logged the call under the key id)
    assert.match(env.log(), /tool call key=key_\S+ server=llmgate tool=llmgate__list_models .*outcome=ok/);
  });

  test('mcp-remote without a valid key fails fast (401, no OAuth)', async () => {
    const peer = stdioPeer(
      MCP_REMOTE,
      [env.base + '/mcp', '--transport', 'http-only', '--header', 'Authorization:${AUTH}'],
      childEnv({ HOME: home, AUTH: 'Bearer sk-lg-wrong' }),
    );
    peer.send({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } });
    const res = await Promise.race([peer.exited, expire(30000)]);
    if (res === null) peer.proc.kill('SIGKILL');
    assert.ok(res !== null, 'mcp-remote should exit on 401');
    assert.notEqual(res.code, 0);
  });

  test('llmgate mcp --stdio --config FILE: initialize, tools/list, tools/call; chat is a clear tool error; exit 0 on EOF', async () => {
    const peer = stdioPeer(GATEWAY_BIN, ['mcp', '--stdio', '--config', env.configPath], childEnv({ HOME: home }));
    try {
      await drive(peer);
      const chat = await peer.request(200, 'tools/call', { name: 'llmgate__chat', arguments: { model: 'mock/echo', prompt: 'x' } });
      assert.equal(chat.result.isError, true, JSON.stringify(chat));
      assert.match(chat.result.content[0].text, /needs the HTTP gateway/);
      const bad = await (async () => {
        peer.proc.stdin.write('{not json\n');
        return peer.response(null);
      })();
      assert.equal(bad.error.code, -32700);
    } finally {
      const res = await stop(peer);
      assert.deepEqual(res, { code: 0, signal: null }, peer.stderr().slice(-2000));
    }
  });
});
