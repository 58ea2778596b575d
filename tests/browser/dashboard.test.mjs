// SPDX-License-Identifier: MIT
// The dashboard in a real browser (issue 12): Debian's Chromium (or Firefox ESR with LLMGATE_BROWSER=firefox), headless,
// driven by puppeteer-core (CDP for Chromium, WebDriver BiDi for Firefox) against the real gateway and the mock upstream. Signs in (a wrong key first), sees the traffic the test sent (counts, model, provider,
// cost), opens a generation's attempt trail from the keyboard, creates a key and uses it with fetch, changes its
// limits, disables it and sees 401, reloads the config (good, then broken with its JSON path), signs out. No console
// errors (CSP violations included), no secret in any response the page received, screenshots saved in the build tree.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import { assertClose, ep, expectedCost, gwTest, httpPost, startEnv } from '../integration/harness.mjs';

const BROWSER = process.env.LLMGATE_BROWSER === 'firefox' ? 'firefox' : 'chromium';
const EXECUTABLE =
  BROWSER === 'firefox' ? process.env.LLMGATE_FIREFOX || '/usr/bin/firefox-esr' : process.env.LLMGATE_CHROMIUM || '/usr/bin/chromium';
const NAME = BROWSER === 'firefox' ? 'Firefox' : 'Chromium';
const ARTIFACTS = process.env.LLMGATE_ARTIFACT_DIR || path.join(os.tmpdir(), 'llmgate-browser-artifacts');
const ADMIN = 'adm-browser-' + Math.random().toString(36).slice(2) + '-secret';
const UPSTREAM_SECRET = 'sk-upstream-' + Math.random().toString(36).slice(2) + '-do-not-leak';
const PROMPT = '0.0001';
const COMPLETION = '0.0002';
const T = 20000; // generous: the machine is shared

let puppeteer;
try {
  puppeteer = (await import('puppeteer-core')).default;
} catch (e) {
  throw new Error(`puppeteer-core is not installed in tests/browser (run scripts/install-deps.sh --test): ${e.message}`);
}
assert.ok(fs.existsSync(EXECUTABLE), `${EXECUTABLE} not found: install Debian's ${BROWSER === 'firefox' ? 'firefox-esr' : 'chromium'} package (scripts/install-deps.sh --test)`);
const shot = (name) => path.join(ARTIFACTS, `dashboard-${BROWSER}-${name}.png`);
fs.mkdirSync(ARTIFACTS, { recursive: true });

async function launch() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), `llmgate-${BROWSER}-`));
  const browser =
    BROWSER === 'firefox'
      ? await puppeteer.launch({ browser: 'firefox', executablePath: EXECUTABLE, headless: true, userDataDir: profile })
      : await puppeteer.launch({
          executablePath: EXECUTABLE,
          headless: true,
          userDataDir: profile,
          args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
        });
  return {
    browser,
    async close() {
      await browser.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** A page that records console errors, page errors and the body of every response from the gateway. */
async function instrumentedPage(browser, base) {
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 900 });
  const rec = { errors: [], responses: [] };
  page.on('console', (m) => {
    if (m.type() === 'error') rec.errors.push(`${m.text()} @ ${m.location()?.url || ''}`);
  });
  page.on('pageerror', (e) => rec.errors.push('pageerror: ' + e.message));
  page.on('response', async (r) => {
    if (!r.url().startsWith(base)) return;
    const entry = { url: r.url(), method: r.request().method(), status: r.status(), body: '' };
    rec.responses.push(entry);
    try {
      entry.body = await r.text();
    } catch {}
  });
  page.setDefaultTimeout(T);
  return { page, rec };
}

