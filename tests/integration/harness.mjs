// SPDX-License-Identifier: MIT
// Shared harness for the llmgate integration tests (node:test, Node >= 20, no npm dependencies).
//
//   const env = await startEnv({ models: {...}, providers: [...], routing: {...}, limits: {...} });
//   await env.post('/v1/chat/completions', body)  -> { status, headers, text, json }
//   await env.sse('/v1/chat/completions', body)   -> { status, headers, raw, events, data, chunks, comments, ... }
//   await env.mockLast('echo'), env.mockStats(), env.mockReset()
//   await env.stop()                              -> asserts the gateway exits 0 after SIGTERM
//
// Binaries come from $LLMGATE_BUILD_DIR (CTest sets it), plugins from $LLMGATE_PLUGIN_DIR, policies from
// $LLMGATE_POLICY_DIR or <source>/policies. The gateway's stderr goes to a file in the temp dir; it is printed when
// a test wrapped with gwTest() fails and when the gateway does not start.
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { it } from 'node:test';

const here = path.dirname(fileURLToPath(import.meta.url));
export const SOURCE_DIR = process.env.LLMGATE_SOURCE_DIR || path.resolve(here, '..', '..');
export const BUILD_DIR = process.env.LLMGATE_BUILD_DIR || path.join(SOURCE_DIR, 'build');
export const PLUGIN_DIR = process.env.LLMGATE_PLUGIN_DIR || path.join(BUILD_DIR, 'plugins');
export const POLICY_DIR = process.env.LLMGATE_POLICY_DIR || path.join(SOURCE_DIR, 'policies');

function firstExisting(cands) {
  for (const c of cands) if (fs.existsSync(c)) return c;
  return cands[0];
}
export const GATEWAY_BIN = process.env.LLMGATE_BIN || firstExisting([path.join(BUILD_DIR, 'llmgate'), path.join(BUILD_DIR, 'src', 'llmgate')]);
export const MOCK_BIN =
  process.env.LLMGATE_MOCK_BIN ||
  firstExisting([
    path.join(BUILD_DIR, 'tests', 'mock', 'mock_upstream'),
    path.join(BUILD_DIR, 'tests', 'mock_upstream'),
    path.join(BUILD_DIR, 'mock_upstream'),
  ]);

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Environment for spawned processes: sanitizer builds must not fail on leak reports at exit. */
export function childEnv(extra = {}) {
  const env = { ...process.env, LLMGATE_PLUGIN_DIR: PLUGIN_DIR, LLMGATE_POLICY_DIR: POLICY_DIR, ...extra };
  const addOpt = (name, opt) => {
    env[name] = env[name] ? `${env[name]}:${opt}` : opt;
  };
  addOpt('ASAN_OPTIONS', 'detect_leaks=0');
  addOpt('LSAN_OPTIONS', 'detect_leaks=0');
  return env;
}

/** A free TCP port on 127.0.0.1 (bind port 0, read, close). Racy by nature; startEnv retries on EADDRINUSE. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Starts tests/mock's mock_upstream on an ephemeral port (extraArgs: e.g. ['--cloudflare-token', T]). */
export async function startMock(extraArgs = []) {
  assert.ok(fs.existsSync(MOCK_BIN), `mock upstream binary not found at ${MOCK_BIN} (set LLMGATE_BUILD_DIR)`);
  const proc = spawn(MOCK_BIN, ['--port', '0', '--quiet', ...extraArgs], { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv() });
  let out = '';
  let err = '';
  proc.stderr.on('data', (d) => (err += d));
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`mock_upstream did not start: ${err}`)), 10000);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = /listening on [^:\s]+:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`mock_upstream exited (${code}): ${err}`));
    });
  });
  proc.stdout.resume();
  return { proc, port, base: `http://127.0.0.1:${port}` };
}

// ---------------------------------------------------------------------------------------------------------------------
// HTTP helpers (fetch = undici, built into Node 20)

async function toResult(res) {
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

export async function httpPost(base, p, body, headers = {}, opts = {}) {
  const payload = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
  const res = await fetch(base + p, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: payload,
    signal: AbortSignal.timeout(opts.timeout ?? 60000),
  });
  return toResult(res);
}

