// SPDX-License-Identifier: MIT
// The dashboard's server side, end to end with the real binary (issue 12), without a browser (tests/browser has the
// browser): static files with a strict CSP, the session cookie (sign-in, sign-out, forged/expired/ended cookies, the
// sign-in throttle), CSRF on every state-changing call, and the admin JSON views the page reads (/status, /timeseries,
// /models, /generations, /generations/{id}, /mcp, keys with credit used, reload with its result), each usable with the
// admin key as Bearer and checked against the traffic the test sent.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import { BUILD_DIR, assertClose, assertError, ep, expectedCost, freePort, gwTest, run, sleep, startEnv, waitFor } from './harness.mjs';

const ADMIN = 'adm-dash-' + Math.random().toString(36).slice(2) + '-secret';
const UPSTREAM_SECRET = 'sk-upstream-' + Math.random().toString(36).slice(2) + '-do-not-leak';
const adminH = { authorization: `Bearer ${ADMIN}` };
const PROMPT = '0.0001';
const COMPLETION = '0.0002';

function dashEnv(extra = {}) {
  return startEnv({
    models: {
      'test/priced': { endpoints: [ep('up1', 'echo', PROMPT, COMPLETION)] },
      // a failing cheap endpoint first, then a good one: every request is a fallback
      'test/fallback': { policy: 'price', endpoints: [ep('up1', 'fail-500', '0.000001', '0.000001'), ep('up2', 'echo', '0.000002', '0.000002')] },
    },
    mutate(conf) {
      conf.store = { path: path.join(path.dirname(conf.access_log), 'llmgate.db'), flush_interval_ms: 20 };
      conf.auth = { admin_key: ADMIN, ...(extra.auth || {}) };
      conf.providers[0].api_key = UPSTREAM_SECRET;
      if (extra.mutate) extra.mutate(conf);
    },
  });
}

/** fetch that never follows redirects and returns {status, headers, text, json}. */
async function req(base, p, { method = 'GET', headers = {}, body } = {}) {
  const res = await fetch(base + p, {
    method,
    headers: body !== undefined ? { 'content-type': 'application/json', ...headers } : headers,
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    redirect: 'manual',
  });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: res.status, headers: res.headers, text, json };
}

async function signIn(base, key = ADMIN) {
  const r = await req(base, '/api/admin/session', { method: 'POST', body: { key } });
  assert.equal(r.status, 200, r.text);
  const sc = r.headers.get('set-cookie');
  const m = /llmgate_session=([0-9a-f]{64})/.exec(sc);
  assert.ok(m, sc);
  return { cookie: `llmgate_session=${m[1]}`, id: m[1], csrf: r.json.data.csrf_token, setCookie: sc, body: r.text };
}

const DATA_ROUTES = ['/status', '/timeseries', '/models', '/generations', '/mcp', '/keys', '/usage', '/providers'];

