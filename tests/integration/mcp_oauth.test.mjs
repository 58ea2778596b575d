// SPDX-License-Identifier: MIT
// MCP OAuth (issue 11 item 5), end to end with the real binary: one gateway with two listeners — OAuth on the first
// (mcp.auth.listeners), API keys only on the second — a virtual server, keys made with the admin API. Discovery
// (RFC 9728 / 8414 / OIDC alias) and the 401 challenge; the full flow (registration, PKCE, consent with an API key,
// code exchange, MCP calls with the access token carrying the key's tool allow-list, refresh rotation); a Client ID
// Metadata Document served by the test on loopback; bad input with the spec's errors and nothing issued: wrong
// redirect URI, missing/plain PKCE, replayed code (tokens of the first exchange revoked), wrong verifier, CSRF, wrong
// API key, token for another resource (audience), revoked token, disabled and deleted keys, refresh reuse; then a
// second gateway with 1-second codes and 2-second access tokens for expiry, and a restart keeping tokens.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe } from 'node:test';
import { spawn } from 'node:child_process';
import { GATEWAY_BIN, childEnv, freePort, gwTest, sleep, startEnv } from './harness.mjs';
import { authorize, consent, fullFlow, mcpToolsList, pkce, register, revoke, rpc, token } from './oauth_flow.mjs';

