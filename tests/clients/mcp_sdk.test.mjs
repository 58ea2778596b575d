// SPDX-License-Identifier: MIT
// Real-client test: the official MCP SDK client (@modelcontextprotocol/sdk, StreamableHTTPClientTransport) against the
// gateway's /mcp, which federates two REAL stdio MCP servers installed from npm into tests/clients/node_modules
// (@modelcontextprotocol/server-everything and @modelcontextprotocol/server-memory, pinned by package-lock.json):
// prefixed tool names, tools/list cursor loop, calls into both upstreams, a virtual server, and an upstream KILLED
// mid-run: its in-flight call fails cleanly (never hangs), its tools disappear with notifications/tools/list_changed
// seen by the SDK client while the other upstream keeps working, and they come back after the restart.
// Needs tests/clients/node_modules (scripts/install-deps.sh --test runs `npm ci` here). A missing install FAILS.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe } from 'node:test';
import { GATEWAY_BIN, gwTest, run, sleep, startEnv } from '../integration/harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.join(here, 'node_modules', '.bin');
let Client, StreamableHTTPClientTransport, ToolListChangedNotificationSchema;
let env;
const test = gwTest(() => env);

async function until(fn, ms, step = 200) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v || Date.now() > deadline) return v;
    await sleep(step);
  }
}

let secret; // an API key made with the CLI before the gateway starts: /mcp then requires keys

async function connect(p = '/mcp', key = secret) {
  const client = new Client({ name: 'llmgate-sdk-test', version: '1.0.0' });
  const headers = key ? { Authorization: `Bearer ${key}` } : {};
  const transport = new StreamableHTTPClientTransport(new URL(env.base + p), { requestInit: { headers } });
  await client.connect(transport);
  return client;
}

async function listAll(client) {
  const names = [];
  let cursor;
  let pages = 0;
  do {
    const r = await client.listTools(cursor ? { cursor } : {});
    names.push(...r.tools.map((t) => t.name));
    cursor = r.nextCursor;
    assert.ok(++pages < 50, 'cursor loop does not end');
  } while (cursor);
  return { names, pages };
}

/** The pid of the gateway's child whose command line contains needle (read from /proc; kills target that pid only). */
function childPid(parent, needle) {
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== parent) continue;
      const cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmd.includes(needle)) return Number(d);
    } catch {}
  }
  return 0;
}

