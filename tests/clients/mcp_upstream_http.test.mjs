// SPDX-License-Identifier: MIT
// The official MCP SDK client against /mcp federating @modelcontextprotocol/server-everything in its Streamable HTTP
// mode (a real remote upstream, keys on):
//  - the gateway initializes the upstream with the capabilities it can relay, so the capability-gated tools show;
//  - sampling/createMessage and elicitation/create from the upstream reach the SDK client on its call's stream and
//    the client's answers get back to the upstream;
//  - a client without the sampling capability gets its upstream's sampling answered by the router (mcp.sampling_model
//    on the caller's key);
//  - the upstream killed and restarted on the same port comes back without restarting the gateway (its new
//    process answers our old session with 400 "No valid session ID": the gateway re-initializes and retries).
// Needs tests/clients/node_modules (scripts/install-deps.sh --test). A missing install FAILS.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe } from 'node:test';
import { GATEWAY_BIN, childEnv, freePort, gwTest, run, sleep, startEnv } from '../integration/harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const EVERYTHING = path.join(here, 'node_modules', '.bin', 'mcp-server-everything');
let Client, StreamableHTTPClientTransport, CreateMessageRequestSchema, ElicitRequestSchema;
let env, secret, keyId, upPort, upstream;
const test = gwTest(() => env);

async function until(fn, ms, step = 200) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => null);
    if (v || Date.now() > deadline) return v;
    await sleep(step);
  }
}

/** server-everything in Streamable HTTP mode on upPort; resolves once it accepts connections. */
async function startUpstream() {
  const proc = spawn(EVERYTHING, ['streamableHttp'], { stdio: ['ignore', 'ignore', 'pipe'], env: childEnv({ PORT: String(upPort) }) });
  let err = '';
  proc.stderr.on('data', (d) => (err += d));
  const up = await until(async () => {
    const r = await fetch(`http://127.0.0.1:${upPort}/mcp`, { method: 'GET' });
    return r.status > 0;
  }, 20000, 100);
  assert.ok(up, `server-everything did not start: ${err}`);
  return proc;
}

async function stopUpstream(proc) {
  if (!proc || proc.exitCode !== null) return;
  const gone = new Promise((r) => proc.on('exit', r));
  proc.kill('SIGKILL');
  await gone;
}

async function connect(capabilities = {}) {
  const client = new Client({ name: 'llmgate-relay-test', version: '1.0.0' }, { capabilities });
  const transport = new StreamableHTTPClientTransport(new URL(env.base + '/mcp'), {
    requestInit: { headers: { Authorization: `Bearer ${secret}` } },
  });
  await client.connect(transport);
  return client;
}

async function toolNames(client) {
  return (await client.listTools()).tools.map((t) => t.name);
}

