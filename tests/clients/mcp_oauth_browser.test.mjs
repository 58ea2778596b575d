// SPDX-License-Identifier: MIT
// The MCP OAuth consent page in a real headless browser (Chromium over the DevTools protocol, no npm browser driver):
// the page renders with its stylesheet under the strict CSP (no script on the page, no CSP violation reported), a
// person's key typed into the form and "Allow" clicked; the browser's own POST passes the CSRF cookie and Origin
// checks, and the 303 to the client's redirect URI is allowed by the page's form-action — the test's callback server
// receives code, state and iss; the code then exchanges for tokens that work on /mcp. Needs /usr/bin/chromium (or
// $CHROMIUM) and tests/clients/node_modules (undici's WebSocket). A missing browser FAILS.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import { WebSocket } from 'undici';
import { gwTest, sleep, startEnv } from '../integration/harness.mjs';
import { mcpToolsList, pkce, register, token } from '../integration/oauth_flow.mjs';

const ADMIN = 'oauth-browser-admin-1';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

/** Minimal DevTools-protocol session on one page target. */
async function devtools(wsUrl) {
  const ws = new WebSocket(wsUrl);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = reject;
  });
  let id = 0;
  const pending = new Map();
  const events = [];
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data);
    if (m.id && pending.has(m.id)) {
      pending.get(m.id)(m);
      pending.delete(m.id);
    } else if (m.method) {
      events.push(m);
    }
  };
  return {
    events,
    send(method, params = {}) {
      const n = ++id;
      ws.send(JSON.stringify({ id: n, method, params }));
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`DevTools ${method} timed out`)), 20000);
        pending.set(n, (m) => {
          clearTimeout(t);
          m.error ? reject(new Error(`${method}: ${JSON.stringify(m.error)}`)) : resolve(m.result);
        });
      });
    },
    async waitEvent(method, ms = 20000) {
      const deadline = Date.now() + ms;
      while (Date.now() < deadline) {
        const i = events.findIndex((e) => e.method === method);
        if (i >= 0) return events.splice(i, 1)[0];
        await sleep(25);
      }
      throw new Error(`no ${method} within ${ms} ms`);
    },
    async eval(expr) {
      const r = await this.send('Runtime.evaluate', { expression: expr, returnByValue: true, awaitPromise: true });
      if (r.exceptionDetails) throw new Error(`evaluate failed: ${JSON.stringify(r.exceptionDetails)}`);
      return r.result.value;
    },
    close: () => ws.close(),
  };
}

describe('MCP OAuth consent page in headless Chromium', () => {
  let env, key, browser, cbServer, callbacks;
  const test = gwTest(() => env);

  before(async () => {
    assert.ok(fs.existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM} (set CHROMIUM)`);
    env = await startEnv({
      mutate: (conf) => {
        conf.auth = { admin_key: ADMIN };
        conf.mcp = { auth: { mode: 'oauth', issuer: `http://127.0.0.1:${conf.listeners[0].port}` } };
      },
    });
    const r = await fetch(env.base + '/api/admin/keys', {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'browser user' }),
    });
    const j = await r.json();
    key = { secret: j.key, id: j.data.id };
    callbacks = [];
    cbServer = http.createServer((req, res) => {
      const u = new URL(req.url, 'http://127.0.0.1');
      if (u.pathname === '/cb') callbacks.push(u); // the browser may also ask for /favicon.ico
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('signed in');
    });
    await new Promise((res) => cbServer.listen(0, '127.0.0.1', res));
  });
  after(async () => {
    if (browser && browser.exitCode === null) {
      browser.kill('SIGTERM');
      await new Promise((res) => (browser.exitCode !== null ? res() : browser.once('exit', res)));
    }
    cbServer?.close();
    await env?.stop();
  });

  test('render, type the key, click Allow: the redirect reaches the client; tokens work', async () => {
    const redirectUri = `http://127.0.0.1:${cbServer.address().port}/cb`;
    const reg = await register(env.base, { redirect_uris: [redirectUri], client_name: 'Browser test app', token_endpoint_auth_method: 'none' });
    assert.equal(reg.status, 201);
    const { verifier, challenge } = pkce();
    const authUrl = `${env.base}/oauth/authorize?` + new URLSearchParams({ response_type: 'code', client_id: reg.json.client_id, redirect_uri: redirectUri, code_challenge: challenge, code_challenge_method: 'S256', state: 'browser-state', resource: `${env.base}/mcp` });

    const profile = fs.mkdtempSync(path.join(env.dir, 'chromium-'));
    browser = spawn(CHROMIUM, ['--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run', '--remote-debugging-port=0', `--user-data-dir=${profile}`, 'about:blank'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    browser.stderr.setEncoding('utf8');
    browser.stderr.on('data', (d) => (stderr += d));
    let port;
    for (let i = 0; i < 300 && !port; i++) {
      port = (/DevTools listening on ws:\/\/127\.0\.0\.1:(\d+)\//.exec(stderr) || [])[1];
      if (!port) await sleep(50);
    }
    assert.ok(port, `Chromium did not start:\n${stderr.slice(-2000)}`);
    const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
    const pageTarget = targets.find((t) => t.type === 'page');
    const dt = await devtools(pageTarget.webSocketDebuggerUrl);
    try {
      await dt.send('Page.enable');
      await dt.send('Runtime.enable');
      await dt.send('Log.enable');
      await dt.send('Page.navigate', { url: authUrl });
      await dt.waitEvent('Page.loadEventFired');
      const view = await dt.eval(`({
        title: document.title,
        scripts: document.scripts.length,
        app: document.querySelector('h1 strong').textContent,
        approveBg: getComputedStyle(document.querySelector('button.approve')).backgroundColor,
        hasKeyField: !!document.getElementById('api_key'),
      })`);
      assert.equal(view.title, 'Connect to llmgate');
      assert.equal(view.scripts, 0);
      assert.equal(view.app, 'Browser test app');
      assert.equal(view.approveBg, 'rgb(36, 86, 214)', 'the stylesheet loaded under the CSP');
      assert.ok(view.hasKeyField);
      // a person types the key and clicks Allow
      await dt.eval(`document.getElementById('api_key').value = ${JSON.stringify(key.secret)}; document.querySelector('button.approve').click(); true`);
      for (let i = 0; i < 200 && callbacks.length === 0; i++) await sleep(50);
      assert.equal(callbacks.length, 1, 'the browser followed the redirect to the client');
      const cb = callbacks[0];
      assert.equal(cb.searchParams.get('state'), 'browser-state');
      assert.equal(cb.searchParams.get('iss'), env.base);
      assert.match(cb.searchParams.get('code'), /^lgac_/);
      const violations = dt.events.filter((e) => e.method === 'Log.entryAdded' && /Content Security Policy|Refused/i.test(e.params.entry.text));
      assert.deepEqual(violations.map((v) => v.params.entry.text), []);
      const t = await token(env.base, { grant_type: 'authorization_code', code: cb.searchParams.get('code'), code_verifier: verifier, client_id: reg.json.client_id, redirect_uri: redirectUri, resource: `${env.base}/mcp` });
      assert.equal(t.status, 200, JSON.stringify(t.json));
      assert.equal((await mcpToolsList(env.base, '/mcp', t.json.access_token)).init.status, 200);
      assert.match(env.log(), new RegExp(`consent: client ${reg.json.client_id} bound to key ${key.id}`));
    } finally {
      dt.close();
    }
  });
});