describe('official MCP SDK client against /mcp federating real stdio servers', () => {
  before(async () => {
    for (const b of ['mcp-server-everything', 'mcp-server-memory'])
      if (!fs.existsSync(path.join(BIN, b)))
        throw new Error(`tests/clients/node_modules/.bin/${b} is missing: run \`scripts/install-deps.sh --test\` (or \`npm ci\` in tests/clients)`);
    ({ Client } = await import('@modelcontextprotocol/sdk/client/index.js'));
    ({ StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js'));
    ({ ToolListChangedNotificationSchema } = await import('@modelcontextprotocol/sdk/types.js'));
    const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmgate-sdk-keys-'));
    const db = path.join(keyDir, 'keys.db');
    const made = await run(GATEWAY_BIN, ['keys', 'create', '--db', db, '--name', 'mcp-sdk-test', '--json']);
    assert.equal(made.code, 0, made.stderr);
    secret = JSON.parse(made.stdout).key;
    env = await startEnv({
      mutate(conf) {
        conf.store = { path: db };
        conf.mcp = {
          servers: {
            everything: { command: path.join(BIN, 'mcp-server-everything'), args: ['stdio'], timeout_ms: 20000 },
            memory: { command: path.join(BIN, 'mcp-server-memory'), env: { MEMORY_FILE_PATH: path.join(conf.access_log, '..', 'memory.jsonl') } },
          },
          virtual_servers: { curated: { tools: ['memory__create_entities', 'memory__read_graph', 'everything__echo', 'llmgate__list_*'] } },
        };
      },
    });
  });
  after(async () => {
    await env?.stop();
  });

  test('without the key the SDK client is refused (401), with it the session works', async () => {
    await assert.rejects(connect('/mcp', null), (e) => /401|unauthori/i.test(String(e?.message ?? e)));
    await assert.rejects(connect('/mcp', 'sk-lg-not-a-real-key'), (e) => /401|unauthori/i.test(String(e?.message ?? e)));
    const c = await connect();
    await c.ping();
    await c.close();
  });

  test('SDK version is the pinned one', () => {
    const lock = JSON.parse(fs.readFileSync(path.join(here, 'package-lock.json'), 'utf8'));
    for (const p of ['@modelcontextprotocol/sdk', '@modelcontextprotocol/server-everything', '@modelcontextprotocol/server-memory']) {
      const installed = JSON.parse(fs.readFileSync(path.join(here, 'node_modules', p, 'package.json'), 'utf8'));
      assert.equal(installed.version, lock.packages[`node_modules/${p}`].version, `${p}: node_modules matches the lockfile`);
    }
  });

  test('lists prefixed tools of both upstreams over a cursor loop', async () => {
    const client = await connect();
    const { names, pages } = await until(async () => {
      const l = await listAll(client);
      return l.names.includes('everything__echo') && l.names.includes('memory__create_entities') ? l : null;
    }, 30000);
    assert.equal(pages, 1, 'one merged page across every upstream and the built-ins');
    // a client that calls listTools() once (many do) sees every tool
    const once = (await client.listTools()).tools.map((t) => t.name);
    assert.deepEqual(once, names);
    assert.ok(once.includes('llmgate__list_models') && once.includes('everything__echo') && once.includes('memory__read_graph'));
    for (const t of ['everything__echo', 'everything__get-sum', 'memory__create_entities', 'memory__read_graph'])
      assert.ok(names.includes(t), `${t} missing from ${names.join(', ')}`);
    assert.ok(!names.some((n) => !n.startsWith('everything__') && !n.startsWith('memory__') && !n.startsWith('llmgate__')), names.join(', '));
    assert.equal(new Set(names).size, names.length);
    await client.close();
  });

  test('calls tools of both upstreams (echo, get-sum, memory create/read)', async () => {
    const client = await connect();
    await until(async () => (await listAll(client)).names.includes('memory__read_graph'), 30000);
    let r = await client.callTool({ name: 'everything__echo', arguments: { message: 'hello via llmgate' } });
    assert.equal(r.isError ?? false, false);
    assert.match(r.content[0].text, /hello via llmgate/);
    r = await client.callTool({ name: 'everything__get-sum', arguments: { a: 19, b: 23 } });
    assert.match(r.content[0].text, /42/);
    r = await client.callTool({
      name: 'memory__create_entities',
      arguments: { entities: [{ name: 'llmgate', entityType: 'project', observations: ['an MCP gateway'] }] },
    });
    assert.equal(r.isError ?? false, false, JSON.stringify(r));
    r = await client.callTool({ name: 'memory__read_graph', arguments: {} });
    assert.match(JSON.stringify(r), /llmgate/);
    await client.close();
  });

  test('virtual server /mcp/curated: only the curated tools, the matching built-in included', async () => {
    const client = await connect('/mcp/curated');
    const { names } = await until(async () => {
      const l = await listAll(client);
      return l.names.length === 4 ? l : null;
    }, 30000);
    assert.deepEqual(names.sort(), ['everything__echo', 'llmgate__list_models', 'memory__create_entities', 'memory__read_graph']);
    const models = await client.callTool({ name: 'llmgate__list_models', arguments: {} });
    assert.equal(models.isError ?? false, false);
    await assert.rejects(client.callTool({ name: 'llmgate__chat', arguments: { model: 'x', prompt: 'y' } }), /Unknown tool|-32602/);
    const r = await client.callTool({ name: 'everything__echo', arguments: { message: 'curated' } });
    assert.match(r.content[0].text, /curated/);
    await assert.rejects(client.callTool({ name: 'everything__get-sum', arguments: { a: 1, b: 2 } }), /Unknown tool|-32602/);
    await client.close();
  });

  test('an upstream killed mid-run: in-flight call fails cleanly, list_changed, list shrinks, other keeps working, it comes back', async () => {
    const client = await connect();
    let changed = 0;
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      changed++;
    });
    await until(async () => (await listAll(client)).names.includes('everything__echo'), 30000);
    await sleep(300); // let the SDK open its GET stream
    const pid = childPid(env.proc.pid, 'mcp-server-everything');
    assert.ok(pid > 0, 'no server-everything child of the gateway');

    // a long call in flight to the upstream we kill
    const inflight = client
      .callTool({ name: 'everything__trigger-long-running-operation', arguments: { duration: 10, steps: 10 } }, undefined, { timeout: 30000 })
      .then((r) => ({ r }), (e) => ({ e }));
    await sleep(500);
    const t0 = Date.now();
    process.kill(pid, 'SIGKILL');
    const out = await inflight;
    assert.ok(Date.now() - t0 < 5000, 'the in-flight call hung');
    assert.ok(out.e || out.r.isError, `in-flight call should fail: ${JSON.stringify(out.r)}`);

    // its tools disappear (notified), the other upstream keeps working
    const gone = await until(async () => !(await listAll(client)).names.some((n) => n.startsWith('everything__')), 5000);
    assert.ok(gone, 'everything__ tools still listed after the kill');
    assert.ok(await until(() => changed > 0, 5000), 'no notifications/tools/list_changed reached the SDK client');
    const names = (await listAll(client)).names;
    assert.ok(names.includes('memory__read_graph'));
    const mem = await client.callTool({ name: 'memory__read_graph', arguments: {} });
    assert.equal(mem.isError ?? false, false);

    // restarted with backoff: the tools come back, with a new pid
    const before = changed;
    const back = await until(async () => (await listAll(client)).names.includes('everything__echo'), 20000, 300);
    assert.ok(back, 'everything__ tools did not come back');
    assert.ok(await until(() => changed > before, 5000), 'no list_changed when the tools came back');
    const pid2 = childPid(env.proc.pid, 'mcp-server-everything');
    assert.ok(pid2 > 0 && pid2 !== pid);
    const r = await client.callTool({ name: 'everything__echo', arguments: { message: 'back' } });
    assert.match(r.content[0].text, /back/);
    await client.close();
  });
});