export async function httpGet(base, p, headers = {}, opts = {}) {
  const res = await fetch(base + p, { method: opts.method || 'GET', headers, signal: AbortSignal.timeout(opts.timeout ?? 30000) });
  return toResult(res);
}

/**
 * Parses an SSE body. Events are separated by blank lines (LF or CRLF). Returns:
 *   items:    every line in order, {type:'data'|'comment'|'field', value}
 *   data:     payload strings of data events (multi-line data joined with '\n')
 *   comments: comment lines (without the leading ':', trimmed)
 *   chunks:   JSON-parsed data payloads (excluding [DONE]); unparsable payloads are in `bad`
 *   doneIndex: index in `data` of '[DONE]' (-1 when missing)
 */
export function parseSse(raw) {
  const items = [];
  const data = [];
  const comments = [];
  const chunks = [];
  const bad = [];
  const blocks = raw.split(/\r?\n\r?\n/);
  for (const block of blocks) {
    if (block.trim() === '') continue;
    const lines = block.split(/\r?\n/);
    const dataLines = [];
    for (const line of lines) {
      if (line.startsWith(':')) {
        const c = line.slice(1).trim();
        comments.push(c);
        items.push({ type: 'comment', value: c });
      } else if (line.startsWith('data:')) {
        const v = line.slice(5).replace(/^ /, '');
        dataLines.push(v);
        items.push({ type: 'data', value: v });
      } else if (line !== '') {
        items.push({ type: 'field', value: line });
      }
    }
    if (dataLines.length) {
      const payload = dataLines.join('\n');
      data.push(payload);
      if (payload !== '[DONE]') {
        try {
          chunks.push(JSON.parse(payload));
        } catch {
          bad.push(payload);
        }
      }
    }
  }
  const doneIndex = data.indexOf('[DONE]');
  return { items, data, comments, chunks, bad, doneIndex };
}

/** Concatenated delta contents of chat.completion.chunk events. */
export function deltaText(chunks) {
  return chunks.map((c) => c.choices?.[0]?.delta?.content ?? c.choices?.[0]?.text ?? '').join('');
}

export async function httpSse(base, p, body, headers = {}, opts = {}) {
  const res = await fetch(base + p, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...headers },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(opts.timeout ?? 60000),
  });
  const raw = await res.text();
  let json;
  if (!(res.headers.get('content-type') || '').includes('text/event-stream')) {
    try {
      json = JSON.parse(raw);
    } catch {
      json = undefined;
    }
  }
  return { status: res.status, headers: res.headers, raw, json, ...parseSse(raw) };
}

// ---------------------------------------------------------------------------------------------------------------------
// config

export const TIMEOUTS = { connect_ms: 1000, first_byte_ms: 1500, idle_ms: 1000, total_ms: 10000 };

/** One endpoint of a catalog model. */
export function ep(provider, model, prompt = '0.000001', completion = '0.000002', extra = {}) {
  return { provider, model, pricing: { prompt, completion }, ...extra };
}

export function buildConfig({ port, mockPort, dir, providers = [], models = {}, routing = {}, limits, extra = {} }) {
  const base = `http://127.0.0.1:${mockPort}/v1`;
  const upstream = (name, key, more = {}) => ({
    name,
    plugin: 'openai',
    base_url: base,
    api_key: key,
    timeouts: { ...TIMEOUTS },
    ...more,
  });
  const conf = {
    listeners: [{ address: '127.0.0.1', port }],
    workers: 2,
    access_log: path.join(dir, 'access.log'),
    log_level: 'info',
    routing: { keepalive_interval_ms: 300, ...routing },
    providers: [
      upstream('up1', 'k1'),
      upstream('up2', 'k2'),
      { name: 'mock', plugin: 'mock' },
      ...providers.map((p) => (p.plugin ? p : upstream(p.name, p.api_key || `key-${p.name}`, p))),
    ],
    models: { 'test/echo': { endpoints: [ep('up1', 'echo', '0.000001', '0.000002')] }, ...models },
    ...extra,
  };
  if (limits) conf.limits = limits;
  return conf;
}

// ---------------------------------------------------------------------------------------------------------------------
// environment: mock + gateway

