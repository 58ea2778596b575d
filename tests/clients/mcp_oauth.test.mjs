// SPDX-License-Identifier: MIT
// Real clients through the gateway's MCP OAuth (issue 11 item 5), with no Authorization header configured anywhere:
// - `mcp-remote` (what Claude Desktop runs) finds the protected-resource metadata from the 401, registers itself
//   (RFC 7591), opens "the browser" — here $BROWSER is a script that follows the authorization URL, submits the
//   consent form with an llmgate API key as a person would, and follows the redirect to mcp-remote's callback —
//   exchanges the code with PKCE, then serves tools/list and tools/call over stdio;
// - the official MCP SDK client's OAuth support (`auth()` + an OAuthClientProvider) against the same gateway:
//   StreamableHTTPClientTransport gets 401, the provider is asked to redirect, the test performs the consent,
//   finishAuth(code) exchanges it, and the reconnected client lists and calls tools with the bearer token.
// Both must end up acting as the consenting key (the gateway's audit line names it).
// Needs tests/clients/node_modules (scripts/install-deps.sh --test). A missing install FAILS.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe } from 'node:test';
import { childEnv, freePort, gwTest, sleep, startEnv } from '../integration/harness.mjs';
import { authorize, consent } from '../integration/oauth_flow.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const MCP_REMOTE = path.join(here, 'node_modules', '.bin', 'mcp-remote');
const ADMIN = 'oauth-clients-admin-1';

/** The "browser": GET the authorization URL, submit the consent form with the key, follow the redirect. */
const BROWSER_SCRIPT = `#!/usr/bin/env node
const fs = require('node:fs');
const url = process.argv[2];
const log = (m) => fs.appendFileSync(process.env.OAUTH_TEST_BROWSER_LOG, m + '\\n');
(async () => {
  log('open ' + url);
  const page = await fetch(url, { redirect: 'manual' });
  const html = await page.text();
  const cookie = page.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  const field = (n) => (new RegExp('name="' + n + '" value="([^"]*)"').exec(html) || [])[1];
  if (page.status !== 200 || !field('txn')) { log('consent page ' + page.status + ' ' + html.slice(0, 300)); process.exit(1); }
  const form = new URLSearchParams({ txn: field('txn'), csrf: field('csrf'), api_key: process.env.OAUTH_TEST_API_KEY, action: 'approve' });
  const base = new URL(url).origin;
  const r = await fetch(base + '/oauth/authorize', { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie }, body: form.toString() });
  const loc = r.headers.get('location');
  log('consent ' + r.status + ' -> ' + loc);
  if (r.status !== 303 || !loc) process.exit(1);
  const cb = await fetch(loc);
  log('callback ' + cb.status);
})().catch((e) => { log('error ' + e.stack); process.exit(1); });
`;

function stdioPeer(cmd, args, env) {
  const proc = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env });
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
      if (!line) continue;
      try {
        msgs.push(JSON.parse(line));
      } catch {}
    }
  });
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d) => (stderr += d));
  return {
    proc,
    stderr: () => stderr,
    async request(id, method, params = {}, ms = 60000) {
      proc.stdin.write(JSON.stringify({ jsonrpc: '2.0', id, method, params }) + '\n');
      const deadline = Date.now() + ms;
      while (Date.now() < deadline) {
        const m = msgs.find((x) => x.id === id && (x.result !== undefined || x.error !== undefined));
        if (m) return m;
        if (proc.exitCode !== null) break;
        await sleep(50);
      }
      throw new Error(`no answer to ${method} (id ${id}); mcp-remote stderr:\n${stderr.slice(-4000)}`);
    },
    notify(method, params = {}) {
      proc.stdin.write(JSON.stringify({ jsonrpc: '2.0', method, params }) + '\n');
    },
  };
}