const ADMIN = 'oauth-admin-secret-123';
const adminH = { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' };

async function admin(base, method, p, body) {
  const r = await fetch(base + p, { method, headers: adminH, body: body ? JSON.stringify(body) : undefined });
  return { status: r.status, json: await r.json().catch(() => null) };
}

async function makeKey(base, body) {
  const r = await admin(base, 'POST', '/api/admin/keys', body);
  assert.equal(r.status, 201, JSON.stringify(r.json));
  return { secret: r.json.key, id: r.json.data.id };
}

function oauthConf({ keysPort, extraAuth = {} } = {}) {
  return (conf) => {
    const port = conf.listeners[0].port;
    if (keysPort) conf.listeners.push({ address: '127.0.0.1', port: keysPort });
    conf.auth = { admin_key: ADMIN };
    conf.mcp = {
      virtual_servers: { vs: { tools: ['llmgate__list_models'] } },
      auth: {
        mode: 'oauth',
        issuer: `http://127.0.0.1:${port}`,
        listeners: [`127.0.0.1:${port}`],
        allow_loopback_metadata_urls: true,
        ...extraAuth,
      },
    };
  };
}

describe('MCP OAuth: discovery, flow, bad input', () => {
  let env, keysPort, keysBase, key, narrowKey, cimd;
  const test = gwTest(() => env);

  before(async () => {
    keysPort = await freePort();
    env = await startEnv({ mutate: oauthConf({ keysPort }) });
    keysBase = `http://127.0.0.1:${keysPort}`;
    key = await makeKey(env.base, { name: 'oauth-user' });
    narrowKey = await makeKey(env.base, { name: 'narrow', allowed_tools: ['llmgate__list_models'] });
    // a Client ID Metadata Document server on loopback (the config switch allow_loopback_metadata_urls allows it)
    cimd = http.createServer((req, res) => {
      const url = `http://127.0.0.1:${cimd.address().port}${req.url}`;
      const docs = {
        '/client.json': { client_id: url, client_name: 'CIMD test client', redirect_uris: ['http://127.0.0.1/cb'], token_endpoint_auth_method: 'none' },
        '/wrong-id.json': { client_id: 'https://elsewhere.example/client.json', redirect_uris: ['http://127.0.0.1/cb'] },
        '/secret.json': { client_id: url, redirect_uris: ['http://127.0.0.1/cb'], token_endpoint_auth_method: 'client_secret_post' },
      };
      if (req.url === '/huge.json') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ client_id: url, redirect_uris: ['http://127.0.0.1/cb'], pad: 'x'.repeat(10000) }));
        return;
      }
      const d = docs[req.url];
      res.writeHead(d ? 200 : 404, { 'content-type': 'application/json' });
      res.end(JSON.stringify(d || { error: 'not found' }));
    });
    await new Promise((r) => cimd.listen(0, '127.0.0.1', r));
  });
  after(async () => {
    cimd?.close();
    await env?.stop();
  });

  test('discovery documents on the OAuth listener; 404 and the realm challenge on the key listener', async () => {
    const prm = await (await fetch(env.base + '/.well-known/oauth-protected-resource/mcp')).json();
    assert.equal(prm.resource, `${env.base}/mcp`);
    assert.deepEqual(prm.authorization_servers, [env.base]);
    const root = await (await fetch(env.base + '/.well-known/oauth-protected-resource')).json();
    assert.equal(root.resource, `${env.base}/mcp`);
    const vs = await (await fetch(env.base + '/.well-known/oauth-protected-resource/mcp/vs')).json();
    assert.equal(vs.resource, `${env.base}/mcp/vs`);
    assert.equal((await fetch(env.base + '/.well-known/oauth-protected-resource/mcp/nope')).status, 404);
    for (const p of ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration', '/.well-known/oauth-authorization-server/mcp', '/mcp/.well-known/openid-configuration']) {
      const r = await fetch(env.base + p);
      assert.equal(r.status, 200, p);
      const m = await r.json();
      assert.equal(m.issuer, env.base, p);
      assert.deepEqual(m.code_challenge_methods_supported, ['S256']);
      assert.equal(m.client_id_metadata_document_supported, true);
      assert.equal(m.registration_endpoint, `${env.base}/oauth/register`);
      assert.ok(m.token_endpoint_auth_methods_supported.includes('none'));
      assert.equal(m.authorization_response_iss_parameter_supported, true);
    }
    const r401 = await rpc(env.base, '/mcp', { jsonrpc: '2.0', id: 1, method: 'ping' });
    assert.equal(r401.status, 401);
    assert.equal(r401.headers.get('www-authenticate'), `Bearer resource_metadata="${env.base}/.well-known/oauth-protected-resource/mcp", scope="mcp"`);
    const rvs = await rpc(env.base, '/mcp/vs', { jsonrpc: '2.0', id: 1, method: 'ping' });
    assert.match(rvs.headers.get('www-authenticate'), /oauth-protected-resource\/mcp\/vs"/);
    const bad = await rpc(env.base, '/mcp', { jsonrpc: '2.0', id: 1, method: 'ping' }, 'lgat_not-a-real-token');
    assert.equal(bad.status, 401);
    assert.match(bad.headers.get('www-authenticate'), /error="invalid_token"/);

    // the API-key listener: OAuth stays invisible (fast 404, no resource_metadata), keys work
    for (const p of ['/.well-known/oauth-protected-resource/mcp', '/.well-known/oauth-authorization-server', '/.well-known/openid-configuration', '/oauth/token']) {
      const r = await fetch(keysBase + p, { method: p === '/oauth/token' ? 'POST' : 'GET' });
      await r.arrayBuffer();
      assert.equal(r.status, 404, p);
    }
    const k401 = await rpc(keysBase, '/mcp', { jsonrpc: '2.0', id: 1, method: 'ping' });
    assert.equal(k401.status, 401);
    assert.equal(k401.headers.get('www-authenticate'), 'Bearer realm="llmgate"');
    const kok = await mcpToolsList(keysBase, '/mcp', key.secret);
    assert.equal(kok.init.status, 200);
    // API keys keep working on the OAuth listener too
    const kok2 = await mcpToolsList(env.base, '/mcp', key.secret);
    assert.equal(kok2.init.status, 200);
  });

  test('full flow: register, consent with an API key, tokens act as that key, refresh rotates', async () => {
    const f = await fullFlow(env.base, { apiKey: narrowKey.secret, resource: `${env.base}/mcp` });
    assert.match(f.tokens.access_token, /^lgat_/);
    assert.match(f.tokens.refresh_token, /^lgrt_/);
    assert.equal(f.tokens.token_type, 'Bearer');
    assert.equal(f.tokens.expires_in, 3600);
    assert.equal(f.redirect.params.iss, env.base, 'RFC 9207 iss on the redirect');
    assert.ok(f.redirect.location.startsWith(f.redirectUri + '?'));
    const { init, list } = await mcpToolsList(env.base, '/mcp', f.tokens.access_token);
    assert.equal(init.status, 200, init.text);
    // the narrow key's tool allow-list applies to the token
    assert.deepEqual(list.json.result.tools.map((t) => t.name), ['llmgate__list_models']);
    // and the key's identity is what the tool call is audited under
    const sid = init.headers.get('mcp-session-id');
    const call = await rpc(env.base, '/mcp', { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'llmgate__list_models', arguments: {} } }, f.tokens.access_token, { 'mcp-session-id': sid });
    assert.equal(call.status, 200);
    assert.ok(call.json.result, call.text);
    assert.match(env.log(), new RegExp(`tool call key=${narrowKey.id} server=llmgate tool=llmgate__list_models`));
    assert.match(env.log(), new RegExp(`consent: client ${f.clientId} bound to key ${narrowKey.id}`));

    // refresh: a new pair; the old refresh token is spent; presenting it again revokes the family
    const r1 = await token(env.base, { grant_type: 'refresh_token', refresh_token: f.tokens.refresh_token, client_id: f.clientId });
    assert.equal(r1.status, 200, JSON.stringify(r1.json));
    assert.notEqual(r1.json.refresh_token, f.tokens.refresh_token);
    assert.equal((await mcpToolsList(env.base, '/mcp', r1.json.access_token)).init.status, 200);
    const reuse = await token(env.base, { grant_type: 'refresh_token', refresh_token: f.tokens.refresh_token, client_id: f.clientId });
    assert.equal(reuse.status, 400);
    assert.equal(reuse.json.error, 'invalid_grant');
    assert.equal((await mcpToolsList(env.base, '/mcp', r1.json.access_token)).init.status, 401, 'family revoked after reuse');
    const r2 = await token(env.base, { grant_type: 'refresh_token', refresh_token: r1.json.refresh_token, client_id: f.clientId });
    assert.equal(r2.json.error, 'invalid_grant');
  });

  test('confidential client: client_secret_basic and _post; wrong secret is invalid_client 401', async () => {
    const reg = await register(env.base, { redirect_uris: ['https://app.example/cb'], token_endpoint_auth_method: 'client_secret_basic', client_name: 'conf' });
    assert.equal(reg.status, 201);
    assert.match(reg.json.client_secret, /^lgcs_/);
    const { verifier, challenge } = pkce();
    const page = await authorize(env.base, { response_type: 'code', client_id: reg.json.client_id, redirect_uri: 'https://app.example/cb', code_challenge: challenge, code_challenge_method: 'S256' });
    const c = await consent(env.base, page, { api_key: key.secret });
    assert.equal(c.status, 303);
    const form = { grant_type: 'authorization_code', code: c.params.code, code_verifier: verifier, redirect_uri: 'https://app.example/cb' };
    const wrong = await token(env.base, form, { authorization: 'Basic ' + Buffer.from(`${reg.json.client_id}:nope`).toString('base64') });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.json.error, 'invalid_client');
    assert.match(wrong.headers.get('www-authenticate'), /^Basic/);
    const missing = await token(env.base, { ...form, client_id: reg.json.client_id });
    assert.equal(missing.status, 401);
    const ok = await token(env.base, form, { authorization: 'Basic ' + Buffer.from(`${reg.json.client_id}:${reg.json.client_secret}`).toString('base64') });
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
  });

  test('Client ID Metadata Document: fetched from its URL, name shown, flow completes; bad documents refused', async () => {
    const cid = `http://127.0.0.1:${cimd.address().port}/client.json`;
    const f = await fullFlow(env.base, { apiKey: key.secret, clientId: cid, redirectUri: 'http://127.0.0.1:39001/cb' });
    assert.equal((await mcpToolsList(env.base, '/mcp', f.tokens.access_token)).init.status, 200);
    const { challenge } = pkce();
    const page = await authorize(env.base, { response_type: 'code', client_id: cid, redirect_uri: 'http://127.0.0.1:39001/cb', code_challenge: challenge, code_challenge_method: 'S256' });
    assert.match(page.text, /CIMD test client/);
    for (const doc of ['wrong-id.json', 'secret.json', 'missing.json', 'huge.json']) {
      const u = `http://127.0.0.1:${cimd.address().port}/${doc}`;
      const r = await authorize(env.base, { response_type: 'code', client_id: u, redirect_uri: 'http://127.0.0.1/cb', code_challenge: challenge, code_challenge_method: 'S256' });
      assert.equal(r.status, 400, doc);
      assert.equal(r.headers.get('location'), null, doc);
      assert.equal(r.txn, undefined, doc);
    }
  });

  test('registration errors: RFC 7591 error codes', async () => {
    const cases = [
      [{ redirect_uris: ['http://evil.example/cb'] }, 'invalid_redirect_uri'],
      [{ redirect_uris: ['javascript:alert(1)'] }, 'invalid_redirect_uri'],
      [{ redirect_uris: ['https://a.example/cb#frag'] }, 'invalid_redirect_uri'],
      [{ redirect_uris: [] }, 'invalid_redirect_uri'],
      [{ redirect_uris: ['https://a.example/cb'], grant_types: ['client_credentials'] }, 'invalid_client_metadata'],
      [{ redirect_uris: ['https://a.example/cb'], response_types: ['token'] }, 'invalid_client_metadata'],
      [{ redirect_uris: ['https://a.example/cb'], token_endpoint_auth_method: 'private_key_jwt' }, 'invalid_client_metadata'],
      ['not json', 'invalid_client_metadata'],
    ];
    for (const [body, error] of cases) {
      const r = await register(env.base, body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.json.error, error, JSON.stringify(body));
      assert.ok(r.json.error_description);
    }
  });

  test('authorization request errors: unknown client / wrong redirect URI get a page, never a redirect; others redirect', async () => {
    const reg = await register(env.base, { redirect_uris: ['http://127.0.0.1:47123/callback', 'https://app.example/cb'] });
    const id = reg.json.client_id;
    const { challenge } = pkce();
    const good = { response_type: 'code', client_id: id, redirect_uri: 'https://app.example/cb', code_challenge: challenge, code_challenge_method: 'S256', state: 's1' };
    for (const p of [{ ...good, client_id: 'lgc_unknown' }, { ...good, redirect_uri: 'https://app.example/other' }, { ...good, redirect_uri: 'https://app.example/cb/' }, { ...good, redirect_uri: undefined }]) {
      if (p.redirect_uri === undefined) delete p.redirect_uri; // two registered: redirect_uri is required
      const r = await authorize(env.base, p);
      assert.equal(r.status, 400, JSON.stringify(p));
      assert.equal(r.headers.get('location'), null);
      assert.equal(r.txn, undefined);
    }
    // loopback redirect: any port (RFC 8252 §7.3), same path
    const lb = await authorize(env.base, { ...good, redirect_uri: 'http://127.0.0.1:5999/callback' });
    assert.equal(lb.status, 200);
    const lbBad = await authorize(env.base, { ...good, redirect_uri: 'http://127.0.0.1:5999/other' });
    assert.equal(lbBad.status, 400);
    const errs = [
      [{ ...good, code_challenge: undefined }, 'invalid_request'],
      [{ ...good, code_challenge_method: 'plain' }, 'invalid_request'],
      [{ ...good, code_challenge: 'short' }, 'invalid_request'],
      [{ ...good, response_type: 'token' }, 'unsupported_response_type'],
      [{ ...good, resource: 'https://other.example/mcp' }, 'invalid_target'],
      [{ ...good, resource: `${env.base}/mcp/nope` }, 'invalid_target'],
    ];
    for (const [p, error] of errs) {
      for (const k of Object.keys(p)) if (p[k] === undefined) delete p[k];
      const r = await authorize(env.base, p);
      assert.equal(r.status, 303, JSON.stringify(p));
      const loc = new URL(r.headers.get('location'));
      assert.equal(loc.origin + loc.pathname, 'https://app.example/cb');
      assert.equal(loc.searchParams.get('error'), error, JSON.stringify(p));
      assert.equal(loc.searchParams.get('state'), 's1');
      assert.equal(loc.searchParams.get('code'), null);
    }
  });

  test('consent page: strict CSP, no script; CSRF, foreign Origin and wrong keys refused; deny returns access_denied', async () => {
    const reg = await register(env.base, { redirect_uris: ['https://app.example/cb'], client_name: '<script>alert(1)</script>' });
    const { challenge } = pkce();
    const params = { response_type: 'code', client_id: reg.json.client_id, redirect_uri: 'https://app.example/cb', code_challenge: challenge, code_challenge_method: 'S256', state: 'st' };
    const page = await authorize(env.base, params);
    const csp = page.headers.get('content-security-policy');
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /form-action 'self' https:\/\/app\.example/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.doesNotMatch(csp, /unsafe-inline/);
    assert.equal(page.headers.get('x-frame-options'), 'DENY');
    assert.equal(page.headers.get('referrer-policy'), 'same-origin');
    assert.equal(page.headers.get('cache-control'), 'no-store');
    assert.doesNotMatch(page.text, /<script/i);
    assert.match(page.text, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
    assert.match(page.cookie, /^lg_csrf_/);
    // missing cookie, wrong csrf, foreign Origin: 403, no code
    const noCookie = await consent(env.base, { ...page, cookie: '' }, { api_key: key.secret });
    assert.equal(noCookie.status, 403);
    const wrongCsrf = await consent(env.base, { ...page, csrf: 'x'.repeat(43) }, { api_key: key.secret });
    assert.equal(wrongCsrf.status, 403);
    const foreign = await consent(env.base, page, { api_key: key.secret }, { origin: 'https://evil.example' });
    assert.equal(foreign.status, 403);
    // wrong key: the page again with an error, no redirect
    const wrongKey = await consent(env.base, page, { api_key: 'sk-lg-not-a-key' });
    assert.equal(wrongKey.status, 400);
    assert.equal(wrongKey.location, null);
    assert.match(wrongKey.text, /not valid/);
    const deny = await consent(env.base, page, { action: 'deny' });
    assert.equal(deny.status, 303);
    assert.equal(deny.params.error, 'access_denied');
    assert.equal(deny.params.state, 'st');
    assert.equal(deny.params.code, undefined);
    // the transaction is gone after the decision
    assert.equal((await consent(env.base, page, { api_key: key.secret })).status, 400);
  });

  test("the key's rate limit applies to calls made with its token", async () => {
    const k = await makeKey(env.base, { name: 'slow', rpm: 2 });
    const f = await fullFlow(env.base, { apiKey: k.secret });
    const { init } = await mcpToolsList(env.base, '/mcp', f.tokens.access_token);
    const h = { 'mcp-session-id': init.headers.get('mcp-session-id'), 'mcp-protocol-version': '2025-11-25' };
    const call = (id) => rpc(env.base, '/mcp', { jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'llmgate__list_models', arguments: {} } }, f.tokens.access_token, h);
    const results = [await call(10), await call(11), await call(12)];
    assert.ok(results[0].json.result && results[1].json.result, results.map((r) => r.text).join('\n'));
    assert.equal(results[2].json.error?.data?.reason, 'rate_limited', results[2].text);
  });

  test('a consent page submitted twice at once yields exactly one code', async () => {
    const reg = await register(env.base, { redirect_uris: ['https://app.example/cb'] });
    const { challenge } = pkce();
    const page = await authorize(env.base, { response_type: 'code', client_id: reg.json.client_id, redirect_uri: 'https://app.example/cb', code_challenge: challenge, code_challenge_method: 'S256' });
    const both = await Promise.all([consent(env.base, page, { api_key: key.secret }), consent(env.base, page, { api_key: key.secret })]);
    assert.deepEqual(both.map((r) => r.status).sort(), [303, 400]);
    assert.equal(both.filter((r) => r.params.code).length, 1);
  });

  test('admin approval: the admin key plus a key id binds the token to that key', async () => {
    const f = await fullFlow(env.base, { apiKey: ADMIN, extraConsent: { key_id: narrowKey.id } });
    const { list } = await mcpToolsList(env.base, '/mcp', f.tokens.access_token);
    assert.deepEqual(list.json.result.tools.map((t) => t.name), ['llmgate__list_models']);
  });

  test('token endpoint errors: replayed code revokes its tokens, wrong verifier / redirect / client, nothing issued', async () => {
    const f = await fullFlow(env.base, { apiKey: key.secret });
    const again = await token(env.base, { grant_type: 'authorization_code', code: f.code, code_verifier: f.verifier, client_id: f.clientId, redirect_uri: f.redirectUri });
    assert.equal(again.status, 400);
    assert.equal(again.json.error, 'invalid_grant');
    assert.equal(again.json.access_token, undefined);
    assert.equal((await mcpToolsList(env.base, '/mcp', f.tokens.access_token)).init.status, 401, 'replay revoked the first tokens');
    assert.equal((await token(env.base, { grant_type: 'refresh_token', refresh_token: f.tokens.refresh_token, client_id: f.clientId })).json.error, 'invalid_grant');

    // fresh codes for each bad exchange (a failed exchange burns its code)
    const fresh = async (clientId, redirectUri = 'http://127.0.0.1:47123/callback') => {
      const { verifier, challenge } = pkce();
      const page = await authorize(env.base, { response_type: 'code', client_id: clientId, redirect_uri: redirectUri, code_challenge: challenge, code_challenge_method: 'S256' });
      const c = await consent(env.base, page, { api_key: key.secret });
      return { code: c.params.code, verifier };
    };
    let c = await fresh(f.clientId);
    let r = await token(env.base, { grant_type: 'authorization_code', code: c.code, code_verifier: pkce().verifier, client_id: f.clientId });
    assert.equal(r.status, 400);
    assert.equal(r.json.error, 'invalid_grant');
    assert.match(r.json.error_description, /PKCE/);
    r = await token(env.base, { grant_type: 'authorization_code', code: c.code, code_verifier: c.verifier, client_id: f.clientId });
    assert.equal(r.json.error, 'invalid_grant', 'the code is burnt after a failed exchange');
    c = await fresh(f.clientId);
    r = await token(env.base, { grant_type: 'authorization_code', code: c.code, code_verifier: c.verifier, client_id: f.clientId, redirect_uri: 'http://127.0.0.1:47123/other' });
    assert.equal(r.json.error, 'invalid_grant');
    const other = await register(env.base, { redirect_uris: ['http://127.0.0.1:47123/callback'] });
    c = await fresh(f.clientId);
    r = await token(env.base, { grant_type: 'authorization_code', code: c.code, code_verifier: c.verifier, client_id: other.json.client_id });
    assert.equal(r.json.error, 'invalid_grant');
    c = await fresh(f.clientId);
    r = await token(env.base, { grant_type: 'authorization_code', code: c.code, code_verifier: c.verifier, client_id: f.clientId, resource: `${env.base}/mcp/vs` });
    assert.equal(r.json.error, 'invalid_target');
    r = await token(env.base, { grant_type: 'authorization_code', code: c.code, code_verifier: 'short', client_id: f.clientId });
    assert.equal(r.json.error, 'invalid_grant');
    // shape errors
    assert.equal((await token(env.base, { grant_type: 'password', client_id: f.clientId })).json.error, 'unsupported_grant_type');
    assert.equal((await token(env.base, { client_id: f.clientId })).json.error, 'invalid_request');
    const dup = await fetch(env.base + '/oauth/token', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=authorization_code&code=a&code=b&client_id=' + f.clientId });
    assert.equal((await dup.json()).error, 'invalid_request');
    const json = await fetch(env.base + '/oauth/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(json.status, 400);
    assert.equal((await json.json()).error, 'invalid_request');
    const get = await fetch(env.base + '/oauth/token');
    assert.equal(get.status, 405);
    await get.arrayBuffer();
    assert.equal(r.headers.get('cache-control'), 'no-store');
    assert.equal(r.headers.get('access-control-allow-origin'), '*', 'browser-based clients can read token errors');
  });

  test('audience: a token for /mcp/vs is refused on /mcp and the reverse', async () => {
    const vs = await fullFlow(env.base, { apiKey: key.secret, resource: `${env.base}/mcp/vs` });
    assert.equal((await mcpToolsList(env.base, '/mcp/vs', vs.tokens.access_token)).init.status, 200);
    const wrong = await mcpToolsList(env.base, '/mcp', vs.tokens.access_token);
    assert.equal(wrong.init.status, 401);
    assert.match(wrong.init.headers.get('www-authenticate'), /invalid_token/);
    const root = await fullFlow(env.base, { apiKey: key.secret });
    assert.equal((await mcpToolsList(env.base, '/mcp/vs', root.tokens.access_token)).init.status, 401);
    // an OAuth token is not an API key on /v1 either
    const v1 = await fetch(env.base + '/v1/chat/completions', {
      method: 'POST',
      headers: { authorization: `Bearer ${root.tokens.access_token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'test/echo', messages: [{ role: 'user', content: 'hi' }] }),
    });
    await v1.arrayBuffer();
    assert.equal(v1.status, 401);
  });

  test('revocation: access token alone; a refresh token takes the family; unknown tokens still 200', async () => {
    const f = await fullFlow(env.base, { apiKey: key.secret });
    assert.equal(await revoke(env.base, { token: f.tokens.access_token, client_id: f.clientId }), 200);
    assert.equal((await mcpToolsList(env.base, '/mcp', f.tokens.access_token)).init.status, 401);
    const r = await token(env.base, { grant_type: 'refresh_token', refresh_token: f.tokens.refresh_token, client_id: f.clientId });
    assert.equal(r.status, 200, 'the refresh token survives revoking an access token');
    assert.equal(await revoke(env.base, { token: r.json.refresh_token, client_id: f.clientId }), 200);
    assert.equal((await mcpToolsList(env.base, '/mcp', r.json.access_token)).init.status, 401);
    assert.equal(await revoke(env.base, { token: 'lgat_unknown', client_id: f.clientId }), 200);
    // another client cannot revoke it
    const g = await fullFlow(env.base, { apiKey: key.secret });
    assert.equal(await revoke(env.base, { token: g.tokens.access_token, client_id: f.clientId }), 200);
    assert.equal((await mcpToolsList(env.base, '/mcp', g.tokens.access_token)).init.status, 200);
  });

  test('disabled and deleted keys: their tokens stop working and cannot be refreshed; consent refused', async () => {
    const k = await makeKey(env.base, { name: 'to-disable' });
    const f = await fullFlow(env.base, { apiKey: k.secret });
    assert.equal((await mcpToolsList(env.base, '/mcp', f.tokens.access_token)).init.status, 200);
    assert.equal((await admin(env.base, 'PATCH', `/api/admin/keys/${k.id}`, { disabled: true })).status, 200);
    assert.equal((await mcpToolsList(env.base, '/mcp', f.tokens.access_token)).init.status, 401);
    const r = await token(env.base, { grant_type: 'refresh_token', refresh_token: f.tokens.refresh_token, client_id: f.clientId });
    assert.equal(r.status, 400);
    assert.equal(r.json.error, 'invalid_grant');
    assert.match(r.json.error_description, /disabled/);
    // consent with the disabled key
    const { challenge } = pkce();
    const page = await authorize(env.base, { response_type: 'code', client_id: f.clientId, redirect_uri: f.redirectUri, code_challenge: challenge, code_challenge_method: 'S256' });
    const c = await consent(env.base, page, { api_key: k.secret });
    assert.equal(c.status, 400);
    assert.equal(c.location, null);
    // re-enabled: the same token works again (it was never revoked), then deleted: gone for good
    assert.equal((await admin(env.base, 'PATCH', `/api/admin/keys/${k.id}`, { disabled: false })).status, 200);
    assert.equal((await mcpToolsList(env.base, '/mcp', f.tokens.access_token)).init.status, 200);
    assert.equal((await admin(env.base, 'DELETE', `/api/admin/keys/${k.id}`)).status, 200);
    assert.equal((await mcpToolsList(env.base, '/mcp', f.tokens.access_token)).init.status, 401);
  });
});

describe('MCP OAuth: expiry and restart', () => {
  let env, key;
  const test = gwTest(() => env);
  before(async () => {
    env = await startEnv({ mutate: oauthConf({ extraAuth: { code_ttl_s: 1, access_token_ttl_s: 2 } }) });
    key = await makeKey(env.base, { name: 'expiry' });
  });
  after(async () => env?.stop());

  test('codes expire after code_ttl_s, access tokens after access_token_ttl_s; refresh still works', async () => {
    const reg = await register(env.base, { redirect_uris: ['https://app.example/cb'] });
    const { verifier, challenge } = pkce();
    const page = await authorize(env.base, { response_type: 'code', client_id: reg.json.client_id, redirect_uri: 'https://app.example/cb', code_challenge: challenge, code_challenge_method: 'S256' });
    const c = await consent(env.base, page, { api_key: key.secret });
    await sleep(2200);
    const late = await token(env.base, { grant_type: 'authorization_code', code: c.params.code, code_verifier: verifier, client_id: reg.json.client_id });
    assert.equal(late.status, 400);
    assert.equal(late.json.error, 'invalid_grant');
    assert.match(late.json.error_description, /expired/);

    const f = await fullFlow(env.base, { apiKey: key.secret });
    assert.equal(f.tokens.expires_in, 2);
    assert.equal((await mcpToolsList(env.base, '/mcp', f.tokens.access_token)).init.status, 200);
    await sleep(3200);
    const expired = await mcpToolsList(env.base, '/mcp', f.tokens.access_token);
    assert.equal(expired.init.status, 401);
    assert.match(expired.init.headers.get('www-authenticate'), /error="invalid_token"/);
    const r = await token(env.base, { grant_type: 'refresh_token', refresh_token: f.tokens.refresh_token, client_id: f.clientId });
    assert.equal(r.status, 200);
    assert.equal((await mcpToolsList(env.base, '/mcp', r.json.access_token)).init.status, 200);
  });

  test('restart: registered clients and tokens come back from the store, revocations too', async () => {
    const f = await fullFlow(env.base, { apiKey: key.secret });
    const g = await fullFlow(env.base, { apiKey: key.secret });
    assert.equal(await revoke(env.base, { token: g.tokens.refresh_token, client_id: g.clientId }), 200);
    await env.stop();
    const proc = spawn(GATEWAY_BIN, ['--config', env.configPath], { stdio: 'ignore', env: childEnv() });
    try {
      let up = false;
      for (let i = 0; i < 200 && !up; i++) {
        try {
          up = (await fetch(env.base + '/health')).status === 200;
        } catch {}
        if (!up) await sleep(50);
      }
      assert.ok(up, 'restarted gateway is healthy');
      const r = await token(env.base, { grant_type: 'refresh_token', refresh_token: f.tokens.refresh_token, client_id: f.clientId });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.equal((await mcpToolsList(env.base, '/mcp', r.json.access_token)).init.status, 200);
      const gr = await token(env.base, { grant_type: 'refresh_token', refresh_token: g.tokens.refresh_token, client_id: g.clientId });
      assert.equal(gr.json.error, 'invalid_grant', 'revoked before the restart stays revoked');
    } finally {
      proc.kill('SIGTERM');
      await new Promise((res) => (proc.exitCode !== null ? res() : proc.once('exit', res)));
    }
  });
});
