// SPDX-License-Identifier: MIT
// HTTP/2 over TLS with ALPN on a listener that has a certificate (self-signed, made here with the openssl CLI),
// next to a cleartext listener; HTTP/1.1 over TLS still works for clients without ALPN h2.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import { startEnv, gwTest, freePort, run } from './harness.mjs';

let env, tlsPort, dir;
const test = gwTest(() => env);

describe('tls', () => {
  before(async () => {
    dir = fs.mkdtempSync(path.join(process.env.TMPDIR || '/tmp', 'llmgate-tls-'));
    const key = path.join(dir, 'key.pem');
    const cert = path.join(dir, 'cert.pem');
    const r = await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1',
      '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost']);
    assert.equal(r.code, 0, r.stderr);
    tlsPort = await freePort();
    env = await startEnv({
      mutate(conf) {
        conf.listeners.push({ address: '127.0.0.1', port: tlsPort, tls: { cert, key } });
      },
    });
  });
  after(async () => {
    await env?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const body = JSON.stringify({ model: 'test/echo', messages: [{ role: 'user', content: 'over tls' }] });

  test('ALPN negotiates h2 and the API answers', async () => {
    const r = await run('curl', ['-sk', '--http2', '-w', '\n%{http_version}', '-H', 'content-type: application/json', '-d', body,
      `https://127.0.0.1:${tlsPort}/v1/chat/completions`]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.at(-1), '2', 'HTTP/2 via ALPN');
    assert.equal(JSON.parse(lines.slice(0, -1).join('\n')).choices[0].message.content, 'over tls');
  });

  test('HTTP/1.1 over TLS and streaming', async () => {
    const r = await run('curl', ['-skN', '--http1.1', '-w', '\n%{http_version}', '-H', 'content-type: application/json', '-d',
      JSON.stringify({ model: 'test/echo', stream: true, messages: [{ role: 'user', content: 'stream tls' }] }),
      `https://127.0.0.1:${tlsPort}/v1/chat/completions`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /data: \[DONE\]/);
    assert.equal(r.stdout.trim().split('\n').at(-1), '1.1');
  });

  test('cleartext listener keeps working beside the TLS one', async () => {
    const res = await env.chat('test/echo', 'plain');
    assert.equal(res.status, 200, res.text);
  });
});