describe('SDK client, server-everything over Streamable HTTP: relayed requests and an upstream that restarts', () => {
  before(async () => {
    if (!fs.existsSync(EVERYTHING)) throw new Error('tests/clients/node_modules is missing: run `scripts/install-deps.sh --test`');
    ({ Client } = await import('@modelcontextprotocol/sdk/client/index.js'));
    ({ StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js'));
    ({ CreateMessageRequestSchema, ElicitRequestSchema } = await import('@modelcontextprotocol/sdk/types.js'));
    const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmgate-relay-keys-'));
    const db = path.join(keyDir, 'keys.db');
    const made = await run(GATEWAY_BIN, ['keys', 'create', '--db', db, '--name', 'mcp-relay-test', '--json']);
    assert.equal(made.code, 0, made.stderr);
    const madeKey = JSON.parse(made.stdout);
    secret = madeKey.key;
    keyId = madeKey.data.id;
    upPort = await freePort();
    upstream = await startUpstream();
    env = await startEnv({
      models: { 'mock/echo': { endpoints: [{ provider: 'mock', model: 'echo', pricing: { prompt: '0', completion: '0' } }] } },
      mutate(conf) {
        conf.store = { path: db };
        conf.mcp = {
          servers: { ev: { url: `http://127.0.0.1:${upPort}/mcp`, timeout_ms: 20000 } },
          sampling_model: 'mock/echo',
          circuit: { failures: 3, open_ms: 500 },
        };
      },
    });
  });
  after(async () => {
    await stopUpstream(upstream);
    await env?.stop();
  });

  test('the upstream offers its capability-gated tools (the gateway declared sampling, elicitation, roots)', async () => {
    const client = await connect();
    const names = await until(async () => {
      const n = await toolNames(client);
      return n.includes('ev__echo') ? n : null;
    }, 20000);
    assert.ok(names, 'ev__echo never listed');
    for (const t of ['ev__trigger-sampling-request', 'ev__trigger-elicitation-request', 'ev__get-roots-list'])
      assert.ok(names.includes(t), `${t} missing: ${names.join(', ')}`);
    await client.close();
  });

  test("the upstream's sampling and elicitation requests reach the SDK client and its answers get back", async () => {
    const client = await connect({ sampling: {}, elicitation: {} });
    const seen = { sampling: null, elicitation: null };
    client.setRequestHandler(CreateMessageRequestSchema, async (req) => {
      seen.sampling = req.params;
      return { role: 'assistant', content: { type: 'text', text: 'answer from the SDK client' }, model: 'client-side-model', stopReason: 'endTurn' };
    });
    client.setRequestHandler(ElicitRequestSchema, async (req) => {
      seen.elicitation = req.params;
      return { action: 'accept', content: { name: 'Ada Lovelace', check: true } };
    });
    await until(async () => (await toolNames(client)).includes('ev__trigger-sampling-request'), 20000);
    const s = await client.callTool({ name: 'ev__trigger-sampling-request', arguments: { prompt: 'relay me', maxTokens: 20 } });
    assert.equal(s.isError ?? false, false, JSON.stringify(s));
    assert.match(seen.sampling?.messages?.[0]?.content?.text ?? '', /relay me/);
    assert.match(s.content[0].text, /answer from the SDK client/);
    assert.match(s.content[0].text, /client-side-model/);

    const e = await client.callTool({ name: 'ev__trigger-elicitation-request', arguments: {} });
    assert.equal(e.isError ?? false, false, JSON.stringify(e));
    assert.equal(seen.elicitation?.requestedSchema?.type, 'object');
    const text = e.content.map((c) => c.text).join('\n');
    assert.match(text, /Name: Ada Lovelace/);
    assert.match(text, /Agreed to terms: true/);
    await client.close();
  });

  test('a client without the sampling capability: the router answers with mcp.sampling_model on its key', async () => {
    const client = await connect({ elicitation: {} });
    await until(async () => (await toolNames(client)).includes('ev__trigger-sampling-request'), 20000);
    const s = await client.callTool({ name: 'ev__trigger-sampling-request', arguments: { prompt: 'routed sampling', maxTokens: 20 } });
    assert.equal(s.isError ?? false, false, JSON.stringify(s));
    // mock/echo echoes the last user message back
    assert.match(s.content[0].text, /routed sampling/);
    assert.match(s.content[0].text, /"model": "mock\/echo"/);
    await client.close();
    // the router call went through the gateway's own /v1 path as the caller's key: one access-log line for it
    const lines = await until(async () => {
      const l = fs.readFileSync(env.accessLogPath, 'utf8').split('\n').filter((x) => x.includes('mock/echo'));
      return l.length > 0 ? l : null;
    }, 5000, 100);
    assert.ok(lines, 'no access-log line for the routed sampling call');
    assert.ok(keyId && lines.some((l) => l.includes(keyId)), `${keyId} not in:\n${lines.join('\n')}`);
  });

  test('upstream killed and restarted on the same port: the gateway re-initializes and calls work again', async () => {
    const client = await connect();
    await until(async () => (await toolNames(client)).includes('ev__echo'), 20000);
    let r = await client.callTool({ name: 'ev__echo', arguments: { message: 'before' } });
    assert.match(r.content[0].text, /before/);

    await stopUpstream(upstream);
    r = await client.callTool({ name: 'ev__echo', arguments: { message: 'while down' } }).catch((e) => ({ thrown: String(e) }));
    assert.ok(r.thrown || r.isError, `a call to a dead upstream must fail cleanly: ${JSON.stringify(r)}`);

    upstream = await startUpstream(); // a new process: it has never heard of the gateway's session
    const back = await until(async () => {
      const x = await client.callTool({ name: 'ev__echo', arguments: { message: 'after restart' } });
      return !x.isError && /after restart/.test(x.content?.[0]?.text ?? '') ? x : null;
    }, 30000, 300);
    assert.ok(back, `the upstream did not come back: ${env.log().slice(-3000)}`);
    const health = await (await fetch(env.base + '/health')).json();
    assert.equal(health.mcp_upstreams.find((u) => u.name === 'ev')?.state, 'up', JSON.stringify(health.mcp_upstreams));
    await client.close();
  });

  test('after a restart the very first call succeeds: a 400 about the session means re-initialize and retry once', async () => {
    const client = await connect();
    await until(async () => (await toolNames(client)).includes('ev__echo'), 20000);
    await stopUpstream(upstream);
    upstream = await startUpstream();
    // no call in between: the gateway still holds the old session, the new process answers it with 400
    const r = await client.callTool({ name: 'ev__echo', arguments: { message: 'first after restart' } });
    assert.equal(r.isError ?? false, false, JSON.stringify(r));
    assert.match(r.content[0].text, /first after restart/);
    assert.match(env.log(), /upstream ev: session expired; re-initializing/);
    await client.close();
  });
});
