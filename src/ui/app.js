// SPDX-License-Identifier: MIT
// llmgate dashboard: sign-in, hash-routed views polling the admin API (/api/admin/*) every few seconds while visible.
// Every call carries the HttpOnly session cookie (same origin) and, when it changes state, the CSRF token in
// X-CSRF-Token. The DOM is built with createElement/textContent only (no innerHTML), so data from the gateway is never
// parsed as markup. Nothing is kept beyond what the current view shows.
'use strict';

(function () {
  const API = '/api/admin';
  const POLL_MS = 3000;
  const state = { csrf: null, view: null, timer: null, busy: false, gen: 0 };

  // ---- small DOM helpers ----
  function h(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    if (attrs)
      for (const k in attrs) {
        const v = attrs[k];
        if (v === null || v === undefined || v === false) continue;
        if (k === 'class') e.className = v;
        else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
        else if (v === true) e.setAttribute(k, '');
        else e.setAttribute(k, v);
      }
    for (const c of kids.flat()) if (c !== null && c !== undefined && c !== false) e.append(c instanceof Node ? c : String(c));
    return e;
  }
  const $ = (id) => document.getElementById(id);
  function clear(e) {
    while (e.firstChild) e.removeChild(e.firstChild);
    return e;
  }

  // ---- formatting ----
  const nf = new Intl.NumberFormat('en-US');
  const fmtInt = (v) => (v === null || v === undefined ? '–' : nf.format(Math.round(v)));
  function fmtUsd(v) {
    if (v === null || v === undefined) return '–';
    if (v === 0) return '$0.00';
    if (Math.abs(v) < 0.01) return '$' + v.toPrecision(2);
    return '$' + v.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 4 });
  }
  function fmtMs(v) {
    if (v === null || v === undefined || v < 0) return '–';
    if (v >= 10000) return (v / 1000).toFixed(1) + ' s';
    if (v >= 1000) return (v / 1000).toFixed(2) + ' s';
    return (v >= 100 ? Math.round(v) : v.toFixed(1)) + ' ms';
  }
  const fmtPct = (v) => (v === null || v === undefined || !isFinite(v) ? '–' : (v * 100).toFixed(v < 0.1 ? 2 : 1) + '%');
  function fmtRate(v) {
    if (!v) return '0';
    return v >= 10 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v >= 0.01 ? v.toFixed(2) : String(Number(v.toPrecision(2)));
  }
  function fmtAge(s) {
    if (s < 60) return s + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min';
    if (s < 86400) return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
    return Math.floor(s / 86400) + ' d ' + Math.floor((s % 86400) / 3600) + ' h';
  }
  function fmtTime(ms) {
    const d = new Date(ms);
    return d.toLocaleString('en-GB', { hour12: false, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
  }
  const fmtPrice = (v) => (v ? '$' + Number(v.toPrecision(4)) : '$0');

  function badge(text, kind) {
    return h('span', { class: 'badge' + (kind ? ' badge-' + kind : '') }, text);
  }
  function stateBadge(s) {
    const kind = { ok: 'ok', up: 'ok', closed: 'ok', healthy: 'ok', active: 'ok', half_open: 'warn', unhealthy: 'bad', open: 'bad', down: 'bad', circuit_open: 'bad', unavailable: 'bad', disabled: '', expired: 'warn' }[s];
    return badge(String(s).replace('_', ' '), kind);
  }
  function statusBadge(code) {
    return badge(String(code), code >= 500 ? 'bad' : code >= 400 ? 'warn' : 'ok');
  }
  function empty(title, text) {
    return h('div', { class: 'empty-state' }, h('strong', null, title), text || '');
  }
  function table(head, rows, opts = {}) {
    if (!rows.length) return opts.empty || empty('Nothing here yet');
    return h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        null,
        h('thead', null, h('tr', null, head.map((c) => h('th', { class: c.num ? 'num' : null, scope: 'col' }, c.label || c)))),
        h('tbody', null, rows),
      ),
    );
  }
  const td = (v, num) => h('td', { class: num ? 'num' : null }, v);
  function panel(title, ...kids) {
    return h('section', { class: 'panel' }, title ? h('div', { class: 'panel-head' }, typeof title === 'string' ? h('h2', null, title) : title) : null, kids);
  }
  function todayStartIso() {
    return new Date().toISOString().slice(0, 10); // UTC midnight, as the ledger's days are UTC
  }

  // ---- API ----
  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.error && body.error.message) || `HTTP ${status}`);
      this.status = status;
      this.body = body;
    }
  }
  async function api(method, path, body) {
    const headers = { accept: 'application/json' };
    if (method !== 'GET') headers['x-csrf-token'] = state.csrf || '';
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(API + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin', cache: 'no-store' });
    let json = null;
    try {
      json = await res.json();
    } catch {}
    if (res.status === 401 && path !== '/session') {
      showSignin('Your session ended. Sign in again.');
      throw new ApiError(401, json);
    }
    if (!res.ok) throw new ApiError(res.status, json);
    return json;
  }

  // ---- sign-in / out ----
  function showSignin(message) {
    stopPolling();
    state.csrf = null;
    $('boot').hidden = true;
    $('app').hidden = true;
    $('signin').hidden = false;
    $('signin-error').textContent = message || '';
    $('signin-key').value = '';
    $('signin-key').focus();
  }
  async function boot() {
    let s;
    try {
      s = (await api('GET', '/session')).data;
    } catch (e) {
      $('boot').textContent = 'Cannot reach the gateway: ' + e.message;
      return;
    }
    if (!s.admin_enabled) {
      showSignin('');
      const d = $('signin-disabled');
      d.textContent = s.message;
      d.hidden = false;
      $('signin-key').disabled = true;
      $('signin-submit').disabled = true;
      return;
    }
    if (s.signed_in) {
      state.csrf = s.csrf_token;
      showApp();
    } else showSignin('');
  }
  $('signin-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const key = $('signin-key').value;
    const err = $('signin-error');
    if (!key) {
      err.textContent = 'Enter the admin key.';
      return;
    }
    $('signin-submit').disabled = true;
    err.textContent = '';
    try {
      const r = await api('POST', '/session', { key });
      state.csrf = r.data.csrf_token;
      $('signin-key').value = '';
      showApp();
    } catch (e) {
      err.textContent = e.status === 401 ? 'Wrong admin key.' : e.status === 429 ? e.message.replace(/^./, (c) => c.toUpperCase()) + '.' : 'Sign-in failed: ' + e.message;
      $('signin-key').value = ''; // never leave a rejected secret in the field
      $('signin-key').focus();
    } finally {
      $('signin-submit').disabled = false;
    }
  });
  $('signout').addEventListener('click', async () => {
    stopPolling();
    state.view = null; // no poll may start (and be refused) once the session is gone
    try {
      await api('DELETE', '/session');
    } catch {}
    showSignin('Signed out.');
  });

  // ---- shell and routing ----
  const VIEWS = {
    overview: { title: 'Overview', render: renderOverview, poll: true },
    providers: { title: 'Providers and endpoints', render: renderProviders, poll: true },
    models: { title: 'Models', render: renderModels, poll: true },
    keys: { title: 'Keys', render: renderKeys, poll: false },
    usage: { title: 'Usage and cost', render: renderUsage, poll: false },
    requests: { title: 'Requests', render: renderRequests, poll: true },
    mcp: { title: 'MCP', render: renderMcp, poll: true },
    operations: { title: 'Operations', render: renderOperations, poll: true },
  };
  function showApp() {
    $('boot').hidden = true;
    $('signin').hidden = true;
    $('app').hidden = false;
    route();
  }
  function route() {
    if ($('app').hidden) return;
    const name = (location.hash || '#overview').slice(1);
    const view = VIEWS[name] ? name : 'overview';
    for (const a of document.querySelectorAll('#nav a')) {
      if (a.dataset.view === view) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    $('nav').classList.remove('open');
    $('nav-toggle').setAttribute('aria-expanded', 'false');
    $('view-title').textContent = VIEWS[view].title;
    document.title = VIEWS[view].title + ' · llmgate';
    stopPolling();
    state.view = view;
    state.gen++;
    state.viewState = {};
    clear($('view'));
    $('banner').hidden = true;
    refresh(true);
  }
  window.addEventListener('hashchange', () => {
    route();
    $('main').focus({ preventScroll: true });
  });
  $('nav').addEventListener('click', (ev) => {
    if (ev.target.closest('a')) {
      $('nav').classList.remove('open'); // also when the link is the current view (no hashchange)
      $('nav-toggle').setAttribute('aria-expanded', 'false');
    }
  });
  $('nav-toggle').addEventListener('click', () => {
    const open = $('nav').classList.toggle('open');
    $('nav-toggle').setAttribute('aria-expanded', String(open));
  });
  function stopPolling() {
    clearTimeout(state.timer);
    state.timer = null;
  }
  async function refresh(first) {
    const view = state.view;
    const gen = state.gen;
    if (!view || $('app').hidden) return;
    try {
      await VIEWS[view].render($('view'), first, gen);
      if (gen !== state.gen) return;
      $('banner').hidden = true;
      $('refresh-state').textContent = VIEWS[view].poll ? 'Live · updated ' + new Date().toLocaleTimeString('en-GB', { hour12: false }) : '';
    } catch (e) {
      if (gen !== state.gen || e.status === 401) return;
      $('banner').textContent = 'Could not load this view: ' + e.message;
      $('banner').hidden = false;
    }
    if (gen === state.gen && VIEWS[view].poll && !document.hidden) state.timer = setTimeout(() => refresh(false), POLL_MS);
  }
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && state.view && !state.timer && !$('app').hidden && VIEWS[state.view].poll) refresh(false);
  });
  async function topbar() {
    const s = (await api('GET', '/status')).data;
    const t = clear($('topbar-status'));
    t.append(h('span', null, 'v' + s.version), h('span', null, 'up ' + fmtAge(s.uptime_s)), h('span', null, 'config generation ' + s.config_generation), h('span', { class: 'badge ' + (s.open_gateway ? 'badge-warn' : 'badge-ok') }, s.open_gateway ? 'open: no key needed' : 'keys required'));
    $('sidebar-foot').textContent = `llmgate ${s.version} · ${s.workers} workers`;
    return s;
  }

  // ---- Overview ----
  function kpi(label, value, sub, id) {
    return h('div', { class: 'panel kpi', 'data-kpi': id }, h('div', { class: 'label' }, label), h('div', { class: 'value' }, value), sub ? h('div', { class: 'sub' }, sub) : null);
  }
  function svgEl(id, title) {
    const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg'); // h() makes HTML elements only
    svg.setAttribute('class', 'chart');
    svg.id = id;
    svg.setAttribute('aria-label', title);
    return svg;
  }
  function chartPanel(id, title, legend) {
    return panel(
      h('div', { class: 'panel-head' }, h('h2', null, title), h('div', { class: 'legend' }, legend.map((l, i) => h('span', null, h('span', { class: 'swatch s' + i }), l)))),
      svgEl(id, title),
    );
  }
  async function renderOverview(root, first, gen) {
    const [ts, today] = await Promise.all([api('GET', '/timeseries?minutes=15'), api('GET', '/usage?since=' + todayStartIso()), topbar()]);
    if (gen !== state.gen) return;
    const d = ts.data;
    const tot = d.totals;
    const errors = tot.errors_4xx + tot.errors_5xx;
    const t = today.total || (today.data && today.data[0]) || {};
    if (first || !root.querySelector('#chart-rps')) {
      clear(root);
      root.append(
        h('div', { class: 'grid kpis', id: 'kpis' }),
        h(
          'div',
          { class: 'grid charts' },
          chartPanel('chart-rps', 'Requests per second', ['requests', 'errors', 'fallbacks']),
          chartPanel('chart-err', 'Error rate', ['4xx + 5xx']),
          chartPanel('chart-lat', 'Latency', ['p50', 'p99']),
          chartPanel('chart-ttft', 'Time to first token', ['p50', 'p99']),
        ),
      );
    }
    clear($('kpis')).append(
      kpi('Requests / s', fmtRate(tot.requests_per_s), fmtInt(tot.requests) + ' in 15 min', 'rps'),
      kpi('Error rate', tot.requests ? fmtPct(errors / tot.requests) : '–', `${fmtInt(tot.errors_5xx)} 5xx · ${fmtInt(tot.errors_4xx)} 4xx`, 'errors'),
      kpi('Fallbacks', fmtInt(tot.fallbacks), 'served after a failed attempt', 'fallbacks'),
      kpi('Latency p50 / p99', fmtMs(tot.latency_p50_ms), 'p99 ' + fmtMs(tot.latency_p99_ms), 'latency'),
      kpi('TTFT p50 / p99', fmtMs(tot.ttft_p50_ms), 'p99 ' + fmtMs(tot.ttft_p99_ms), 'ttft'),
      kpi('In flight', fmtInt(d.in_flight), fmtInt(d.queued) + ' waiting for a provider slot', 'inflight'),
      kpi('Tokens today', fmtInt((t.prompt_tokens || 0) + (t.completion_tokens || 0)), `${fmtInt(t.prompt_tokens || 0)} in · ${fmtInt(t.completion_tokens || 0)} out`, 'tokens'),
      kpi('Cost today', fmtUsd(t.cost || 0), fmtInt(t.requests || 0) + ' requests (UTC day)', 'cost'),
    );
    const times = d.series.map((p) => p.t);
    const per = d.bucket_s;
    const C = window.LgCharts;
    C.lineChart($('chart-rps'), {
      title: 'Requests per second',
      times,
      format: fmtRate,
      series: [
        { name: 'requests', values: d.series.map((p) => p.requests / per) },
        { name: 'errors', values: d.series.map((p) => (p.errors_4xx + p.errors_5xx) / per) },
        { name: 'fallbacks', values: d.series.map((p) => p.fallbacks / per) },
      ],
    });
    C.lineChart($('chart-err'), {
      title: 'Error rate',
      times,
      format: (v) => (v * 100).toFixed(v < 0.1 && v > 0 ? 1 : 0) + '%',
      empty: tot.requests ? 'No errors in the last 15 minutes' : 'No traffic yet',
      series: [{ name: 'errors', values: d.series.map((p) => (p.requests ? (p.errors_4xx + p.errors_5xx) / p.requests : null)) }],
    });
    C.lineChart($('chart-lat'), { title: 'Latency', times, format: fmtMs, series: [{ name: 'p50', values: d.series.map((p) => p.latency_p50_ms) }, { name: 'p99', values: d.series.map((p) => p.latency_p99_ms) }] });
    C.lineChart($('chart-ttft'), { title: 'Time to first token', times, format: fmtMs, empty: 'No streamed tokens yet', series: [{ name: 'p50', values: d.series.map((p) => p.ttft_p50_ms) }, { name: 'p99', values: d.series.map((p) => p.ttft_p99_ms) }] });
  }

  // ---- Providers ----
  async function renderProviders(root, first, gen) {
    const [prov, models] = await Promise.all([api('GET', '/providers'), api('GET', '/models'), topbar()]);
    if (gen !== state.gen) return;
    const byKey = new Map();
    const policy = new Map();
    for (const m of models.data) {
      policy.set(m.id, m.policy);
      for (const e of m.endpoints) byKey.set(e.provider + '\u0000' + m.id + '\u0000' + e.upstream_model, e);
    }
    clear(root);
    if (!prov.data.length) {
      root.append(panel(null, empty('No providers configured', 'Add providers to the config and reload.')));
      return;
    }
    for (const p of prov.data) {
      const rows = p.endpoints.map((e) => {
        const x = byKey.get(p.name + '\u0000' + e.model + '\u0000' + e.upstream_model) || {};
        return h(
          'tr',
          { 'data-endpoint': p.name + ':' + e.model },
          h('td', null, h('span', { class: 'mono' }, e.model), h('div', { class: 'muted mono' }, '→ ' + e.upstream_model)),
          td(policy.get(e.model) || '–'),
          h('td', null, stateBadge(x.circuit || (e.healthy ? 'closed' : 'open')), x.cooldown_ms ? h('div', { class: 'muted' }, 'cooldown ' + fmtMs(x.cooldown_ms)) : null),
          td(fmtMs(e.latency_ms), true),
          td(fmtMs(e.ttft_ms), true),
          td(e.throughput_tps ? e.throughput_tps.toFixed(1) + ' tok/s' : '–', true),
          td(fmtPct(e.error_rate), true),
          td(fmtInt(e.requests), true),
          td(fmtInt(e.failures) + (e.consecutive_failures ? ` (${e.consecutive_failures} in a row)` : ''), true),
        );
      });
      const head = h(
        'div',
        { class: 'panel-head' },
        h('h2', null, p.name, ' ', h('span', { class: 'muted' }, '· ' + p.plugin)),
        h(
          'div',
          { class: 'legend' },
          stateBadge(p.state),
          h('span', null, `${p.endpoints_healthy} / ${p.endpoints_total} endpoints healthy`),
          h('span', null, `in flight ${p.in_flight}${p.max_concurrent ? ' / ' + p.max_concurrent : ''}`),
          h('span', null, `queued ${p.queued}`),
        ),
      );
      root.append(
        h(
          'section',
          { class: 'panel', 'data-provider': p.name },
          head,
          table([{ label: 'Model → upstream' }, { label: 'Policy' }, { label: 'Circuit' }, { label: 'Latency EWMA', num: true }, { label: 'TTFT EWMA', num: true }, { label: 'Throughput', num: true }, { label: 'Error EWMA', num: true }, { label: 'Requests', num: true }, { label: 'Failures', num: true }], rows, {
            empty: empty('No endpoints', 'No model in the catalog routes to this provider.'),
          }),
        ),
      );
    }
  }

  // ---- Models ----
  async function renderModels(root, first, gen) {
    const [models, usage] = await Promise.all([api('GET', '/models'), api('GET', '/usage?group_by=model&since=' + todayStartIso()), topbar()]);
    if (gen !== state.gen) return;
    const traffic = new Map(usage.data.map((u) => [u.model, u]));
    clear(root);
    const rows = models.data.map((m) => {
      const u = traffic.get(m.id) || {};
      return h(
        'tr',
        { 'data-model': m.id },
        h('td', null, h('strong', { class: 'mono' }, m.id), m.name !== m.id ? h('div', { class: 'muted' }, m.name) : null),
        td(m.policy),
        td(m.context_length ? fmtInt(m.context_length) : '–', true),
        h(
          'td',
          null,
          m.endpoints.map((e) => h('div', null, h('span', { class: 'mono' }, e.provider), ' ', h('span', { class: 'muted' }, `${fmtPrice(e.price_per_mtok.prompt)} in · ${fmtPrice(e.price_per_mtok.completion)} out /M`), ' ', e.healthy ? null : badge('cooling down', 'warn'))),
        ),
        td(`${m.endpoints_healthy} / ${m.endpoints_total}`, true),
        td(fmtInt(u.requests || 0), true),
        td(fmtInt((u.prompt_tokens || 0) + (u.completion_tokens || 0)), true),
        td(fmtUsd(u.cost || 0), true),
      );
    });
    root.append(
      panel(
        'Catalog',
        table([{ label: 'Model' }, { label: 'Policy' }, { label: 'Context', num: true }, { label: 'Endpoints and prices (USD per million tokens)' }, { label: 'Healthy', num: true }, { label: 'Requests today', num: true }, { label: 'Tokens today', num: true }, { label: 'Cost today', num: true }], rows, {
          empty: empty('No models configured', 'Add models to the config and reload.'),
        }),
      ),
    );
  }

  // ---- Keys ----
  function keyStatus(k) {
    if (k.disabled) return 'disabled';
    if (k.expires_at && k.expires_at * 1000 < Date.now()) return 'expired';
    return 'active';
  }
  function numOrNull(v) {
    const s = String(v).trim();
    if (s === '') return null;
    const n = Number(s);
    if (!isFinite(n) || n < 0) throw new Error(`"${s}" is not a number ≥ 0`);
    return n;
  }
  function field(label, input) {
    return h('div', null, h('label', { for: input.id }, label), input);
  }
  async function renderKeys(root, first, gen) {
    const [keys, minute] = await Promise.all([api('GET', '/keys'), api('GET', '/usage?group_by=key&since=' + Math.floor(Date.now() / 1000 - 60)), topbar()]);
    if (gen !== state.gen) return;
    const recent = new Map(minute.data.map((u) => [u.key, u]));
    const vs = state.viewState;
    clear(root);

    // create
    const name = h('input', { id: 'key-name', placeholder: 'e.g. team-search', required: true, maxlength: 128 });
    const credit = h('input', { id: 'key-credit', inputmode: 'decimal', placeholder: 'unlimited' });
    const reset = h('select', { id: 'key-reset' }, ['none', 'daily', 'weekly', 'monthly'].map((r) => h('option', { value: r }, r)));
    const rpm = h('input', { id: 'key-rpm', inputmode: 'numeric', placeholder: 'unlimited' });
    const tpm = h('input', { id: 'key-tpm', inputmode: 'numeric', placeholder: 'unlimited' });
    const msg = h('div', { class: 'form-error', role: 'alert' });
    const secretBox = h('div', { id: 'key-secret', 'aria-live': 'polite' });
    if (vs.secret) secretBox.append(secretCallout(vs.secret));
    const form = h(
      'form',
      {
        id: 'key-create',
        novalidate: true,
        onsubmit: async (ev) => {
          ev.preventDefault();
          msg.textContent = '';
          let body;
          try {
            if (!name.value.trim()) throw new Error('Give the key a name.');
            body = { name: name.value.trim(), credit_limit: numOrNull(credit.value), reset: reset.value, rpm: numOrNull(rpm.value) ?? 0, tpm: numOrNull(tpm.value) ?? 0 };
          } catch (e) {
            msg.textContent = e.message;
            return;
          }
          try {
            const r = await api('POST', '/keys', body);
            vs.secret = { name: r.data.name, id: r.data.id, key: r.key };
            await renderKeys(root, false, gen);
          } catch (e) {
            msg.textContent = e.message;
          }
        },
      },
      h('div', { class: 'form-row' }, field('Name', name), field('Credit limit (USD)', credit), field('Credit reset', reset), field('Requests / min', rpm), field('Tokens / min', tpm), h('div', null, h('button', { class: 'btn btn-primary', type: 'submit' }, 'Create key'))),
      msg,
    );
    root.append(panel('Create a key', form, secretBox));

    // list
    const rows = [];
    for (const k of keys.data) {
      const st = keyStatus(k);
      const used = k.credit_used || 0;
      const frac = k.limit ? Math.min(1, used / k.limit) : 0;
      const last = recent.get(k.id) || {};
      const rowId = 'key-' + k.id;
      rows.push(
        h(
          'tr',
          { id: rowId, 'data-key-name': k.name },
          h('td', null, h('strong', null, k.name), h('div', { class: 'muted mono' }, k.id), h('div', { class: 'muted' }, (k.hint ? k.hint + '… · ' : '') + 'created ' + new Date(k.created_at * 1000).toISOString().slice(0, 10))),
          h('td', null, stateBadge(st)),
          h('td', null, h('div', { class: 'num' }, fmtUsd(used) + ' / ' + (k.limit === null ? '∞' : fmtUsd(k.limit))), k.limit ? h('div', { class: 'bar' + (frac >= 1 ? ' full' : frac > 0.8 ? ' hot' : '') }, bar(frac)) : null, k.limit_reset !== 'none' ? h('div', { class: 'muted' }, 'resets ' + k.limit_reset) : null),
          td((last.requests || 0) + ' / ' + (k.rpm || '∞'), true),
          td(fmtInt((last.prompt_tokens || 0) + (last.completion_tokens || 0)) + ' / ' + (k.tpm ? fmtInt(k.tpm) : '∞'), true),
          h(
            'td',
            { class: 'actions' },
            h('button', { class: 'btn btn-sm', type: 'button', 'data-action': 'edit', onclick: () => editKey(k, root, gen) }, 'Limits'),
            h('button', { class: 'btn btn-sm', type: 'button', 'data-action': k.disabled ? 'enable' : 'disable', onclick: () => keyAction(() => api('PATCH', '/keys/' + k.id, { disabled: !k.disabled }), root, gen) }, k.disabled ? 'Enable' : 'Disable'),
            h(
              'button',
              {
                class: 'btn btn-sm btn-danger',
                type: 'button',
                'data-action': 'delete',
                onclick: () => {
                  if (confirm(`Delete key "${k.name}"? Requests with it are refused from now on. This cannot be undone.`)) keyAction(() => api('DELETE', '/keys/' + k.id), root, gen);
                },
              },
              'Delete',
            ),
          ),
        ),
      );
      if (vs.editing === k.id) rows.push(editRow(k, root, gen));
    }
    root.append(
      panel(
        'Keys',
        table([{ label: 'Key' }, { label: 'Status' }, { label: 'Credit used / limit' }, { label: 'Req. last min / RPM', num: true }, { label: 'Tok. last min / TPM', num: true }, { label: 'Actions', num: true }], rows, {
          empty: empty('No keys yet', 'While no key exists, a loopback-only gateway serves without keys. Create one above.'),
        }),
      ),
    );
  }
  function bar(frac) {
    const s = h('span');
    s.style.width = Math.round(frac * 100) + '%'; // CSSOM, allowed under the CSP (no style attribute parsing)
    return s;
  }
  function secretCallout(s) {
    const code = h('code', { id: 'key-secret-value' }, s.key);
    return h(
      'div',
      { class: 'callout callout-ok' },
      h('strong', null, `Key "${s.name}" created.`),
      ' Copy the secret now: it is shown only once and cannot be recovered.',
      h(
        'div',
        { class: 'secret' },
        code,
        h('button', { class: 'btn btn-sm', type: 'button', onclick: (ev) => navigator.clipboard && navigator.clipboard.writeText(s.key).then(() => (ev.target.textContent = 'Copied')) }, 'Copy'),
        h('button', { class: 'btn btn-sm btn-ghost', type: 'button', onclick: (ev) => { state.viewState.secret = null; ev.target.closest('.callout').remove(); } }, 'Done'),
      ),
    );
  }
  async function keyAction(fn, root, gen) {
    try {
      await fn();
      state.viewState.secret = null;
      await renderKeys(root, false, gen);
    } catch (e) {
      if (e.status !== 401) alert('Failed: ' + e.message);
    }
  }
  function editKey(k, root, gen) {
    state.viewState.editing = state.viewState.editing === k.id ? null : k.id;
    renderKeys(root, false, gen).catch(() => {});
  }
  function editRow(k, root, gen) {
    const credit = h('input', { id: 'edit-credit', inputmode: 'decimal', value: k.limit === null ? '' : String(k.limit), placeholder: 'unlimited' });
    const reset = h('select', { id: 'edit-reset' }, ['none', 'daily', 'weekly', 'monthly'].map((r) => h('option', { value: r, selected: r === k.limit_reset }, r)));
    const rpm = h('input', { id: 'edit-rpm', inputmode: 'numeric', value: k.rpm ? String(k.rpm) : '', placeholder: 'unlimited' });
    const tpm = h('input', { id: 'edit-tpm', inputmode: 'numeric', value: k.tpm ? String(k.tpm) : '', placeholder: 'unlimited' });
    const msg = h('div', { class: 'form-error', role: 'alert' });
    const form = h(
      'form',
      {
        novalidate: true,
        onsubmit: async (ev) => {
          ev.preventDefault();
          try {
            const body = { credit_limit: numOrNull(credit.value), reset: reset.value, rpm: numOrNull(rpm.value) ?? 0, tpm: numOrNull(tpm.value) ?? 0 };
            await api('PATCH', '/keys/' + k.id, body);
            state.viewState.editing = null;
            await renderKeys(root, false, gen);
          } catch (e) {
            msg.textContent = e.message;
          }
        },
      },
      h('div', { class: 'form-row' }, field('Credit limit (USD)', credit), field('Credit reset', reset), field('Requests / min', rpm), field('Tokens / min', tpm), h('div', null, h('button', { class: 'btn btn-primary', type: 'submit' }, 'Save limits'))),
      msg,
    );
    return h('tr', { class: 'sub' }, h('td', { colspan: 6 }, form));
  }

  // ---- Usage ----
  async function renderUsage(root, first, gen) {
    const vs = state.viewState;
    vs.range = vs.range || 'today';
    vs.group = vs.group || 'model';
    const now = Date.now();
    const ranges = { today: ['Today (UTC)', todayStartIso()], '24h': ['24 hours', Math.floor(now / 1000 - 86400)], '7d': ['7 days', Math.floor(now / 1000 - 7 * 86400)], '30d': ['30 days', Math.floor(now / 1000 - 30 * 86400)], custom: ['Custom', null] };
    let q = '';
    if (vs.range === 'custom') {
      if (vs.from) q += '&since=' + encodeURIComponent(vs.from);
      if (vs.to) q += '&until=' + encodeURIComponent(vs.to);
    } else q = '&since=' + ranges[vs.range][1];
    const [usage, keys] = await Promise.all([api('GET', '/usage?group_by=' + vs.group + q), vs.group === 'key' ? api('GET', '/keys') : Promise.resolve({ data: [] }), topbar()]);
    if (gen !== state.gen) return;
    const names = new Map(keys.data.map((k) => [k.id, k.name]));
    clear(root);
    const seg = (opts, cur, set) =>
      h(
        'div',
        { class: 'segmented', role: 'group' },
        Object.entries(opts).map(([v, label]) => h('button', { type: 'button', 'aria-pressed': String(v === cur), 'data-value': v, onclick: () => { set(v); renderUsage(root, false, gen).catch(showErr); } }, label)),
      );
    const from = h('input', { type: 'date', id: 'usage-from', value: vs.from || '' });
    const to = h('input', { type: 'date', id: 'usage-to', value: vs.to || '' });
    const apply = () => {
      vs.from = from.value;
      vs.to = to.value;
      renderUsage(root, false, gen).catch(showErr);
    };
    from.addEventListener('change', apply);
    to.addEventListener('change', apply);
    root.append(
      h(
        'div',
        { class: 'toolbar' },
        h('div', null, h('label', null, 'Range'), seg(Object.fromEntries(Object.entries(ranges).map(([k, v]) => [k, v[0]])), vs.range, (v) => (vs.range = v))),
        vs.range === 'custom' ? [h('div', null, h('label', { for: 'usage-from' }, 'From (UTC)'), from), h('div', null, h('label', { for: 'usage-to' }, 'Until (UTC, exclusive)'), to)] : null,
        h('div', null, h('label', null, 'Group by'), seg({ model: 'Model', provider: 'Provider', key: 'Key', day: 'Day' }, vs.group, (v) => (vs.group = v))),
      ),
    );
    const t = usage.total || {};
    root.append(
      h(
        'div',
        { class: 'grid kpis' },
        kpi('Requests', fmtInt(t.requests || 0), null, 'u-requests'),
        kpi('Prompt tokens', fmtInt(t.prompt_tokens || 0), null, 'u-prompt'),
        kpi('Completion tokens', fmtInt(t.completion_tokens || 0), null, 'u-completion'),
        kpi('Cost', fmtUsd(t.cost || 0), null, 'u-cost'),
      ),
    );
    const label = (u) => {
      const v = u[vs.group];
      if (vs.group === 'key') return v ? h('span', null, names.get(v) || '(deleted key)', ' ', h('span', { class: 'muted mono' }, v)) : h('span', { class: 'muted' }, 'no key (open gateway)');
      return h('span', { class: 'mono' }, v || '–');
    };
    const rows = usage.data.map((u) => h('tr', null, h('td', null, label(u)), td(fmtInt(u.requests), true), td(fmtInt(u.prompt_tokens), true), td(fmtInt(u.completion_tokens), true), td(fmtInt(u.cached_tokens), true), td(fmtInt(u.reasoning_tokens), true), td(fmtUsd(u.cost), true)));
    root.append(panel('By ' + vs.group, table([{ label: vs.group[0].toUpperCase() + vs.group.slice(1) }, { label: 'Requests', num: true }, { label: 'Prompt', num: true }, { label: 'Completion', num: true }, { label: 'Cached', num: true }, { label: 'Reasoning', num: true }, { label: 'Cost', num: true }], rows, { empty: empty('No usage in this range', 'Requests appear here once the ledger has committed them.') })));
  }
  function showErr(e) {
    if (e.status === 401) return;
    $('banner').textContent = e.message;
    $('banner').hidden = false;
  }

  // ---- Requests ----
  async function renderRequests(root, first, gen) {
    const [recent] = await Promise.all([api('GET', '/generations?limit=50'), topbar()]);
    if (gen !== state.gen) return;
    clear(root);
    const rows = recent.data.map((g) =>
      h(
        'tr',
        { class: 'clickable', tabindex: '0', 'data-generation': g.id, onclick: () => openGeneration(g.id), onkeydown: (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); openGeneration(g.id); } } },
        h('td', null, h('span', { class: 'mono' }, g.id), h('div', { class: 'muted' }, fmtTime(g.created_at_ms))),
        td(g.key_name || (g.key_id ? h('span', { class: 'muted mono' }, g.key_id) : h('span', { class: 'muted' }, '–'))),
        h('td', null, h('span', { class: 'mono' }, g.model || g.requested_model || '–'), g.requested_model && g.model && g.requested_model !== g.model ? h('div', { class: 'muted mono' }, 'asked ' + g.requested_model) : null),
        td(g.provider || '–'),
        h('td', null, statusBadge(g.status), g.cancelled ? badge('cancelled', 'warn') : null),
        td(String(g.attempts), true),
        td(fmtMs(g.latency_ms), true),
        td(fmtMs(g.ttft_ms), true),
        td(fmtInt(g.prompt_tokens) + ' / ' + fmtInt(g.completion_tokens), true),
        td(fmtUsd(g.cost), true),
      ),
    );
    root.append(panel('Most recent generations', table([{ label: 'Generation' }, { label: 'Key' }, { label: 'Model' }, { label: 'Provider' }, { label: 'Status' }, { label: 'Attempts', num: true }, { label: 'Latency', num: true }, { label: 'TTFT', num: true }, { label: 'Tokens in / out', num: true }, { label: 'Cost', num: true }], rows, { empty: empty('No traffic yet', 'Generations appear here a moment after they finish.') })));
  }
  async function openGeneration(id) {
    const dlg = $('detail');
    const body = clear($('detail-body'));
    $('detail-title').textContent = id;
    body.append(h('p', { class: 'muted' }, 'Loading…'));
    if (!dlg.open) dlg.showModal();
    try {
      const g = (await api('GET', '/generations/' + encodeURIComponent(id))).data;
      clear(body);
      const facts = [
        ['Created', g.created_at],
        ['Model', g.model],
        ['Requested model', g.requested_model],
        ['Provider', g.provider_name],
        ['Upstream model', g.upstream_model],
        ['API', g.api_type],
        ['Status', g.status],
        ['Finish reason', g.finish_reason || '–'],
        ['Streamed', g.streamed ? 'yes' : 'no'],
        ['Latency', fmtMs(g.latency)],
        ['TTFT', fmtMs(g.ttft)],
        ['Generation time', fmtMs(g.generation_time)],
        ['Prompt tokens', fmtInt(g.tokens_prompt)],
        ['Completion tokens', fmtInt(g.tokens_completion)],
        ['Cached tokens', fmtInt(g.native_tokens_cached)],
        ['Cost', fmtUsd(g.total_cost)],
        ['Key', g.key_id || '–'],
        ['User agent', g.user_agent || '–'],
      ];
      body.append(h('dl', { class: 'facts' }, facts.map(([k, v]) => h('div', null, h('dt', null, k), h('dd', null, v === null || v === undefined ? '–' : String(v))))));
      body.append(h('h3', null, 'Attempt trail'));
      const att = g.provider_responses || [];
      const keys = att.length ? Object.keys(att[0]) : [];
      body.append(
        table(
          keys.map((k) => ({ label: k.replace(/_/g, ' ') })),
          att.map((a) => h('tr', null, keys.map((k) => td(typeof a[k] === 'object' && a[k] !== null ? JSON.stringify(a[k]) : a[k] === null || a[k] === undefined ? '–' : String(a[k]))))),
          { empty: empty('No attempts recorded', 'The request was refused before any provider was tried.') },
        ),
      );
    } catch (e) {
      clear(body).append(h('div', { class: 'callout callout-error' }, 'Could not load the generation: ' + e.message));
    }
  }
  $('detail-close').addEventListener('click', () => $('detail').close());

  // ---- MCP ----
  async function renderMcp(root, first, gen) {
    const [mcp] = await Promise.all([api('GET', '/mcp'), topbar()]);
    if (gen !== state.gen) return;
    clear(root);
    root.append(h('div', { class: 'grid kpis' }, kpi('MCP sessions', fmtInt(mcp.sessions), 'live client sessions on /mcp', 'mcp-sessions'), kpi('Upstream servers', fmtInt(mcp.data.length), mcp.data.filter((u) => u.state === 'up').length + ' up', 'mcp-upstreams')));
    const rows = mcp.data.map((u) => h('tr', { 'data-mcp': u.name }, h('td', null, h('strong', { class: 'mono' }, u.name)), h('td', null, stateBadge(u.state)), h('td', null, stateBadge(u.circuit)), td(u.pid === null ? '–' : String(u.pid), true), td(fmtInt(u.tools), true), td(fmtInt(u.calls), true), td(fmtInt(u.errors), true), td(u.calls ? fmtPct(u.errors / u.calls) : '–', true)));
    root.append(panel('Upstream MCP servers', table([{ label: 'Server' }, { label: 'State' }, { label: 'Circuit' }, { label: 'PID', num: true }, { label: 'Tools', num: true }, { label: 'Calls', num: true }, { label: 'Errors', num: true }, { label: 'Error rate', num: true }], rows, { empty: empty('No upstream MCP servers', 'Configure mcp.servers to federate tools; the built-in tools are always on /mcp.') })));
  }

  // ---- Operations ----
  async function renderOperations(root, first, gen) {
    const s = await topbar();
    if (gen !== state.gen) return;
    const vs = state.viewState;
    if (first || !$('ops-facts')) {
      clear(root);
      const result = h('div', { id: 'reload-result', 'aria-live': 'polite' });
      const btn = h('button', { class: 'btn btn-primary', type: 'button', id: 'reload' }, 'Reload config and policies');
      btn.addEventListener('click', async () => {
        btn.disabled = true;
        clear(result).append(h('div', { class: 'callout callout-info' }, 'Reloading…'));
        try {
          const r = await api('POST', '/reload');
          let last = null;
          for (let i = 0; i < 100; i++) {
            const st = (await api('GET', '/status')).data;
            if (st.last_reload && st.last_reload.covers_ticket >= r.ticket) {
              last = st.last_reload;
              break;
            }
            await new Promise((res) => setTimeout(res, 100));
          }
          clear(result);
          if (!last) result.append(h('div', { class: 'callout callout-warn' }, 'The reload was requested but has not finished yet; check the gateway log.'));
          else if (last.ok) result.append(h('div', { class: 'callout callout-ok' }, h('strong', null, 'Reloaded.'), ` Now serving config generation ${last.generation}.`, last.error ? h('div', { class: 'pre' }, 'Warning: ' + last.error) : null));
          else result.append(h('div', { class: 'callout callout-error' }, h('strong', null, 'The new config was rejected; the current one stays in service.'), h('div', { class: 'pre' }, last.error)));
          vs.reloaded = true;
        } catch (e) {
          if (e.status !== 401) clear(result).append(h('div', { class: 'callout callout-error' }, 'Reload failed: ' + e.message));
        } finally {
          btn.disabled = false;
        }
      });
      root.append(
        panel('Configuration', h('p', { class: 'muted' }, 'Re-reads the config file and the routing policies, like kill -HUP. A config with an error is rejected and the running one stays.'), btn, result),
        panel('Gateway', h('dl', { class: 'facts', id: 'ops-facts' })),
        panel('Ledger', h('dl', { class: 'facts', id: 'ops-ledger' })),
      );
    }
    const facts = [
      ['Version', s.version],
      ['Uptime', fmtAge(s.uptime_s)],
      ['Started', fmtTime(s.started_at * 1000)],
      ['Config generation', s.config_generation],
      ['Workers', s.workers],
      ['In flight', s.in_flight],
      ['API keys', s.keys],
      ['Open gateway (no key needed)', s.open_gateway ? 'yes' : 'no'],
      ['Dashboard sessions', s.dashboard_sessions],
      ['MCP sessions', s.mcp_sessions],
      ['Last reload', s.last_reload ? (s.last_reload.ok ? 'ok, ' : 'rejected, ') + fmtTime(s.last_reload.finished_at_ms) : 'none since start'],
    ];
    clear($('ops-facts')).append(...facts.map(([k, v]) => h('div', null, h('dt', null, k), h('dd', null, String(v)))));
    const l = s.ledger;
    const lf = l
      ? [
          ['Queue depth', `${fmtInt(l.depth)} / ${fmtInt(l.capacity)}`],
          ['Submitted', fmtInt(l.submitted)],
          ['Committed', fmtInt(l.committed)],
          ['Dropped', fmtInt(l.dropped)],
          ['Batches', fmtInt(l.batches)],
          ['Last commit', l.last_commit_ms ? fmtTime(l.last_commit_ms) : 'none yet'],
        ]
      : [['Ledger', 'off (no store)']];
    clear($('ops-ledger')).append(...lf.map(([k, v]) => h('div', { 'data-fact': k }, h('dt', null, k), h('dd', { class: k === 'Dropped' && l && l.dropped ? 'badge-bad' : null }, String(v)))));
  }

  boot();
})();
