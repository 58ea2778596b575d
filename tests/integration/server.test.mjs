// SPDX-License-Identifier: MIT
// Server behaviour: HTTP/2 prior knowledge, access log, SIGHUP reload (good and bad config), --check-config,
// graceful shutdown on SIGTERM with a stream in flight.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import { startEnv, gwTest, ep, run, waitFor, sleep, GATEWAY_BIN, parseSse, deltaText } from './harness.mjs';

let env;
const test = gwTest(() => env);
const W20 = Array.from({ length: 20 }, (_, i) => `w${i + 1}`).join(' ');

function connectOnce(port) {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.once('error', (e) => resolve(e.code));
  });
}

describe('server', () => {
  before(async () => {
    env = await startEnv({
      models: {
        'test/fallback': {
          policy: 'price',
          endpoints: [ep('up1', 'fail-500', '0.000001', '0.000001'), ep('up2', 'echo', '0.000002', '0.000002')],
        },
        'test/slow': { endpoints: [ep('up1', 'slow-100+words-20')] },
      },
    });
  });
  after(async () => {
    await env?.kill();
  });

  test('HTTP/2 prior knowledge (curl --http2-prior-knowledge): non-stream', async () => {
    const r = await run('curl', [
      '-s',
      '--http2-prior-knowledge',
      '-w',
      '\n%{http_version} %{http_code}',
      '-H',
      'content-type: application/json',
      `${env.base}/v1/chat/completions`,
      '-d',
      JSON.stringify({ model: 'test/echo', messages: [{ role: 'user', content: 'over h2' }] }),
    ]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    const [ver, code] = lines.pop().split(' ');
    assert.equal(ver, '2', 'served over HTTP/2');
    assert.equal(code, '200');
    const j = JSON.parse(lines.join('\n'));
    assert.equal(j.object, 'chat.completion');
    assert.equal(j.choices[0].message.content, 'over h2');
    assert.match(j.id, /^gen-/);
  });

  test('HTTP/2 prior knowledge: stream', async () => {
    const r = await run('curl', [
      '-s',
      '-N',
      '--http2-prior-knowledge',
      `${env.base}/v1/chat/completions`,
      '-d',
      JSON.stringify({ model: 'test/echo', stream: true, messages: [{ role: 'user', content: 'streamed over h2' }] }),
    ]);
    assert.equal(r.code, 0, r.stderr);
    const p = parseSse(r.stdout);
    assert.equal(deltaText(p.chunks), 'streamed over h2');
    assert.equal(p.data[p.data.length - 1], '[DONE]');
  });

  test('HTTP/2: concurrent streams multiplexed on one connection (node:http2, h2c)', async () => {
    // (curl 7.88.1 cannot reuse an h2c connection, curl issue #10634, so node's client does this one)
    const session = http2.connect(env.base);
    session.on('error', () => {});
    try {
      const one = (i) =>
        new Promise((resolve, reject) => {
          const req = session.request({ ':method': 'POST', ':path': '/v1/chat/completions', 'content-type': 'application/json' });
          let body = '';
          let status;
          req.setEncoding('utf8');
          req.on('response', (h) => (status = h[':status']));
          req.on('data', (d) => (body += d));
          req.on('end', () => resolve({ status, body }));
          req.on('error', reject);
          req.end(JSON.stringify({ model: i % 2 ? 'test/slow' : 'test/echo', stream: i % 2 === 1, messages: [{ role: 'user', content: `multi ${i}` }] }));
        });
      const res = await Promise.all([0, 1, 2, 3, 4, 5].map(one));
      for (const [i, r] of res.entries()) {
        assert.equal(r.status, 200, r.body);
        if (i % 2) assert.equal(deltaText(parseSse(r.body).chunks), W20);
        else assert.equal(JSON.parse(r.body).choices[0].message.content, `multi ${i}`);
      }
    } finally {
      session.close();
    }
  });

  test('access log: one JSON line per request with id, model, provider, status, attempts, latency_ms', async () => {
    const a = await env.chat('test/echo', 'log me');
    const b = await env.chat('test/fallback', 'log me too');
    const c = await env.chat('nope/unknown');
    assert.equal(a.status, 200);
    assert.equal(b.status, 200, b.text);
    assert.equal(c.status, 400);
    const ids = [a.json.id, b.json.id, c.headers.get('x-generation-id')];
    const lines = await waitFor(() => {
      const ls = env.accessLog();
      return ids.every((id) => ls.some((l) => l.includes(id))) ? ls : null;
    }, 3000);
    assert.ok(lines, `access log lines for ${ids}:\n${env.accessLog().join('\n')}`);
    const recs = lines.map((l) => JSON.parse(l)); // every line is JSON
    const byId = (id) => recs.filter((x) => x.id === id);
    for (const id of ids) assert.equal(byId(id).length, 1, `exactly one line for ${id}`);
    const ra = byId(ids[0])[0];
    assert.equal(ra.model, 'test/echo');
    assert.equal(ra.provider, 'up1');
    assert.equal(ra.status, 200);
    assert.equal(ra.attempts, 1);
    assert.equal(typeof ra.latency_ms, 'number');
    const rb = byId(ids[1])[0];
    assert.equal(rb.provider, 'up2');
    assert.equal(rb.attempts, 2);
    assert.equal(rb.status, 200);
    const rc = byId(ids[2])[0];
    assert.equal(rc.status, 400);
  });

  test('SIGHUP reload adds a model', async () => {
    const conf = env.currentConfig();
    conf.models['test/added'] = { endpoints: [ep('up2', 'echo+added')] };
    env.writeConfig(conf);
    env.signal('SIGHUP');
    const listed = await waitFor(async () => (await env.get('/v1/models')).json.data.some((m) => m.id === 'test/added'), 5000, 100);
    assert.ok(listed, 'test/added listed after SIGHUP');
    const r = await env.chat('test/added', 'new model');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.provider, 'up2');
    assert.equal(r.json.choices[0].message.content, 'new model');
  });

  test('SIGHUP with invalid JSON keeps the old config', async () => {
    const before = env.log().length;
    env.writeConfig('{"listeners": [ this is not json');
    env.signal('SIGHUP');
    const logged = await waitFor(() => env.log().slice(before).length > 0, 3000, 100);
    assert.ok(logged, 'the rejected reload is logged');
    await sleep(200);
    assert.equal((await env.get('/health')).status, 200);
    const r = await env.chat('test/added', 'still here');
    assert.equal(r.status, 200, r.text);
    assert.equal((await env.chat('test/echo')).status, 200);
    assert.ok((await env.get('/v1/models')).json.data.some((m) => m.id === 'test/added'));
  });

  test('SIGHUP with a semantically invalid config keeps the old config', async () => {
    env.writeConfig({ listeners: [{ address: '127.0.0.1', port: env.port }], providers: [{ name: 'x', plugin: 'openai', base_url: 'ftp://nope' }], models: {} });
    env.signal('SIGHUP');
    await sleep(500);
    assert.equal((await env.chat('test/added')).status, 200);
  });

  test('--check-config: bad file exits 1 naming the JSON path; good file exits 0', async () => {
    const good = path.join(env.dir, 'good.json');
    const bad = path.join(env.dir, 'bad.json');
    const unknown = path.join(env.dir, 'unknown.json');
    const conf = {
      listeners: [{ address: '127.0.0.1', port: 1 }],
      providers: [{ name: 'p', plugin: 'openai', base_url: 'http://127.0.0.1:9/v1', api_key: 'k' }],
      models: { 'a/b': { endpoints: [{ provider: 'p', model: 'm', pricing: { prompt: '0', completion: '0' } }] } },
    };
    fs.writeFileSync(good, JSON.stringify(conf));
    fs.writeFileSync(bad, JSON.stringify({ ...conf, providers: [{ ...conf.providers[0], base_url: 'not a url' }] }));
    fs.writeFileSync(unknown, JSON.stringify({ ...conf, listners: [] }));
    const g = await run(GATEWAY_BIN, ['--check-config', good]);
    assert.equal(g.code, 0, g.stdout + g.stderr);
    const b = await run(GATEWAY_BIN, ['--check-config', bad]);
    assert.equal(b.code, 1, b.stdout + b.stderr);
    assert.match(b.stdout + b.stderr, /providers\[0\]\.base_url/);
    const u = await run(GATEWAY_BIN, ['--check-config', unknown]);
    assert.equal(u.code, 1, u.stdout + u.stderr);
    assert.match(u.stdout + u.stderr, /listners/);
  });

  test('graceful shutdown: SIGTERM mid-stream -> stream completes with [DONE], new connections refused, exit 0', async () => {
    let raw = '';
    let firstData;
    const gotFirst = new Promise((r) => (firstData = r));
    const done = new Promise((resolve, reject) => {
      const req = http.request(
        `${env.base}/v1/chat/completions`,
        { method: 'POST', headers: { 'content-type': 'application/json', connection: 'close' } },
        (res) => {
          res.setEncoding('utf8');
          res.on('data', (d) => {
            raw += d;
            if (raw.includes('data: {')) firstData();
          });
          res.on('end', () => resolve(res.statusCode));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(JSON.stringify({ model: 'test/slow', stream: true, messages: [{ role: 'user', content: 'x' }] }));
    });
    await gotFirst;
    env.signal('SIGTERM');
    const refused = await waitFor(async () => (await connectOnce(env.port)) === 'ECONNREFUSED', 1500, 50);
    assert.ok(refused, 'new connections are refused while draining');
    const status = await done;
    assert.equal(status, 200);
    const p = parseSse(raw);
    assert.equal(p.data[p.data.length - 1], '[DONE]', `stream completed:\n${raw}`);
    assert.equal(deltaText(p.chunks), W20);
    assert.ok(!p.chunks.some((c) => c.error), 'no error chunk');
    const ex = await env.waitExit(15000);
    assert.ok(ex, 'gateway exited after draining');
    assert.equal(ex.signal, null);
    assert.equal(ex.code, 0, env.log().slice(-2000));
    assert.equal(await connectOnce(env.port), 'ECONNREFUSED');
  });
});