/** The console error Chromium logs for the deliberately wrong sign-in (a 401 on POST /api/admin/session). */
const isDeliberate = (e) => /status of 401/.test(e) && /\/api\/admin\/session/.test(e);
const text = (page, sel) => page.$eval(sel, (e) => e.textContent.trim());
async function waitText(page, sel, re) {
  try {
    await page.waitForFunction((s, src) => { const e = document.querySelector(s); return e && new RegExp(src).test(e.textContent); }, { timeout: T }, sel, re.source);
  } catch (e) {
    throw new Error(`${sel} never matched ${re}: ${e.message}\n--- page ---\n${await dump(page)}`);
  }
  return text(page, sel);
}
async function dump(page) {
  return page.evaluate(() => document.querySelector('#main').innerText.slice(0, 1500));
}
async function go(page, view) {
  await page.click(`#nav a[data-view="${view}"]`);
  await page.waitForFunction((v) => document.querySelector(`#nav a[data-view="${v}"]`).getAttribute('aria-current') === 'page', {}, view);
}

describe(`dashboard in ${NAME}`, () => {
  let env, chrome, page, rec;
  const test = gwTest(() => env);
  const sent = [];
  let created; // { id, secret }

  before(async () => {
    env = await startEnv({
      models: { 'test/priced': { endpoints: [ep('up1', 'echo', PROMPT, COMPLETION)] } },
      mutate(conf) {
        conf.store = { path: path.join(path.dirname(conf.access_log), 'llmgate.db'), flush_interval_ms: 20 };
        conf.auth = { admin_key: ADMIN };
        conf.providers[0].api_key = UPSTREAM_SECRET;
      },
    });
    chrome = await launch();
    ({ page, rec } = await instrumentedPage(chrome.browser, env.base));
  });
  after(async () => {
    if (chrome) await chrome.close();
    if (env) await env.stop();
  });

  test('traffic first: 3 plain and 1 streamed request to test/priced (open loopback gateway, no key yet)', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await env.chat('test/priced', 'hello dashboard number ' + i);
      assert.equal(r.status, 200, r.text);
      sent.push(r.json.usage);
    }
    const s = await env.chatStream('test/priced', 'stream for the dashboard', { stream_options: { include_usage: true } });
    assert.equal(s.status, 200);
    sent.push(s.chunks.map((c) => c.usage).find(Boolean));
    assert.ok(sent[3], 'usage of the streamed request');
  });

  test('/ leads to the sign-in form; a wrong key stays on the form with a clear message', async () => {
    await page.goto(env.base + '/', { waitUntil: 'networkidle0' });
    assert.equal(new URL(page.url()).pathname, '/dashboard');
    await page.waitForSelector('#signin-key', { visible: true });
    assert.equal(await page.$eval('#signin-key', (e) => e.type), 'password');
    assert.equal(await page.$eval('#app', (e) => e.hidden), true);
    await page.type('#signin-key', 'not-the-admin-key');
    await page.keyboard.press('Enter');
    assert.equal(await waitText(page, '#signin-error', /Wrong admin key/), 'Wrong admin key.');
    assert.equal(await page.$eval('#signin', (e) => e.hidden), false);
    assert.equal(await page.$eval('#signin-key', (e) => e.value), '', 'the wrong key is not left in the field');
    // the browser logs the refused sign-in (401) as a failed resource: the one console error this test expects
    assert.ok(rec.errors.every(isDeliberate), rec.errors.join('\n'));
  });

  test('signing in opens the overview with the traffic just sent: counts, tokens, cost', async () => {
    await page.type('#signin-key', ADMIN);
    await page.click('#signin-submit');
    await page.waitForSelector('#app:not([hidden])');
    const cookies = await page.cookies();
    const c = cookies.find((x) => x.name === 'llmgate_session');
    assert.ok(c, 'session cookie set');
    assert.equal(c.httpOnly, true);
    assert.equal(c.sameSite, 'Strict');
    assert.ok(c.expires * 1000 > Date.now() + 3600e3, 'cookie expires (Max-Age), not a browser-session cookie');
    assert.equal(await page.evaluate(() => document.cookie), '', 'HttpOnly: invisible to scripts');

    assert.equal(await waitText(page, '[data-kpi="rps"] .sub', /^4 in 15 min$/), '4 in 15 min');
    await waitText(page, '[data-kpi="cost"] .sub', /^4 requests/);
    const want = sent.reduce((a, u) => a + expectedCost(u, PROMPT, COMPLETION), 0);
    const shown = Number((await text(page, '[data-kpi="cost"] .value')).replace(/[$,]/g, ''));
    assert.ok(Math.abs(shown - want) <= Math.max(want * 0.01, 0.0001), `cost shown ${shown} vs ${want}`);
    const tokens = sent.reduce((a, u) => a + u.prompt_tokens + u.completion_tokens, 0);
    assert.equal(await text(page, '[data-kpi="tokens"] .value'), tokens.toLocaleString('en-US'));
    assert.match(await text(page, '[data-kpi="errors"] .value'), /^0(\.0+)?%$/);
    assert.match(await text(page, '[data-kpi="latency"] .value'), /\d+(\.\d+)? (ms|s)$/);
    // the charts drew visible lines (real SVG elements with a size, not the empty state)
    const drawn = await page.$eval('#chart-rps', (svg) => {
      const p = svg.querySelector('path[fill="none"]');
      return svg instanceof SVGSVGElement && !svg.querySelector('.empty') && p ? p.getBBox().width : 0;
    });
    assert.ok(drawn > 50, `the requests chart drew a line (${drawn} px wide)`);
    // latency and TTFT exist only in buckets with traffic (a few seconds here): plotted points, not the empty state
    for (const id of ['chart-lat', 'chart-ttft']) {
      const pts = await page.$eval('#' + id, (svg) => (svg.querySelector('.empty') ? -1 : [...svg.querySelectorAll('circle')].filter((c) => c.getBBox().width > 0).length));
      assert.ok(pts >= 1, `${id} plotted its samples (${pts})`);
    }
    await new Promise((r) => setTimeout(r, 300));
    await page.screenshot({ path: shot('overview'), fullPage: true });
  });

  test('models, providers and usage views show the model, its provider, prices and counts', async () => {
    await go(page, 'models');
    const row = '[data-model="test/priced"]';
    await waitText(page, row, /up1/);
    const cells = await page.$$eval(row + ' td', (tds) => tds.map((t) => t.textContent.trim()));
    assert.equal(cells[1], 'default', 'policy');
    assert.match(cells[3], /\$100 in · \$200 out \/M/);
    assert.equal(cells[5], '4', 'requests today');
    await page.screenshot({ path: shot('models'), fullPage: true });

    await go(page, 'providers');
    await waitText(page, '[data-provider="up1"]', /ok/);
    await waitText(page, '[data-endpoint="up1:test/priced"]', /closed/);
    assert.match(await text(page, '[data-endpoint="up1:test/priced"]'), /default/);
    await page.screenshot({ path: shot('providers'), fullPage: true });

    await go(page, 'usage');
    await page.waitForSelector('.segmented button[data-value="provider"]');
    await page.click('.segmented button[data-value="provider"]');
    await waitText(page, '#view table tbody', /up1/);
    assert.equal(await text(page, '[data-kpi="u-requests"] .value'), '4');
  });

  test('requests view: the generations, each opening its attempt trail (keyboard)', async () => {
    await go(page, 'requests');
    await page.waitForFunction(() => document.querySelectorAll('[data-generation]').length >= 4);
    const first = await text(page, '[data-generation]');
    assert.match(first, /test\/priced/);
    assert.match(first, /up1/);
    assert.match(first, /200/);
    await page.focus('[data-generation]');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#detail[open]');
    await waitText(page, '#detail-body', /Attempt trail/);
    await waitText(page, '#detail-body table', /up1/);
    await page.screenshot({ path: shot('generation') });
    await page.keyboard.press('Escape');
    await page.waitForFunction(() => !document.querySelector('#detail').open);
  });

  test('MCP and operations views render (empty MCP state, version, generation, ledger)', async () => {
    await go(page, 'mcp');
    await waitText(page, '#view', /No upstream MCP servers/);
    await go(page, 'operations');
    await waitText(page, '#ops-facts', /Config generation\s*1/);
    await waitText(page, '#ops-ledger', /Committed/);
  });

  test('keys: create (secret shown once), use it with fetch, change limits, disable → 401', async () => {
    await go(page, 'keys');
    await waitText(page, '#view', /No keys yet/);
    await page.type('#key-name', 'browser-key');
    await page.type('#key-rpm', '60');
    await page.click('#key-create button[type="submit"]');
    const secret = await waitText(page, '#key-secret-value', /^sk-/);
    const row = '[data-key-name="browser-key"]';
    await waitText(page, row, /active/);
    const list = await (await fetch(env.base + '/api/admin/keys', { headers: { authorization: `Bearer ${ADMIN}` } })).json();
    const k = list.data.find((x) => x.name === 'browser-key');
    created = { id: k.id, secret };
    assert.equal(k.rpm, 60);

    const use = await httpPost(env.base, '/v1/chat/completions', { model: 'test/priced', messages: [{ role: 'user', content: 'with the new key' }] }, { authorization: `Bearer ${secret}` });
    assert.equal(use.status, 200, use.text);
    const anon = await env.chat('test/priced', 'no key now');
    assert.equal(anon.status, 401, 'with a key in existence the loopback gateway is no longer open');

    await page.click(row + ' button[data-action="edit"]');
    await page.waitForSelector('#edit-rpm');
    await page.$eval('#edit-rpm', (e) => (e.value = ''));
    await page.type('#edit-rpm', '120');
    await page.type('#edit-credit', '2.5');
    await page.click('#edit-rpm');
    await page.keyboard.press('Enter');
    await waitText(page, row, /\/ 120/);
    const k2 = (await (await fetch(env.base + '/api/admin/keys/' + k.id, { headers: { authorization: `Bearer ${ADMIN}` } })).json()).data;
    assert.equal(k2.rpm, 120);
    assert.equal(k2.limit, 2.5);

    await page.click(row + ' button[data-action="disable"]');
    await waitText(page, row, /disabled/);
    const refused = await httpPost(env.base, '/v1/chat/completions', { model: 'test/priced', messages: [{ role: 'user', content: 'disabled now' }] }, { authorization: `Bearer ${secret}` });
    assert.equal(refused.status, 401, refused.text);
    await page.screenshot({ path: shot('keys'), fullPage: true });

    // a second key, deleted after the confirmation dialog: gone from the list and refused
    await page.type('#key-name', 'short-lived');
    await page.click('#key-create button[type="submit"]');
    const secret2 = await waitText(page, '#key-secret-value', /^sk-/);
    assert.notEqual(secret2, secret);
    await waitText(page, '[data-key-name="short-lived"]', /active/);
    let asked = '';
    page.once('dialog', async (d) => {
      asked = d.message();
      await d.accept();
    });
    await page.click('[data-key-name="short-lived"] button[data-action="delete"]');
    await page.waitForFunction(() => !document.querySelector('[data-key-name="short-lived"]'));
    assert.match(asked, /Delete key "short-lived"/);
    const gone = await httpPost(env.base, '/v1/chat/completions', { model: 'test/priced', messages: [{ role: 'user', content: 'deleted key' }] }, { authorization: `Bearer ${secret2}` });
    assert.equal(gone.status, 401);
    created.secret2 = secret2;
  });

  test('operations: reload shows the new generation; a broken config shows its JSON path and keeps the old one', async () => {
    await go(page, 'operations');
    await page.waitForSelector('#reload');
    await page.click('#reload');
    await waitText(page, '#reload-result', /Reloaded\. Now serving config generation 2/);
    const good = fs.readFileSync(env.configPath, 'utf8');
    const conf = JSON.parse(good);
    conf.routing.max_attempts = 'many';
    env.writeConfig(conf);
    try {
      await page.click('#reload');
      const msg = await waitText(page, '#reload-result', /rejected/);
      assert.match(msg, /routing\.max_attempts/);
    } finally {
      env.writeConfig(good);
    }
    await waitText(page, '#ops-facts', /Config generation\s*2/);
    await page.screenshot({ path: shot('operations'), fullPage: true });
  });

  test('readable on a phone: the menu toggles, the overview fits the width', async () => {
    await page.setViewport(BROWSER === 'firefox' ? { width: 390, height: 844 } : { width: 390, height: 844, isMobile: true, hasTouch: true });
    await go(page, 'overview').catch(async () => {
      await page.click('#nav-toggle');
      await go(page, 'overview');
    });
    await page.waitForSelector('[data-kpi="rps"]');
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 1, `no horizontal scrolling (${overflow} px)`);
    assert.equal(await page.$eval('#nav', (e) => getComputedStyle(e).display), 'none', 'menu collapsed');
    await page.click('#nav-toggle');
    assert.equal(await page.$eval('#nav', (e) => getComputedStyle(e).display), 'block');
    await page.click('#nav a[data-view="overview"]');
    await page.screenshot({ path: shot('phone'), fullPage: true });
    await page.setViewport({ width: 1280, height: 900 });
  });

  test('sign out: back to the form, the old cookie is refused', async () => {
    const old = (await page.cookies()).find((x) => x.name === 'llmgate_session');
    await page.click('#signout');
    await page.waitForSelector('#signin:not([hidden])');
    assert.match(await text(page, '#signin-error'), /Signed out/);
    const r = await fetch(env.base + '/api/admin/status', { headers: { cookie: `llmgate_session=${old.value}` } });
    assert.equal(r.status, 401);
    assert.equal((await r.json()).error.code, 401);
    await page.reload({ waitUntil: 'networkidle0' });
    await page.waitForSelector('#signin:not([hidden])');
  });

  test('no console errors, and no secret in any response the page received', async () => {
    const unexpected = rec.errors.filter((e) => !isDeliberate(e));
    assert.deepEqual(unexpected, [], 'console errors:\n' + unexpected.join('\n'));
    assert.ok(rec.errors.length <= 1, 'only the one deliberate wrong sign-in was refused');
    assert.ok(rec.responses.length > 20, `responses seen: ${rec.responses.length}`);
    const sessionIds = new Set();
    for (const r of rec.responses) {
      assert.ok(!r.body.includes(ADMIN), `admin key in ${r.method} ${r.url}`);
      assert.ok(!r.body.includes(UPSTREAM_SECRET), `provider key in ${r.method} ${r.url}`);
      for (const sec of [created.secret, created.secret2])
        if (r.body.includes(sec)) assert.ok(r.method === 'POST' && r.url.endsWith('/api/admin/keys'), `key secret in ${r.method} ${r.url}`);
      for (const banned of ['hello dashboard number', 'stream for the dashboard']) assert.ok(!r.body.includes(banned), `message content in ${r.url}`);
    }
    for (const c of await page.cookies()) sessionIds.add(c.value);
    const creates = rec.responses.filter((r) => r.body.includes(created.secret));
    assert.equal(creates.length, 1, 'the new key secret was received exactly once');
    for (const r of rec.responses) if (r.url.includes('/dashboard')) assert.ok(r.status === 200 || r.status === 304, r.url);
  });
});

describe(`dashboard in ${NAME}: no admin key configured`, () => {
  let env, chrome;
  const test = gwTest(() => env);
  before(async () => {
    env = await startEnv({
      mutate(conf) {
        conf.store = { path: path.join(path.dirname(conf.access_log), 'llmgate.db') };
        delete conf.auth;
      },
      env: { LLMGATE_ADMIN_KEY: '' },
    });
    chrome = await launch();
  });
  after(async () => {
    if (chrome) await chrome.close();
    if (env) await env.stop();
  });

  test('the page says the admin API is off instead of opening silently', async () => {
    const { page, rec } = await instrumentedPage(chrome.browser, env.base);
    await page.goto(env.base + '/dashboard', { waitUntil: 'networkidle0' });
    const msg = await waitText(page, '#signin-disabled', /admin key/i);
    assert.match(msg, /loopback/);
    assert.match(msg, /LLMGATE_ADMIN_KEY/);
    assert.equal(await page.$eval('#signin-submit', (e) => e.disabled), true);
    assert.equal(await page.$eval('#app', (e) => e.hidden), true);
    assert.deepEqual(rec.errors, []);
    await page.screenshot({ path: shot('no-admin-key') });
  });
});
