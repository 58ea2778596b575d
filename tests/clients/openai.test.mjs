// SPDX-License-Identifier: MIT
// Real-client tests: the official `openai` npm SDK (pinned by package-lock.json) against a running llmgate + mock upstream.
// Needs tests/clients/node_modules (scripts/install-deps.sh --test runs `npm ci` here). A missing install FAILS.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe } from 'node:test';
import { startEnv, gwTest, ep } from '../integration/harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
let OpenAI;
let env;
let client;
const test = gwTest(() => env);

describe('official openai SDK against llmgate', () => {
  before(async () => {
    if (!fs.existsSync(path.join(here, 'node_modules', 'openai', 'package.json')))
      throw new Error(
        'tests/clients/node_modules/openai is missing: run `scripts/install-deps.sh --test` ' +
          '(or `npm ci` in tests/clients) before the real-client tests',
      );
    OpenAI = (await import('openai')).default;
    env = await startEnv({
      models: {
        'test/echo': { name: 'Test Echo', endpoints: [ep('up1', 'echo', '0.000001', '0.000002')] },
        'test/embed': { endpoints: [ep('up1', 'embed-echo', '0.0000001', '0')] },
        'test/delay': { endpoints: [ep('up1', 'delay-700')] },
        'test/resetmid': { endpoints: [ep('up1', 'words-10+reset-mid')] },
        'test/m-a': { endpoints: [ep('up1', 'fail-500+ma')] },
        'test/m-b': { endpoints: [ep('up2', 'echo+mb')] },
      },
    });
    client = new OpenAI({ baseURL: `${env.base}/v1`, apiKey: 'anything', maxRetries: 0, timeout: 30000 });
  });
  after(async () => {
    await env?.kill();
  });

  test('SDK version is the pinned one', () => {
    const lock = JSON.parse(fs.readFileSync(path.join(here, 'package-lock.json'), 'utf8'));
    const installed = JSON.parse(fs.readFileSync(path.join(here, 'node_modules', 'openai', 'package.json'), 'utf8'));
    assert.equal(installed.version, lock.packages['node_modules/openai'].version, 'node_modules matches the lockfile');
  });

  test('chat.completions.create (non-stream)', async () => {
    const { data: r, response } = await client.chat.completions
      .create({ model: 'test/echo', messages: [{ role: 'user', content: 'hi from the sdk' }] })
      .withResponse();
    assert.match(r.id, /^gen-/);
    assert.equal(response.headers.get('x-generation-id'), r.id);
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.model, 'test/echo');
    assert.equal(r.choices[0].message.content, 'hi from the sdk');
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.equal(r.usage.prompt_tokens, 4);
    assert.equal(r.usage.completion_tokens, 4);
    assert.equal(typeof r.usage.cost, 'number');
    assert.equal(r.provider, 'up1');
  });

  test('chat.completions.create (stream) assembles the text; usage in the last chunk', async () => {
    const stream = await client.chat.completions.create({
      model: 'test/echo',
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'stream this back to me' }],
    });
    let text = '';
    const chunks = [];
    for await (const c of stream) {
      chunks.push(c);
      text += c.choices[0]?.delta?.content ?? '';
    }
    assert.equal(text, 'stream this back to me');
    assert.equal(chunks[0].choices[0].delta.role, 'assistant');
    const last = chunks[chunks.length - 1];
    assert.deepEqual(last.choices, []);
    assert.equal(last.usage.completion_tokens, 5);
    assert.equal(typeof last.usage.cost, 'number');
  });

  test('stream with a slow first token (keep-alive comments) parses cleanly', async () => {
    const stream = await client.chat.completions.create({
      model: 'test/delay',
      stream: true,
      messages: [{ role: 'user', content: 'after a pause' }],
    });
    let text = '';
    for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
    assert.equal(text, 'after a pause');
  });

  test('mid-stream upstream failure surfaces as an APIError during iteration', async () => {
    const stream = await client.chat.completions.create({
      model: 'test/resetmid',
      stream: true,
      messages: [{ role: 'user', content: 'x' }],
    });
    let text = '';
    await assert.rejects(
      (async () => {
        for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
      })(),
      (e) => e instanceof OpenAI.APIError,
    );
    assert.match(text, /^w1/);
  });

  test('embeddings.create', async () => {
    const r = await client.embeddings.create({ model: 'test/embed', input: ['one two', 'three'], encoding_format: 'float' });
    assert.equal(r.data.length, 2);
    for (const d of r.data) {
      assert.equal(d.embedding.length, 8);
      assert.ok(d.embedding.every((x) => typeof x === 'number' && x >= -1 && x <= 1));
    }
    assert.equal(r.usage.prompt_tokens, 3);
  });

  test('models.list (auto-paginating iterator)', async () => {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    for (const id of ['test/echo', 'test/embed', 'test/m-a', 'test/m-b']) assert.ok(ids.includes(id), `${id} in ${ids}`);
  });

  test('unknown model -> APIError (BadRequestError) with status 400', async () => {
    await assert.rejects(
      client.chat.completions.create({ model: 'nope/unknown', messages: [{ role: 'user', content: 'x' }] }),
      (e) => {
        assert.ok(e instanceof OpenAI.APIError, `APIError expected, got ${e?.constructor?.name}`);
        assert.ok(e instanceof OpenAI.BadRequestError);
        assert.equal(e.status, 400);
        assert.equal(e.error?.code, 400);
        assert.equal(typeof e.error?.message, 'string');
        return true;
      },
    );
  });

  test('extra_body-style routing: models:[a, b] in the body falls back to b', async () => {
    const r = await client.chat.completions.create({
      model: 'test/m-a',
      messages: [{ role: 'user', content: 'fallback via sdk' }],
      models: ['test/m-a', 'test/m-b'],
      provider: { allow_fallbacks: true },
    });
    assert.equal(r.model, 'test/m-b');
    assert.equal(r.choices[0].message.content, 'fallback via sdk');
  });

  test('gateway exits 0 on SIGTERM', async () => {
    await env.stop();
  });
});
