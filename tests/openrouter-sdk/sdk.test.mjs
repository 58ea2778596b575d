// SPDX-License-Identifier: MIT
// Real-client test: the official OpenRouter TypeScript SDK (`@openrouter/sdk`, pinned by package-lock.json), which
// validates every response against OpenRouter's published schema, pointed at llmgate + the mock upstream. Every call
// must parse AND carry the right values: chat (stream and not) with provider preferences and models[], models list /
// get / count, endpoints, providers, generation, key, credits, embeddings. A missing npm install FAILS.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe } from 'node:test';
import { startEnv, gwTest, ep, waitFor, assertClose } from '../integration/harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const ADMIN = 'sdk-admin-key-0123456789abcdef';
let env;
let or;
let key;
const test = gwTest(() => env);

describe('official @openrouter/sdk against llmgate', () => {
  before(async () => {
    if (!fs.existsSync(path.join(here, 'node_modules', '@openrouter', 'sdk', 'package.json')))
      throw new Error('tests/openrouter-sdk/node_modules is missing: run `scripts/install-deps.sh --test` (or `npm ci` here)');
    const { OpenRouter } = await import('@openrouter/sdk');
    env = await startEnv({
      models: {
        'test/echo': { name: 'Test Echo', endpoints: [ep('up1', 'echo', '0.000001', '0.000002'), ep('up2', 'echo', '0.000003', '0.000004')] },
        'test/broken': { endpoints: [ep('up1', 'fail-500')] },
        'test/embed': { output_modalities: ['embeddings'], endpoints: [ep('up1', 'embed-echo', '0.0000001', '0')] },
      },
      mutate: (c) => {
        c.store = { path: c.access_log.replace('access.log', 'db.sqlite') };
        c.auth = { admin_key: ADMIN };
      },
    });
    const r = await fetch(env.base + '/api/admin/keys', {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'sdk user', credit_limit: 5 }),
    });
    assert.equal(r.status, 201);
    key = (await r.json()).key;
    or = new OpenRouter({ apiKey: key, serverURL: `${env.base}/api/v1`, retryConfig: { strategy: 'none' } });
  });
  after(async () => {
    await env?.kill();
  });

  test('SDK version is the pinned one', () => {
    const lock = JSON.parse(fs.readFileSync(path.join(here, 'package-lock.json'), 'utf8'));
    const installed = JSON.parse(fs.readFileSync(path.join(here, 'node_modules', '@openrouter', 'sdk', 'package.json'), 'utf8'));
    assert.equal(installed.version, lock.packages['node_modules/@openrouter/sdk'].version);
  });

  let chatId;
  test('chat.send (non-stream) with provider.order and models[]', async () => {
    const r = await or.chat.send({
      chatRequest: {
        model: 'test/broken',
        models: ['test/echo'],
        provider: { order: ['up2'] },
        messages: [{ role: 'user', content: 'hello sdk' }],
      },
    });
    chatId = r.id;
    assert.match(r.id, /^gen-/);
    assert.equal(r.model, 'test/echo', 'models[] fallback served');
    assert.equal(r.choices[0].message.content, 'hello sdk');
    assert.equal(r.choices[0].finishReason, 'stop');
    assert.equal(r.systemFingerprint, null);
    const u = r.usage;
    assertClose(u.costDetails.upstreamInferencePromptCost, u.promptTokens * 0.000003, 'provider.order up2 prices the prompt');
    assertClose(u.costDetails.upstreamInferenceCompletionsCost, u.completionTokens * 0.000004, 'completion cost');
    assertClose(u.cost, u.costDetails.upstreamInferencePromptCost + u.costDetails.upstreamInferenceCompletionsCost, 'cost');
  });

  test('chat.send (stream): every chunk parses, usage and cost in the last one', async () => {
    const stream = await or.chat.send({ chatRequest: { model: 'test/echo', stream: true, messages: [{ role: 'user', content: 'stream me' }] } });
    let text = '';
    let last;
    let finish;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      if (chunk.choices[0]?.finishReason) finish = chunk.choices[0].finishReason;
      last = chunk;
    }
    assert.equal(text, 'stream me');
    assert.equal(finish, 'stop');
    assert.ok(last.usage.promptTokens > 0);
    assert.equal(typeof last.usage.cost, 'number');
    assert.equal(typeof last.usage.costDetails.upstreamInferencePromptCost, 'number');
  });

  test('X-OpenRouter-Metadata: enabled -> openrouterMetadata parses (non-stream and the stream\'s first chunk)', async () => {
    const r = await or.chat.send({
      xOpenRouterMetadata: 'enabled',
      chatRequest: { model: 'test/broken', models: ['test/echo'], messages: [{ role: 'user', content: 'trace me' }] },
    });
    const m = r.openrouterMetadata;
    assert.ok(m, 'metadata present');
    assert.equal(m.requested, 'test/broken');
    assert.equal(m.strategy, 'fallback');
    assert.equal(m.isByok, false);
    assert.ok(m.attempt >= 2, `attempt ${m.attempt}`);
    assert.equal(m.attempts[0].status, 500);
    assert.equal(m.attempts.at(-1).status, 200);
    assert.equal(m.endpoints.total, m.endpoints.available.length);
    assert.equal(m.endpoints.available.filter((e) => e.selected).length, 1);
    assert.equal(m.endpoints.available.find((e) => e.selected).model, 'test/echo');
    assert.equal(typeof m.summary, 'string');
    const stream = await or.chat.send({
      xOpenRouterMetadata: 'enabled',
      chatRequest: { model: 'test/echo', stream: true, messages: [{ role: 'user', content: 'trace stream' }] },
    });
    let first;
    let text = '';
    for await (const chunk of stream) {
      first ??= chunk;
      text += chunk.choices[0]?.delta?.content ?? '';
    }
    assert.equal(text, 'trace stream');
    assert.ok(first.openrouterMetadata, 'the first chunk carries the metadata');
    assert.equal(first.openrouterMetadata.requested, 'test/echo');
    assert.deepEqual(first.choices, []);
  });

  test('models.list, models.get, models.count', async () => {
    const list = (await or.models.list()).result; // a paged response: the page is in .result
    const ids = list.data.map((m) => m.id).sort();
    assert.deepEqual(ids, ['test/broken', 'test/echo'], 'default list is text models');
    assert.equal(list.totalCount, 2);
    const echo = list.data.find((m) => m.id === 'test/echo');
    assert.equal(echo.pricing.prompt, '0.000001');
    const one = await or.models.get({ author: 'test', slug: 'echo' });
    assert.equal(one.data.name, 'Test Echo');
    const count = await or.models.count();
    assert.equal(count.data.count, 2);
  });

  test('endpoints.list and providers.list', async () => {
    const e = await or.endpoints.list({ author: 'test', slug: 'echo' });
    assert.deepEqual(e.data.endpoints.map((x) => x.providerName).sort(), ['up1', 'up2']);
    assert.equal(e.data.endpoints[0].modelId, 'test/echo');
    const p = await or.providers.list();
    assert.ok(p.data.some((x) => x.slug === 'up1'));
  });

  test('generations.getGeneration of the fallback request', async () => {
    const g = await waitFor(async () => {
      try {
        return await or.generations.getGeneration({ id: chatId });
      } catch {
        return null;
      }
    }, 5000);
    assert.ok(g, 'generation row committed');
    assert.equal(g.data.id, chatId);
    assert.equal(g.data.model, 'test/echo');
    assert.equal(g.data.providerName, 'up2');
    assert.equal(g.data.apiType, 'completions');
    assert.ok(g.data.providerResponses.length >= 2, 'the failed attempt is in the trail');
  });

  test('apiKeys.getCurrentKeyMetadata and credits.getCredits', async () => {
    const k = await or.apiKeys.getCurrentKeyMetadata();
    assert.equal(k.data.label, 'sdk user');
    assert.equal(k.data.limit, 5);
    const c = await or.credits.getCredits();
    assert.ok(c.data.totalUsage > 0);
    assertClose(c.data.totalCredits, 5, 'the key limit');
    assert.ok(c.data.totalUsage <= 5);
  });

  test('embeddings.generate is billed', async () => {
    const r = await or.embeddings.generate({ requestBody: { model: 'test/embed', input: 'embed these words please' } });
    assert.equal(r.data.length, 1);
    assert.ok(r.usage.promptTokens > 0);
    assertClose(r.usage.cost, r.usage.promptTokens * 0.0000001, 'embedding cost');
  });
});