const liveProcs = new Set();
process.on('exit', () => {
  for (const p of liveProcs) {
    try {
      p.kill('SIGKILL');
    } catch {}
  }
});

function waitExit(proc, ms) {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve({ code: proc.exitCode, signal: proc.signalCode });
    const t = setTimeout(() => resolve(null), ms);
    proc.once('exit', (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal });
    });
  });
}

export async function startEnv(opts = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmgate-it-'));
  assert.ok(fs.existsSync(GATEWAY_BIN), `gateway binary not found at ${GATEWAY_BIN} (set LLMGATE_BUILD_DIR)`);
  const mock = await startMock(opts.mockArgs);
  liveProcs.add(mock.proc);
  const configPath = path.join(dir, 'llmgate.json');
  const stderrPath = path.join(dir, 'gateway.stderr');
  let proc, port, base, lastErr;

  for (let attempt = 0; attempt < 6; attempt++) {
    port = await freePort();
    const conf = buildConfig({ ...opts, port, mockPort: mock.port, dir });
    if (opts.mutate) opts.mutate(conf);
    fs.writeFileSync(configPath, JSON.stringify(conf, null, 2));
    const errFd = fs.openSync(stderrPath, 'a');
    proc = spawn(GATEWAY_BIN, ['--config', configPath], { stdio: ['ignore', errFd, errFd], env: childEnv(opts.env) });
    fs.closeSync(errFd);
    liveProcs.add(proc);
    base = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 20000;
    let ready = false;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null || proc.signalCode !== null) break;
      try {
        const r = await fetch(base + '/health', { signal: AbortSignal.timeout(1000) });
        await r.arrayBuffer();
        if (r.status === 200) {
          ready = true;
          break;
        }
      } catch {}
      await sleep(50);
    }
    if (ready) break;
    const log = fs.readFileSync(stderrPath, 'utf8');
    try {
      proc.kill('SIGKILL');
    } catch {}
    await waitExit(proc, 2000);
    liveProcs.delete(proc);
    lastErr = new Error(`gateway did not become healthy on port ${port}:\n${log.slice(-4000)}`);
    if (!/in use|EADDRINUSE/i.test(log)) break;
  }
  if (lastErr && !(proc.exitCode === null && proc.signalCode === null)) {
    mock.proc.kill('SIGKILL');
    throw lastErr;
  }

  const env = {
    dir,
    configPath,
    stderrPath,
    accessLogPath: path.join(dir, 'access.log'),
    proc,
    port,
    base,
    mock,
    mockBase: mock.base,
    opts,
    post: (p, body, headers, o) => httpPost(base, p, body, headers, o),
    get: (p, headers, o) => httpGet(base, p, headers, o),
    sse: (p, body, headers, o) => httpSse(base, p, body, headers, o),
    chat: (model, content = 'hello there world', extra = {}, headers) =>
      httpPost(base, '/v1/chat/completions', { model, messages: [{ role: 'user', content }], ...extra }, headers),
    chatStream: (model, content = 'hello there world', extra = {}, headers) =>
      httpSse(base, '/v1/chat/completions', { model, messages: [{ role: 'user', content }], stream: true, ...extra }, headers),
    async mockLast(model) {
      const r = await httpGet(mock.base, '/_mock/last?model=' + encodeURIComponent(model));
      return r.status === 200 ? r.json : null;
    },
    async mockStats() {
      return (await httpGet(mock.base, '/_mock/stats')).json;
    },
    async mockCount(model) {
      return (await env.mockStats()).requests[model] || 0;
    },
    async mockReset() {
      await httpPost(mock.base, '/_mock/reset', '');
    },
    log() {
      try {
        return fs.readFileSync(stderrPath, 'utf8');
      } catch {
        return '';
      }
    },
    accessLog() {
      try {
        return fs
          .readFileSync(path.join(dir, 'access.log'), 'utf8')
          .split('\n')
          .filter((l) => l.trim() !== '');
      } catch {
        return [];
      }
    },
    /** Rewrites the config file (object or raw string) keeping listener/mock ports. */
    writeConfig(confOrText) {
      fs.writeFileSync(configPath, typeof confOrText === 'string' ? confOrText : JSON.stringify(confOrText, null, 2));
    },
    currentConfig() {
      return JSON.parse(fs.readFileSync(configPath, 'utf8'));
    },
    signal(sig) {
      proc.kill(sig);
    },
    /** SIGTERM, wait for exit, assert exit code 0. */
    async stop(ms = 30000) {
      let res = null;
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      res = await waitExit(proc, ms);
      liveProcs.delete(proc);
      await env.kill();
      assert.ok(res, `gateway did not exit within ${ms} ms of SIGTERM`);
      assert.equal(res.signal, null, `gateway died of signal ${res.signal}\n${env.log().slice(-3000)}`);
      assert.equal(res.code, 0, `gateway exit code ${res.code}\n${env.log().slice(-3000)}`);
    },
    waitExit: (ms) => waitExit(proc, ms),
    /** Kills whatever is still running (no assertions); safe to call twice. */
    async kill() {
      for (const p of [proc, mock.proc]) {
        if (p.exitCode === null && p.signalCode === null) {
          p.kill('SIGKILL');
          await waitExit(p, 5000);
        }
        liveProcs.delete(p);
      }
    },
  };
  return env;
}

