// SPDX-License-Identifier: MIT
// The Anthropic skin (POST /v1/messages) on its error paths, end to end: every refusal in Anthropic's error shape
// ({"type":"error","error":{"type","message"}}), x-api-key accepted like Bearer, overload as 529 overloaded_error,
// a failure after the first content as an `event: error` (never a normal message_stop), and keep-alive as `event: ping`
// (never SSE comments) while waiting for the first token.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import { startEnv, gwTest, ep, run, GATEWAY_BIN } from './harness.mjs';

let env, key, dir;
const test = gwTest(() => env);

async function messages(body, headers = {}) {
  const res = await fetch(env.base + '/v1/messages', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', 'x-api-key': key, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: res.status, text, json, headers: res.headers };
}

function anthropicError(r, status, types) {
  assert.equal(r.status, status, r.text);
  assert.equal(r.json.type, 'error', r.text);
  assert.ok(types.includes(r.json.error.type), `error.type ${r.json.error.type} not in ${types}`);
  assert.equal(typeof r.json.error.message, 'string');
  return r.json.error;
}

/** SSE text → [{event, data}] */
function events(text) {
  return text
    .split(/\n\n/)
    .filter((b) => b.trim() !== '')
    .map((b) => {
      const ev = /^event: (.*)$/m.exec(b)?.[1];
      const data = /^data: (.*)$/m.exec(b)?.[1];
      return { event: ev, data: data ? JSON.parse(data) : null, raw: b };
    });
}

const msg = (model, extra = {}) => ({ model, max_tokens: 64, messages: [{ role: 'user', content: 'hello there world' }], ...extra });

describe('/v1/messages error paths', () => {
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmgate-msg-'));
    const db = path.join(dir, 'keys.db');
    const made = await run(GATEWAY_BIN, ['keys', 'create', '--db', db, '--name', 'messages-test', '--json']);
    assert.equal(made.code, 0, made.stderr);
    key = JSON.parse(made.stdout).key;
    env = await startEnv({
      limits: { max_body_bytes: 65536 },
      models: {
        'test/overload': { endpoints: [ep('up1', 'fail-503'), ep('up2', 'fail-503')] },
        'test/midfail': { endpoints: [ep('up1', 'reset-mid')] },
        'test/slowfirst': { endpoints: [ep('up1', 'delay-1200+echo')] },
      },
      mutate(conf) {
        conf.store = { path: db };
      },
    });
  });
  after(async () => {
    await env?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('x-api-key works like Bearer; a bad or missing key is 401 authentication_error', async () => {
    const ok = await messages(msg('test/echo'));
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.type, 'message');
    anthropicError(await messages(msg('test/echo'), { 'x-api-key': 'sk-lg-wrong' }), 401, ['authentication_error']);
    anthropicError(await messages(msg('test/echo'), { 'x-api-key': '' }), 401, ['authentication_error']);
  });

  test('invalid requests are 400 invalid_request_error naming the field', async () => {
    let e = anthropicError(await messages('{not json'), 400, ['invalid_request_error']);
    assert.match(e.message, /JSON/i);
    e = anthropicError(await messages({ model: 'test/echo', messages: [{ role: 'user', content: 'x' }] }), 400, ['invalid_request_error']);
    assert.match(e.message, /max_tokens/);
    e = anthropicError(await messages(msg('test/echo', { messages: [{ role: 'robot', content: 'x' }] })), 400, ['invalid_request_error']);
    assert.match(e.message, /messages\[0\]\.role/);
    e = anthropicError(await messages(msg('nope/unknown')), 400, ['invalid_request_error', 'not_found_error']);
    assert.match(e.message, /nope\/unknown/);
  });

  test('a body over the limit is 413 in the Anthropic shape', async () => {
    const big = msg('test/echo', { messages: [{ role: 'user', content: 'x'.repeat(100000) }] });
    anthropicError(await messages(big), 413, ['request_too_large', 'invalid_request_error']);
  });

  test('every provider overloaded → 529 overloaded_error', async () => {
    anthropicError(await messages(msg('test/overload')), 529, ['overloaded_error']);
  });

  test('failure after the first content: content blocks, then event: error — no message_stop', async () => {
    const r = await messages(msg('test/midfail', { stream: true }));
    assert.equal(r.status, 200);
    const evs = events(r.text);
    const names = evs.map((e) => e.event);
    assert.equal(names[0], 'message_start');
    assert.ok(names.includes('content_block_delta'), names.join(','));
    assert.equal(names.at(-1), 'error', names.join(','));
    assert.equal(evs.at(-1).data.type, 'error');
    assert.ok(!names.includes('message_stop'), names.join(','));
  });

  test('while waiting for the first token the stream sends ping events, never SSE comments', async () => {
    const r = await messages(msg('test/slowfirst', { stream: true }));
    assert.equal(r.status, 200);
    const evs = events(r.text);
    const names = evs.map((e) => e.event);
    assert.ok(names.indexOf('ping') > 0 && names.indexOf('ping') < names.indexOf('content_block_delta'), names.join(','));
    assert.ok(!r.text.split('\n').some((l) => l.startsWith(':')), 'no comment lines on the Anthropic skin');
    assert.equal(names.at(-1), 'message_stop');
    const text = evs.filter((e) => e.event === 'content_block_delta').map((e) => e.data.delta.text).join('');
    assert.equal(text, 'hello there world');
  });
});
