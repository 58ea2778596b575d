// SPDX-License-Identifier: MIT
// Helpers for the MCP OAuth tests: PKCE, dynamic registration, the authorization request, the consent form (as a
// browser would submit it: cookie + hidden fields), the token endpoint, and MCP calls with a bearer token.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';

export const ACCEPT = 'application/json, text/event-stream';

export function pkce() {
  const verifier = crypto.randomBytes(40).toString('base64url');
  const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
  return { verifier, challenge };
}

export async function register(base, body) {
  const r = await fetch(base + '/oauth/register', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: r.status, headers: r.headers, json: await r.json().catch(() => null) };
}

/** GET /oauth/authorize; never follows redirects. */
export async function authorize(base, params) {
  const r = await fetch(base + '/oauth/authorize?' + new URLSearchParams(params), { redirect: 'manual' });
  const text = await r.text();
  const cookies = r.headers.getSetCookie().map((c) => c.split(';')[0]);
  const field = (name) => (new RegExp(`name="${name}" value="([^"]*)"`).exec(text) || [])[1];
  return { status: r.status, headers: r.headers, text, cookie: cookies.join('; '), txn: field('txn'), csrf: field('csrf') };
}

/** Submit the consent form of page (from authorize()). fields override/add form fields. */
export async function consent(base, page, fields = {}, headers = {}) {
  const form = new URLSearchParams({ txn: page.txn, csrf: page.csrf, action: 'approve', ...fields });
  const r = await fetch(base + '/oauth/authorize', {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: page.cookie, ...headers },
    body: form.toString(),
  });
  const text = await r.text();
  const location = r.headers.get('location');
  const params = location ? Object.fromEntries(new URL(location).searchParams) : {};
  return { status: r.status, headers: r.headers, text, location, params };
}

export async function token(base, fields, headers = {}) {
  const r = await fetch(base + '/oauth/token', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(fields).toString(),
  });
  return { status: r.status, headers: r.headers, json: await r.json().catch(() => null) };
}

export async function revoke(base, fields) {
  const r = await fetch(base + '/oauth/revoke', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
  });
  await r.arrayBuffer();
  return r.status;
}

/** Registration + authorization + consent with apiKey + code exchange. Returns everything a test may look at. */
export async function fullFlow(base, { apiKey, redirectUri = 'http://127.0.0.1:47123/callback', resource, clientId, extraConsent } = {}) {
  if (!clientId) {
    const reg = await register(base, { redirect_uris: [redirectUri], client_name: 'flow test', token_endpoint_auth_method: 'none' });
    assert.equal(reg.status, 201, JSON.stringify(reg.json));
    clientId = reg.json.client_id;
  }
  const { verifier, challenge } = pkce();
  const state = crypto.randomBytes(8).toString('hex');
  const params = { response_type: 'code', client_id: clientId, redirect_uri: redirectUri, code_challenge: challenge, code_challenge_method: 'S256', state };
  if (resource) params.resource = resource;
  const page = await authorize(base, params);
  assert.equal(page.status, 200, page.text);
  assert.ok(page.txn && page.csrf, 'consent page carries txn and csrf');
  const c = await consent(base, page, { api_key: apiKey, ...(extraConsent || {}) });
  assert.equal(c.status, 303, c.text);
  assert.equal(c.params.state, state, 'state echoed');
  assert.ok(c.params.code, c.location);
  const t = await token(base, { grant_type: 'authorization_code', code: c.params.code, code_verifier: verifier, client_id: clientId, redirect_uri: redirectUri, ...(resource ? { resource } : {}) });
  assert.equal(t.status, 200, JSON.stringify(t.json));
  return { clientId, verifier, challenge, state, code: c.params.code, redirect: c, tokens: t.json, redirectUri };
}

/** One JSON-RPC POST to path with a bearer; the response object (JSON or the SSE event carrying it). */
export async function rpc(base, p, body, bearer, extraHeaders = {}) {
  const headers = { 'content-type': 'application/json', accept: ACCEPT, ...extraHeaders };
  if (bearer) headers.authorization = `Bearer ${bearer}`;
  const r = await fetch(base + p, { method: 'POST', headers, body: JSON.stringify(body), signal: AbortSignal.timeout(15000) });
  const text = await r.text();
  let json = null;
  if ((r.headers.get('content-type') || '').includes('text/event-stream')) {
    json =
      text
        .split('\n')
        .filter((l) => l.startsWith('data:') && l.length > 6)
        .map((l) => JSON.parse(l.slice(5)))
        .find((m) => m.id !== undefined) || null;
  } else if (text) {
    try {
      json = JSON.parse(text);
    } catch {}
  }
  return { status: r.status, headers: r.headers, json, text };
}

export async function mcpInitialize(base, p, bearer) {
  return rpc(base, p, { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'oauth-test', version: '1' } } }, bearer);
}

/** initialize + tools/list with the bearer; returns { init, list }. */
export async function mcpToolsList(base, p, bearer) {
  const init = await mcpInitialize(base, p, bearer);
  if (init.status !== 200) return { init };
  const sid = init.headers.get('mcp-session-id');
  const h = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
  await rpc(base, p, { jsonrpc: '2.0', method: 'notifications/initialized' }, bearer, h);
  const list = await rpc(base, p, { jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} }, bearer, h);
  return { init, list, sid };
}
