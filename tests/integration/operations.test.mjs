// SPDX-License-Identifier: MIT
// Operations conventions: --listen (repeatable) / --workers / --log-level and their LLMGATE_* environment overrides,
// for the embedded default and for a config file; --version; a policy that overflows the C stack at load time is an
// ordinary error at --check-config and at SIGHUP (it crashed the process before).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe } from 'node:test';
import { GATEWAY_BIN, childEnv, freePort, gwTest, run, sleep, startEnv, waitFor } from './harness.mjs';

let current = null;
const test = gwTest(() => current);

/** Start the binary with args/env, wait until /health answers on `port`; returns { proc, log(), stop() }. */
async function startGateway(args, port, env = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmgate-ops-'));
  const errPath = path.join(dir, 'stderr');
  const fd = fs.openSync(errPath, 'a');
  const proc = spawn(GATEWAY_BIN, args, { stdio: ['ignore', fd, fd], env: childEnv({ LLMGATE_ADMIN_KEY: '', ...env }) });
  fs.closeSync(fd);
  const g = {
    proc,
    stderrPath: errPath,
    log: () => {
      try {
        return fs.readFileSync(errPath, 'utf8');
      } catch {
        return '';
      }
    },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const res = await new Promise((r) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return r({ code: proc.exitCode, signal: proc.signalCode });
        const t = setTimeout(() => {
          proc.kill('SIGKILL');
          r(null);
        }, 15000);
        proc.once('exit', (code, signal) => {
          clearTimeout(t);
          r({ code, signal });
        });
      });
      return res;
    },
  };
  current = { log: g.log, stderrPath: errPath };
  const up = await waitFor(async () => {
    if (proc.exitCode !== null) return 'exited';
    try {
      const r = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(1000) });
      return r.status === 200 ? 'up' : null;
    } catch {
      return null;
    }
  }, 20000, 100);
  assert.equal(up, 'up', `gateway did not come up on ${port}:\n${g.log().slice(-2000)}`);
  return g;
}

async function health(port) {
  return (await fetch(`http://127.0.0.1:${port}/health`)).json();
}

describe('operations', () => {
  test('--listen (repeatable), --workers and --log-level apply to the embedded default', async () => {
    const [p1, p2] = [await freePort(), await freePort()];
    const g = await startGateway(['--listen', `127.0.0.1:${p1}`, '--listen', `127.0.0.1:${p2}`, '--workers', '3', '--log-level', 'warn'], p1);
    try {
      assert.equal((await health(p1)).workers, 3);
      assert.equal((await health(p2)).status, 'ok');
      const r = await fetch(`http://127.0.0.1:${p2}/v1/chat/completions`, {
        method: 'POST',
        body: JSON.stringify({ model: 'mock/echo', messages: [{ role: 'user', content: 'hello ops' }] }),
      });
      assert.equal(r.status, 200);
      assert.doesNotMatch(g.log(), / info /, 'warn level: no info lines');
    } finally {
      assert.deepEqual(await g.stop(), { code: 0, signal: null });
    }
  });

  test('LLMGATE_LISTEN / LLMGATE_WORKERS / LLMGATE_LOG_LEVEL apply, and the flags win over them', async () => {
    const [pe, pf] = [await freePort(), await freePort()];
    let g = await startGateway([], pe, { LLMGATE_LISTEN: `127.0.0.1:${pe}`, LLMGATE_WORKERS: '2', LLMGATE_LOG_LEVEL: 'warn' });
    try {
      assert.equal((await health(pe)).workers, 2);
      assert.doesNotMatch(g.log(), / info /);
    } finally {
      assert.deepEqual(await g.stop(), { code: 0, signal: null });
    }
    g = await startGateway(['--listen', `127.0.0.1:${pf}`, '--workers', '1'], pf, { LLMGATE_LISTEN: `127.0.0.1:${pe}`, LLMGATE_WORKERS: '4' });
    try {
      assert.equal((await health(pf)).workers, 1);
      await assert.rejects(fetch(`http://127.0.0.1:${pe}/health`, { signal: AbortSignal.timeout(1000) }));
    } finally {
      assert.deepEqual(await g.stop(), { code: 0, signal: null });
    }
  });

  test('overrides apply to a config file too, and are validated like the file', async () => {
    const env = await startEnv({});
    current = env;
    const conf = env.currentConfig();
    await env.stop();
    const port = await freePort();
    const g = await startGateway(['--config', env.configPath, '--listen', `127.0.0.1:${port}`], port);
    try {
      assert.equal((await health(port)).status, 'ok');
      await assert.rejects(fetch(`http://127.0.0.1:${conf.listeners[0].port}/health`, { signal: AbortSignal.timeout(1000) }));
    } finally {
      assert.deepEqual(await g.stop(), { code: 0, signal: null });
    }
    // a network listener with "store": null must be refused, whether it comes from the file or an override
    const bare = { ...conf, store: null };
    fs.writeFileSync(env.configPath, JSON.stringify(bare));
    const ok = await run(GATEWAY_BIN, ['--check-config', env.configPath]);
    assert.equal(ok.code, 0, ok.stderr);
    const bad = await run(GATEWAY_BIN, ['--check-config', env.configPath, '--listen', '0.0.0.0:4999']);
    assert.equal(bad.code, 1, bad.stdout + bad.stderr);
    assert.match(bad.stderr, /store/);
    const junk = await run(GATEWAY_BIN, ['--listen', 'nonsense']);
    assert.equal(junk.code, 2);
    assert.match(junk.stderr, /--listen 'nonsense': expected HOST:PORT/);
  });

  test('--version prints the build details', async () => {
    const r = await run(GATEWAY_BIN, ['--version']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^llmgate \d+\.\d+\.\d+\n/);
    assert.match(r.stdout, /commit +\S+/);
    assert.match(r.stdout, /build +\S+/);
    assert.match(r.stdout, /h2o 2\.2\.5, libuv [\d.]+, libcurl [\d.]+, LuaJIT/);
  });

  test('a policy that overflows the C stack while loading fails --check-config and SIGHUP cleanly', async () => {
    const env = await startEnv({});
    current = env;
    try {
      const bomb = path.join(env.dir, 'bomb.lua');
      fs.writeFileSync(bomb, "local function f(s) return (s:gsub('.', f)) end f('a')\nreturn {select = function() return {1} end}\n");
      const conf = env.currentConfig();
      conf.policies = { bomb };
      conf.models['test/echo'].policy = 'bomb';
      env.writeConfig(conf);
      const chk = await run(GATEWAY_BIN, ['--check-config', env.configPath]);
      assert.equal(chk.code, 1, `exit ${chk.code} signal ${chk.signal}: ${chk.stderr}`);
      assert.match(chk.stderr, /C stack depth limit/);
      const before = env.log().length;
      env.signal('SIGHUP');
      assert.ok(await waitFor(() => /new config rejected/.test(env.log().slice(before)), 5000, 100), env.log().slice(before));
      await sleep(100);
      assert.equal((await env.chat('test/echo')).status, 200);
    } finally {
      await env.stop();
    }
  });
});