describe('dashboard: static files, CSP and redirects', () => {
  let env;
  const test = gwTest(() => env);
  before(async () => {
    env = await dashEnv();
  });
  after(async () => env && (await env.stop()));

  test('GET /dashboard serves the page with a strict CSP; assets and security headers', async () => {
    const r = await req(env.base, '/dashboard');
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /^text\/html/);
    const csp = r.headers.get('content-security-policy');
    assert.ok(csp, 'CSP header present');
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.match(csp, /style-src 'self'(;|$)/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(r.headers.get('x-frame-options'), 'DENY');
    // the page has no inline script or style and fetches nothing from another origin
    assert.doesNotMatch(r.text, /<script(?![^>]*\bsrc=)[^>]*>/i);
    assert.doesNotMatch(r.text, /<style|\sstyle=/i);
    assert.doesNotMatch(r.text, /https?:\/\//);
    for (const [file, type] of [
      ['app.js', /^text\/javascript/],
      ['charts.js', /^text\/javascript/],
      ['app.css', /^text\/css/],
      ['favicon.svg', /^image\/svg\+xml/],
    ]) {
      const a = await req(env.base, '/dashboard/' + file);
      assert.equal(a.status, 200, file);
      assert.match(a.headers.get('content-type'), type, file);
      assert.ok(a.headers.get('content-security-policy'), file);
      assert.doesNotMatch(a.text, /https?:\/\/(?!www\.w3\.org\/2000\/svg)/, `${file} references no other origin`);
      const etag = a.headers.get('etag');
      assert.ok(etag, file);
      const again = await req(env.base, '/dashboard/' + file, { headers: { 'if-none-match': etag } });
      assert.equal(again.status, 304, file);
    }
    assert.equal((await req(env.base, '/dashboard/')).status, 200);
    assert.equal((await req(env.base, '/dashboard/nope.js')).status, 404);
    assert.equal((await req(env.base, '/dashboard/../llmgate.json')).status, 404);
    const post = await req(env.base, '/dashboard', { method: 'POST', body: {} });
    assertError(post, 405);
  });

  test('/ and /ui redirect to /dashboard', async () => {
    for (const p of ['/', '/ui']) {
      const r = await req(env.base, p);
      assert.equal(r.status, 302, p);
      assert.equal(r.headers.get('location'), '/dashboard', p);
    }
  });
});

describe('dashboard: sessions, CSRF and the admin views', () => {
  let env;
  const test = gwTest(() => env);
  const sent = [];
  before(async () => {
    env = await dashEnv();
    // traffic before anything else: 4 plain + 2 streamed
    for (let i = 0; i < 4; i++) {
      const r = await env.chat('test/priced', 'count these words please ' + i);
      assert.equal(r.status, 200, r.text);
      sent.push(r.json.usage);
    }
    for (let i = 0; i < 2; i++) {
      const r = await env.chatStream('test/priced', 'stream me a few words ' + i, { stream_options: { include_usage: true } });
      assert.equal(r.status, 200);
      const u = r.chunks.map((c) => c.usage).find(Boolean);
      assert.ok(u, 'usage chunk');
      sent.push(u);
    }
  });
  after(async () => env && (await env.stop()));

  test('session state without a cookie: admin enabled, not signed in, no token', async () => {
    const r = await req(env.base, '/api/admin/session');
    assert.equal(r.status, 200);
    assert.deepEqual(r.json.data, { admin_enabled: true, loopback_only: true, signed_in: false });
  });

  test('every data call without credentials is 401 in the API error shape', async () => {
    for (const p of DATA_ROUTES) assertError(await req(env.base, '/api/admin' + p), 401, { type: 'authentication' });
    assertError(await req(env.base, '/api/admin/keys', { method: 'POST', body: { name: 'x' } }), 401);
    assertError(await req(env.base, '/api/admin/reload', { method: 'POST' }), 401);
  });

  test('forged, malformed and foreign cookies are 401', async () => {
    const forged = 'llmgate_session=' + 'ab'.repeat(32);
    for (const cookie of [forged, 'llmgate_session=', 'llmgate_session=xyz', 'llmgate_session=' + 'A'.repeat(64), 'other=1']) {
      for (const p of ['/status', '/keys']) assertError(await req(env.base, '/api/admin' + p, { headers: { cookie } }), 401);
      const s = await req(env.base, '/api/admin/session', { headers: { cookie } });
      assert.equal(s.json.data.signed_in, false, cookie);
    }
  });

  test('sign-in: wrong key 401 (form message), right key sets an HttpOnly SameSite=Strict cookie with an expiry', async () => {
    const bad = await req(env.base, '/api/admin/session', { method: 'POST', body: { key: 'wrong' } });
    assertError(bad, 401, { type: 'authentication' });
    assert.equal(bad.headers.get('set-cookie'), null);
    assertError(await req(env.base, '/api/admin/session', { method: 'POST', body: 'not json' }), 400);
    assertError(await req(env.base, '/api/admin/session', { method: 'POST', body: { nokey: 1 } }), 400);
    // a form post (no JSON content type) and a cross-site Origin are refused
    const form = await fetch(env.base + '/api/admin/session', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'key=' + ADMIN });
    assert.equal(form.status, 400);
    assert.equal(form.headers.get('set-cookie'), null);
    const cross = await req(env.base, '/api/admin/session', { method: 'POST', body: { key: ADMIN }, headers: { origin: 'https://evil.example' } });
    assert.equal(cross.status, 403);
    assert.equal(cross.headers.get('set-cookie'), null);

    const s = await signIn(env.base);
    assert.match(s.setCookie, /HttpOnly/);
    assert.match(s.setCookie, /SameSite=Strict/);
    assert.match(s.setCookie, /Path=\//);
    assert.match(s.setCookie, /Max-Age=28800/);
    assert.doesNotMatch(s.setCookie, /Secure/, 'cleartext listener: no Secure flag');
    assert.match(s.csrf, /^[0-9a-f]{64}$/);
    assert.notEqual(s.csrf, s.id);
    assert.ok(!s.body.includes(ADMIN) && !s.body.includes(s.id), 'the sign-in body holds neither the admin key nor the session id');
    const st = await req(env.base, '/api/admin/session', { headers: { cookie: s.cookie } });
    assert.equal(st.json.data.signed_in, true);
    assert.equal(st.json.data.csrf_token, s.csrf);
    assert.ok(st.json.data.expires_at_ms > Date.now() + 7 * 3600e3);
  });

  test('the session cookie reads every view; state changes need the CSRF token (403 without)', async () => {
    const s = await signIn(env.base);
    for (const p of DATA_ROUTES) assert.equal((await req(env.base, '/api/admin' + p, { headers: { cookie: s.cookie } })).status, 200, p);
    // state-changing calls with the cookie but no / a wrong token
    for (const headers of [{ cookie: s.cookie }, { cookie: s.cookie, 'x-csrf-token': 'f'.repeat(64) }, { cookie: s.cookie, 'x-csrf-token': s.id }]) {
      assertError(await req(env.base, '/api/admin/keys', { method: 'POST', body: { name: 'csrf-test' }, headers }), 403, { type: 'permission_denied' });
      assertError(await req(env.base, '/api/admin/reload', { method: 'POST', headers }), 403);
      assertError(await req(env.base, '/api/admin/session', { method: 'DELETE', headers }), 403);
    }
    const list = await req(env.base, '/api/admin/keys', { headers: adminH });
    assert.equal(list.json.data.filter((k) => k.name === 'csrf-test').length, 0, 'nothing was created without the token');
    // with the token it works; a token of another session does not
    const other = await signIn(env.base);
    assertError(await req(env.base, '/api/admin/keys', { method: 'POST', body: { name: 'csrf-test' }, headers: { cookie: s.cookie, 'x-csrf-token': other.csrf } }), 403);
    const made = await req(env.base, '/api/admin/keys', { method: 'POST', body: { name: 'csrf-test', rpm: 100 }, headers: { cookie: s.cookie, 'x-csrf-token': s.csrf } });
    assert.equal(made.status, 201, made.text);
    assert.match(made.json.key, /^sk-/);
    const del = await req(env.base, '/api/admin/keys/' + made.json.data.id, { method: 'DELETE', headers: { cookie: s.cookie, 'x-csrf-token': s.csrf } });
    assert.equal(del.status, 200);
    // the admin key as Bearer needs no CSRF token (not an ambient credential)
    const b = await req(env.base, '/api/admin/keys', { method: 'POST', body: { name: 'bearer-made' }, headers: adminH });
    assert.equal(b.status, 201);
    await req(env.base, '/api/admin/keys/' + b.json.data.id, { method: 'DELETE', headers: adminH });
  });

  test('sign-out ends the session: the old cookie is 401 afterwards', async () => {
    const s = await signIn(env.base);
    const out = await req(env.base, '/api/admin/session', { method: 'DELETE', headers: { cookie: s.cookie, 'x-csrf-token': s.csrf } });
    assert.equal(out.status, 200);
    assert.match(out.headers.get('set-cookie'), /llmgate_session=;.*Max-Age=0/);
    assertError(await req(env.base, '/api/admin/status', { headers: { cookie: s.cookie } }), 401);
    assert.equal((await req(env.base, '/api/admin/session', { headers: { cookie: s.cookie } })).json.data.signed_in, false);
  });

  test('GET /api/admin/timeseries counts the traffic sent, with latency and TTFT percentiles', async () => {
    const r = await req(env.base, '/api/admin/timeseries', { headers: adminH });
    assert.equal(r.status, 200, r.text);
    const d = r.json.data;
    assert.equal(d.bucket_s, 10);
    assert.equal(d.series.length, 90);
    assert.equal(d.series[89].t, Math.floor(d.now / 10) * 10);
    assert.equal(d.in_flight, 0, 'no generation at a provider now (the admin call itself does not count)');
    assert.equal(d.queued, 0);
    const t = d.totals;
    assert.equal(t.requests, sent.length);
    assert.equal(t.errors_4xx + t.errors_5xx, 0);
    assert.equal(t.fallbacks, 0);
    const pt = sent.reduce((a, u) => a + u.prompt_tokens, 0);
    const ct = sent.reduce((a, u) => a + u.completion_tokens, 0);
    assert.equal(t.prompt_tokens, pt);
    assert.equal(t.completion_tokens, ct);
    assertClose(t.cost, sent.reduce((a, u) => a + expectedCost(u, PROMPT, COMPLETION), 0), 'window cost');
    assert.ok(t.latency_p50_ms > 0 && t.latency_p99_ms >= t.latency_p50_ms, JSON.stringify(t));
    assert.ok(t.ttft_p50_ms > 0 && t.ttft_p99_ms >= t.ttft_p50_ms, JSON.stringify(t));
    assert.equal(d.series.reduce((a, p) => a + p.requests, 0), sent.length, 'the buckets add up to the total');
    const five = await req(env.base, '/api/admin/timeseries?minutes=5', { headers: adminH });
    assert.equal(five.json.data.series.length, 30);
    for (const q of ['minutes=0', 'minutes=16', 'minutes=abc', 'minutes=', 'window=5']) assertError(await req(env.base, '/api/admin/timeseries?' + q, { headers: adminH }), 400);
  });

  test('an error and a fallback show up in the time series', async () => {
    const before = (await req(env.base, '/api/admin/timeseries', { headers: adminH })).json.data.totals;
    const bad = await env.chat('no/such-model');
    assert.equal(bad.status, 400);
    const fb = await env.chat('test/fallback', 'fall back please');
    assert.equal(fb.status, 200, fb.text);
    const after = (await req(env.base, '/api/admin/timeseries', { headers: adminH })).json.data.totals;
    assert.equal(after.requests, before.requests + 2);
    assert.equal(after.errors_4xx, before.errors_4xx + 1);
    assert.equal(after.errors_5xx, before.errors_5xx);
    assert.equal(after.fallbacks, before.fallbacks + 1);
    // the fallback's generation lists both attempts
    let g;
    await waitFor(async () => (g = (await req(env.base, '/api/admin/generations?limit=5', { headers: adminH })).json.data.find((x) => x.model === 'test/fallback')), 10000);
    assert.ok(g, 'fallback generation in the ledger');
    assert.equal(g.attempts, 2);
    assert.equal(g.provider, 'up2');
  });

  test('GET /api/admin/generations: the recent rows with key, model, provider, attempts, tokens, cost; no content', async () => {
    let rows;
    await waitFor(async () => {
      rows = (await req(env.base, '/api/admin/generations?limit=100', { headers: adminH })).json.data;
      return rows.filter((g) => g.model === 'test/priced').length === sent.length;
    }, 10000);
    const ours = rows.filter((g) => g.model === 'test/priced');
    for (const g of ours) {
      assert.match(g.id, /^gen-/);
      assert.equal(g.provider, 'up1');
      assert.equal(g.status, 200);
      assert.equal(g.attempts, 1);
      assert.ok(g.latency_ms > 0);
      assert.equal(g.key_name, null);
      for (const banned of ['messages', 'content', 'prompt', 'attempts_json', 'api_key']) assert.ok(!(banned in g), banned);
    }
    assert.equal(ours.filter((g) => g.streamed).length, 2);
    assert.ok(ours.filter((g) => g.streamed).every((g) => g.ttft_ms > 0));
    const times = rows.map((g) => g.created_at_ms);
    assert.deepEqual(times, [...times].sort((a, b) => b - a), 'newest first');
    assertClose(
      ours.reduce((a, g) => a + g.cost, 0),
      sent.reduce((a, u) => a + expectedCost(u, PROMPT, COMPLETION), 0),
      'ledger cost',
    );
    const text = JSON.stringify(rows);
    assert.ok(!text.includes('count these words') && !text.includes(UPSTREAM_SECRET) && !text.includes(ADMIN), 'no content, no secrets');
    // paging and limits
    const two = (await req(env.base, '/api/admin/generations?limit=2', { headers: adminH })).json.data;
    assert.equal(two.length, 2);
    const next = (await req(env.base, `/api/admin/generations?limit=2&before=${two[1].created_at_ms}`, { headers: adminH })).json.data;
    assert.ok(next.every((g) => g.created_at_ms < two[1].created_at_ms));
    for (const q of ['limit=0', 'limit=501', 'limit=-1', 'before=x', 'key=abc']) assertError(await req(env.base, '/api/admin/generations?' + q, { headers: adminH }), 400);
    // one generation with its attempt trail
    const one = await req(env.base, '/api/admin/generations/' + ours[0].id, { headers: adminH });
    assert.equal(one.status, 200);
    assert.equal(one.json.data.id, ours[0].id);
    assert.ok(Array.isArray(one.json.data.provider_responses) && one.json.data.provider_responses.length === 1);
    assert.ok(!one.text.includes(UPSTREAM_SECRET));
    assertError(await req(env.base, '/api/admin/generations/gen-doesnotexist', { headers: adminH }), 404);
    assertError(await req(env.base, '/api/admin/generations/not-an-id', { headers: adminH }), 404);
    assertError(await req(env.base, '/api/admin/generations', { method: 'POST', headers: adminH, body: {} }), 405);
  });

  test('GET /api/admin/models: catalog with prices per million tokens, policy and endpoint state', async () => {
    const r = await req(env.base, '/api/admin/models', { headers: adminH });
    assert.equal(r.status, 200);
    const m = r.json.data.find((x) => x.id === 'test/priced');
    assert.ok(m);
    assert.equal(m.policy, 'default');
    assert.equal(m.endpoints_total, 1);
    assert.equal(m.endpoints_healthy, 1);
    const e = m.endpoints[0];
    assert.equal(e.provider, 'up1');
    assert.equal(e.upstream_model, 'echo');
    assertClose(e.price_per_mtok.prompt, 100, 'prompt $/M');
    assertClose(e.price_per_mtok.completion, 200, 'completion $/M');
    assert.equal(e.circuit, 'closed');
    assert.equal(e.cooldown_ms, 0);
    assert.ok(e.requests >= sent.length);
    assert.ok(!r.text.includes(UPSTREAM_SECRET));
  });

  test('GET /api/admin/status and /mcp', async () => {
    const r = await req(env.base, '/api/admin/status', { headers: adminH });
    assert.equal(r.status, 200);
    const d = r.json.data;
    assert.match(d.version, /^\d+\.\d+\.\d+/);
    assert.ok(d.uptime_s >= 0);
    assert.equal(d.workers, 2);
    assert.equal(d.config_generation, 1);
    assert.ok(d.ledger && d.ledger.capacity > 0 && d.ledger.dropped === 0);
    assert.ok(await waitFor(async () => (await req(env.base, '/api/admin/status', { headers: adminH })).json.data.ledger.committed >= sent.length, 5000));
    const mcp = await req(env.base, '/api/admin/mcp', { headers: adminH });
    assert.equal(mcp.status, 200);
    assert.deepEqual(mcp.json.data, []);
    assert.equal(typeof mcp.json.sessions, 'number');
  });

  test('keys list carries the live credit used', async () => {
    const k = (await req(env.base, '/api/admin/keys', { method: 'POST', headers: adminH, body: { name: 'credit-view', credit_limit: 5 } })).json;
    const r = await env.chat('test/priced', 'spend a little', {}, { authorization: `Bearer ${k.key}` });
    assert.equal(r.status, 200);
    const want = expectedCost(r.json.usage, PROMPT, COMPLETION);
    let row;
    await waitFor(async () => {
      row = (await req(env.base, '/api/admin/keys', { headers: adminH })).json.data.find((x) => x.id === k.data.id);
      return row.credit_used > 0;
    }, 5000);
    assertClose(row.credit_used, want, 'credit used');
    assert.equal(row.limit, 5);
    assert.ok(!('hash' in row) && !JSON.stringify(row).includes(k.key));
    await req(env.base, '/api/admin/keys/' + k.data.id, { method: 'DELETE', headers: adminH });
  });

  test('reload: a ticket, then the result in /status (ok with the new generation, or the config error with its path)', async () => {
    const r = await req(env.base, '/api/admin/reload', { method: 'POST', headers: adminH });
    assert.equal(r.status, 202);
    assert.ok(r.json.ticket >= 1);
    let last;
    await waitFor(async () => {
      last = (await req(env.base, '/api/admin/status', { headers: adminH })).json.data.last_reload;
      return last && last.covers_ticket >= r.json.ticket;
    }, 10000);
    assert.equal(last.ok, true, JSON.stringify(last));
    assert.equal(last.generation, 2);
    assert.equal(last.error, '');
    // a broken config: rejected, the old one stays, the error names the JSON path
    const good = fs.readFileSync(env.configPath, 'utf8');
    const conf = JSON.parse(good);
    conf.routing.max_attempts = 'many';
    env.writeConfig(conf);
    try {
      const r2 = await req(env.base, '/api/admin/reload', { method: 'POST', headers: adminH });
      await waitFor(async () => {
        last = (await req(env.base, '/api/admin/status', { headers: adminH })).json.data.last_reload;
        return last.covers_ticket >= r2.json.ticket;
      }, 10000);
      assert.equal(last.ok, false);
      assert.match(last.error, /routing\.max_attempts/);
      assert.equal(last.path, 'routing.max_attempts');
      assert.equal((await req(env.base, '/api/admin/status', { headers: adminH })).json.data.config_generation, 2, 'the old config stays');
    } finally {
      env.writeConfig(good);
    }
  });
});

describe('dashboard: session expiry, admin key change, sign-in throttle', () => {
  let env;
  const test = gwTest(() => env);
  before(async () => {
    env = await dashEnv({ auth: { dashboard_session_ttl_s: 2 } });
  });
  after(async () => env && (await env.stop()));

  test('an expired session cookie is 401', async () => {
    const s = await signIn(env.base);
    assert.match(s.setCookie, /Max-Age=2(;|$)/);
    assert.equal((await req(env.base, '/api/admin/status', { headers: { cookie: s.cookie } })).status, 200);
    await sleep(2600);
    assertError(await req(env.base, '/api/admin/status', { headers: { cookie: s.cookie } }), 401);
    assert.equal((await req(env.base, '/api/admin/session', { headers: { cookie: s.cookie } })).json.data.signed_in, false);
  });

  test('changing the admin key (reload) ends every session', async () => {
    const conf = env.currentConfig();
    conf.auth.dashboard_session_ttl_s = 3600;
    env.writeConfig(conf);
    env.signal('SIGHUP');
    await waitFor(async () => (await req(env.base, '/api/admin/status', { headers: adminH })).json.data.config_generation === 2, 10000);
    const s = await signIn(env.base);
    assert.equal((await req(env.base, '/api/admin/status', { headers: { cookie: s.cookie } })).status, 200);
    conf.auth.admin_key = ADMIN + '-rotated';
    env.writeConfig(conf);
    env.signal('SIGHUP');
    await waitFor(async () => (await req(env.base, '/api/admin/status', { headers: { authorization: `Bearer ${ADMIN}-rotated` } })).status === 200, 10000);
    assertError(await req(env.base, '/api/admin/status', { headers: { cookie: s.cookie } }), 401);
  });

  test('failed sign-ins are throttled (429 with Retry-After), even for the right key, and logged without the key', async () => {
    const key = ADMIN + '-rotated';
    for (let i = 0; i < 5; i++) assertError(await req(env.base, '/api/admin/session', { method: 'POST', body: { key: 'guess-' + i } }), 401);
    const r = await req(env.base, '/api/admin/session', { method: 'POST', body: { key } });
    assertError(r, 429, { type: 'rate_limit_exceeded' });
    const ra = Number(r.headers.get('retry-after'));
    assert.ok(ra >= 1 && ra <= 60, String(ra));
    assert.equal(r.headers.get('set-cookie'), null);
    assert.ok(!env.log().includes('guess-0') && !env.log().includes(key), 'the log holds no attempted key');
  });
});

describe('dashboard: no admin key on a loopback gateway', () => {
  let env;
  const test = gwTest(() => env);
  before(async () => {
    env = await startEnv({ mutate: (conf) => { conf.store = { path: path.join(path.dirname(conf.access_log), 'llmgate.db') }; delete conf.auth; }, env: { LLMGATE_ADMIN_KEY: '' } });
  });
  after(async () => env && (await env.stop()));

  test('the session endpoint says the admin API is off and why; sign-in and data calls are refused', async () => {
    const r = await req(env.base, '/api/admin/session');
    assert.equal(r.status, 200);
    assert.equal(r.json.data.admin_enabled, false);
    assert.equal(r.json.data.loopback_only, true);
    assert.equal(r.json.data.signed_in, false);
    assert.match(r.json.data.message, /admin key/i);
    assert.match(r.json.data.message, /LLMGATE_ADMIN_KEY/);
    assertError(await req(env.base, '/api/admin/session', { method: 'POST', body: { key: 'anything' } }), 404);
    assertError(await req(env.base, '/api/admin/status'), 404);
    assert.equal((await req(env.base, '/dashboard')).status, 200, 'the page itself loads and explains');
  });
});

describe('dashboard: MCP view with a real stdio upstream', () => {
  let env;
  const test = gwTest(() => env);
  const FAKE = process.env.LLMGATE_FAKE_MCP || path.join(BUILD_DIR, 'tests', 'mcp', 'fake_mcp_server');
  before(async () => {
    assert.ok(fs.existsSync(FAKE), `fake_mcp_server not built at ${FAKE}`);
    env = await dashEnv({ mutate: (conf) => (conf.mcp = { servers: { fake: { command: FAKE, timeout_ms: 3000 } } }) });
  });
  after(async () => env && (await env.stop()));

  test('upstream state, pid, tools, and the calls and errors made through the gateway', async () => {
    let up;
    await waitFor(async () => {
      up = (await req(env.base, '/api/admin/mcp', { headers: adminH })).json.data.find((u) => u.name === 'fake');
      return up && up.state === 'up' && up.tools > 0;
    }, 20000);
    assert.ok(up && up.state === 'up', JSON.stringify(up));
    assert.equal(up.circuit, 'closed');
    assert.ok(Number.isInteger(up.pid) && up.pid > 0, 'a stdio upstream has a pid');
    assert.equal(up.calls, 0);
    const ok = await req(env.base, '/api/mcp/fake__echo', { method: 'POST', body: { message: 'hi' } });
    assert.equal(ok.status, 200, ok.text);
    const bad = await req(env.base, '/api/mcp/fake__fail', { method: 'POST', body: {} });
    assert.ok(bad.status >= 400, bad.text);
    const after = (await req(env.base, '/api/admin/mcp', { headers: adminH })).json;
    const u = after.data.find((x) => x.name === 'fake');
    assert.equal(u.calls, 2);
    assert.equal(u.errors, 1);
    assert.equal(typeof after.sessions, 'number');
  });
});

describe('dashboard: sign-in over TLS (HTTP/2 and HTTP/1.1)', () => {
  let env, tlsPort, dir;
  const test = gwTest(() => env);
  before(async () => {
    dir = fs.mkdtempSync(path.join(process.env.TMPDIR || '/tmp', 'llmgate-dash-tls-'));
    const key = path.join(dir, 'key.pem');
    const cert = path.join(dir, 'cert.pem');
    const r = await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1']);
    assert.equal(r.code, 0, r.stderr);
    tlsPort = await freePort();
    env = await dashEnv({ mutate: (conf) => conf.listeners.push({ address: '127.0.0.1', port: tlsPort, tls: { cert, key } }) });
  });
  after(async () => {
    await env?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('the cookie is Secure on a TLS listener, and the session works over h2 (several Cookie headers) and HTTP/1.1', async () => {
    const base = `https://127.0.0.1:${tlsPort}`;
    const signin = await run('curl', ['-sk', '--http2', '-D', '-', '-o', '/dev/null', '-H', 'content-type: application/json', '-d', JSON.stringify({ key: ADMIN }), base + '/api/admin/session']);
    assert.equal(signin.code, 0, signin.stderr);
    const sc = /set-cookie: (.*)/i.exec(signin.stdout)?.[1] || '';
    assert.match(sc, /HttpOnly/);
    assert.match(sc, /SameSite=Strict/);
    assert.match(sc, /; Secure/);
    const id = /llmgate_session=([0-9a-f]{64})/.exec(sc)[1];
    for (const proto of ['--http2', '--http1.1']) {
      // two Cookie headers: HTTP/2 clients may split cookies into separate fields
      const r = await run('curl', ['-sk', proto, '-H', 'cookie: theme=dark', '-H', `cookie: other=1; llmgate_session=${id}`, '-w', '\n%{http_code}', base + '/api/admin/status']);
      assert.equal(r.stdout.trim().split('\n').at(-1), '200', proto + ' ' + r.stdout);
    }
    const none = await run('curl', ['-sk', '--http2', '-w', '\n%{http_code}', base + '/api/admin/status']);
    assert.equal(none.stdout.trim().split('\n').at(-1), '401');
    // the cleartext listener never sets Secure
    const plain = await req(env.base, '/api/admin/session', { method: 'POST', body: { key: ADMIN } });
    assert.doesNotMatch(plain.headers.get('set-cookie'), /Secure/);
  });
});