describe('real MCP clients through the gateway OAuth flow (no static header)', () => {
  let env, key;
  const test = gwTest(() => env);

  before(async () => {
    assert.ok(fs.existsSync(MCP_REMOTE), `mcp-remote not installed at ${MCP_REMOTE}: run scripts/install-deps.sh --test`);
    env = await startEnv({
      mutate: (conf) => {
        conf.auth = { admin_key: ADMIN };
        conf.mcp = { auth: { mode: 'oauth', issuer: `http://127.0.0.1:${conf.listeners[0].port}` } };
      },
    });
    const r = await fetch(env.base + '/api/admin/keys', {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'desktop user' }),
    });
    const j = await r.json();
    assert.equal(r.status, 201, JSON.stringify(j));
    key = { secret: j.key, id: j.data.id };
  });
  after(async () => env?.stop());

  test('mcp-remote: 401 -> metadata -> registration -> consent in the "browser" -> tokens -> tools over stdio', async () => {
    const dir = fs.mkdtempSync(path.join(env.dir, 'mcp-remote-'));
    const browser = path.join(dir, 'browser.cjs');
    fs.writeFileSync(browser, BROWSER_SCRIPT, { mode: 0o755 });
    const browserLog = path.join(dir, 'browser.log');
    const callbackPort = await freePort();
    const e = childEnv({
      HOME: dir,
      MCP_REMOTE_CONFIG_DIR: path.join(dir, 'auth'),
      BROWSER: browser,
      OAUTH_TEST_API_KEY: key.secret,
      OAUTH_TEST_BROWSER_LOG: browserLog,
    });
    for (const v of ['DISPLAY', 'WAYLAND_DISPLAY', 'XDG_CURRENT_DESKTOP', 'DBUS_SESSION_BUS_ADDRESS']) delete e[v];
    const peer = stdioPeer(MCP_REMOTE, [`${env.base}/mcp`, String(callbackPort), '--transport', 'http-only'], e);
    try {
      const init = await peer.request(1, 'initialize', { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'desktop', version: '1' } }, 90000);
      assert.ok(init.result, JSON.stringify(init) + '\n' + peer.stderr().slice(-3000));
      peer.notify('notifications/initialized');
      const list = await peer.request(2, 'tools/list');
      const names = list.result.tools.map((t) => t.name);
      assert.ok(names.includes('llmgate__list_models'), names.join(','));
      const call = await peer.request(3, 'tools/call', { name: 'llmgate__list_models', arguments: {} });
      assert.ok(call.result && !call.result.isError, JSON.stringify(call));
      const blog = fs.readFileSync(browserLog, 'utf8');
      assert.match(blog, /consent 303 -> http:\/\/(localhost|127\.0\.0\.1):\d+\/oauth\/callback\?code=lgac_/);
      assert.match(blog, /callback 200/);
      const log = env.log();
      assert.match(log, /registered client lgc_\S+ \(MCP CLI/);
      assert.match(log, new RegExp(`consent: client lgc_\\S+ bound to key ${key.id}`));
      assert.match(log, new RegExp(`tool call key=${key.id} server=llmgate tool=llmgate__list_models`));
      // the tokens were stored by mcp-remote, never an API key
      const stored = fs.readdirSync(path.join(dir, 'auth'), { recursive: true }).filter((f) => String(f).endsWith('tokens.json'));
      assert.equal(stored.length, 1);
      const tok = JSON.parse(fs.readFileSync(path.join(dir, 'auth', String(stored[0])), 'utf8'));
      assert.match(tok.access_token, /^lgat_/);
    } finally {
      peer.proc.kill('SIGTERM');
    }
  });

  test('official SDK client: OAuthClientProvider + finishAuth, then listTools/callTool with the bearer', async () => {
    const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
    const { StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js');
    const { UnauthorizedError } = await import('@modelcontextprotocol/sdk/client/auth.js');
    const redirectUrl = `http://127.0.0.1:${await freePort()}/callback`;
    let clientInfo, tokens, verifier, authUrl;
    const provider = {
      get redirectUrl() {
        return redirectUrl;
      },
      get clientMetadata() {
        return { client_name: 'sdk oauth test', redirect_uris: [redirectUrl], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none' };
      },
      state: () => 'sdk-state-1',
      clientInformation: () => clientInfo,
      saveClientInformation: (i) => (clientInfo = i),
      tokens: () => tokens,
      saveTokens: (t) => (tokens = t),
      redirectToAuthorization: (u) => (authUrl = u),
      saveCodeVerifier: (v) => (verifier = v),
      codeVerifier: () => verifier,
    };
    const url = new URL(`${env.base}/mcp`);
    let transport = new StreamableHTTPClientTransport(url, { authProvider: provider });
    let client = new Client({ name: 'sdk-oauth', version: '1.0.0' });
    await assert.rejects(client.connect(transport), (err) => err instanceof UnauthorizedError);
    assert.ok(authUrl, 'the SDK asked to open the authorization URL');
    assert.equal(authUrl.searchParams.get('code_challenge_method'), 'S256');
    assert.equal(authUrl.searchParams.get('resource'), `${env.base}/mcp`);
    // the person consents
    const page = await authorize(env.base, Object.fromEntries(authUrl.searchParams));
    assert.equal(page.status, 200, page.text);
    const c = await consent(env.base, page, { api_key: key.secret });
    assert.equal(c.status, 303, c.text);
    assert.equal(c.params.state, 'sdk-state-1');
    await transport.finishAuth(c.params.code);
    assert.match(tokens.access_token, /^lgat_/);
    transport = new StreamableHTTPClientTransport(url, { authProvider: provider });
    client = new Client({ name: 'sdk-oauth', version: '1.0.0' });
    await client.connect(transport);
    const { tools } = await client.listTools();
    assert.ok(tools.some((t) => t.name === 'llmgate__list_models'));
    const res = await client.callTool({ name: 'llmgate__list_models', arguments: {} });
    assert.ok(!res.isError, JSON.stringify(res));
    await client.close();
    assert.match(env.log(), new RegExp(`registered client ${clientInfo.client_id} \\(sdk oauth test\\)`));
  });
});