/**
 * it() wrapper: on failure, prints the tail of the gateway's stderr so the cause is visible in CTest output.
 * Usage: const test = gwTest(() => env); test('name', async () => {...});
 */
export function gwTest(getEnv) {
  const wrap =
    (fn) =>
    async (...args) => {
      try {
        await fn(...args);
      } catch (e) {
        const env = getEnv();
        if (env) {
          const log = env.log();
          console.error(`---- gateway stderr (tail) ${env.stderrPath} ----\n${log.slice(-4000)}\n---- end ----`);
        }
        throw e;
      }
    };
  const t = (name, opts, fn) => (typeof opts === 'function' ? it(name, wrap(opts)) : it(name, opts, wrap(fn)));
  return t;
}

/** Asserts the OpenRouter error shape; returns error. */
export function assertError(res, status, { type, mentions } = {}) {
  assert.equal(res.status, status, `expected HTTP ${status}, got ${res.status}: ${res.text}`);
  assert.ok(res.json && typeof res.json === 'object', `error body is not JSON: ${res.text}`);
  const e = res.json.error;
  assert.ok(e && typeof e === 'object', `no error object: ${res.text}`);
  assert.equal(e.code, status, `error.code ${e.code} != HTTP status ${status}: ${res.text}`);
  assert.equal(typeof e.message, 'string', `error.message not a string: ${res.text}`);
  assert.ok(e.message.length > 0);
  assert.ok(e.metadata === undefined || (e.metadata && typeof e.metadata === 'object'), `metadata not an object: ${res.text}`);
  if (type) {
    const types = [e.type, e.metadata?.error_type, e.metadata?.availability?.code];
    assert.ok(types.includes(type), `expected error type ${type}, got ${JSON.stringify(types)}: ${res.text}`);
  }
  if (mentions) assert.ok(e.message.includes(mentions), `error message should name "${mentions}": ${e.message}`);
  return e;
}

/** Runs a command, resolves { code, stdout, stderr } (never rejects on non-zero exit). */
export function run(cmd, args, opts = {}) {
  return new Promise((resolve) => {
    execFile(cmd, args, { env: childEnv(), timeout: 30000, maxBuffer: 16 << 20, ...opts }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr, err });
    });
  });
}

/** Polls fn until it returns truthy or ms elapse; returns the last value. */
export async function waitFor(fn, ms = 2000, step = 50) {
  const deadline = Date.now() + ms;
  let v;
  while (true) {
    v = await fn();
    if (v || Date.now() >= deadline) return v;
    await sleep(step);
  }
}

/** Cost by hand: prompt*price + completion*price. */
export function expectedCost(usage, prompt, completion) {
  return usage.prompt_tokens * Number(prompt) + usage.completion_tokens * Number(completion);
}

export function assertClose(actual, expected, msg) {
  assert.equal(typeof actual, 'number', `${msg}: not a number (${actual})`);
  assert.ok(Math.abs(actual - expected) <= 1e-12 + Math.abs(expected) * 1e-9, `${msg}: ${actual} != ${expected}`);
}
