// SPDX-License-Identifier: MIT
// The catalog routes in OpenRouter's schema (openrouter-api.md §6–§8): /models filters and pagination envelope,
// /models/count, one model for OpenRouter's SDK (/model/{author}/{slug}) and the OpenAI SDK (/models/{author}/{slug}),
// endpoints, providers, credits, bad query parameters → 400 naming the parameter, and a price on embeddings.
import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import { startEnv, gwTest, ep, assertError, assertClose } from './harness.mjs';

let env;
const test = gwTest(() => env);
const ADMIN = 'catalog-admin-key-0123456789';

describe('catalog routes', () => {
  before(async () => {
    env = await startEnv({
      models: {
        'test/echo': {
          name: 'Test Echo',
          description: 'echoes the prompt',
          created: 1700000000,
          context_length: 8192,
          supported_parameters: ['temperature', 'tools', 'tool_choice'],
          endpoints: [ep('up1', 'echo', '0.000001', '0.000002'), ep('up2', 'echo', '0.000003', '0.000004')],
        },
        'alpha/big': {
          name: 'Alpha Big',
          created: 1750000000,
          context_length: 200000,
          input_modalities: ['text', 'image'],
          output_modalities: ['text'],
          endpoints: [
            ep('up2', 'echo', '0.00001', '0.00003', {
              max_completion_tokens: 4096,
              pricing: { prompt: '0.00001', completion: '0.00003', input_cache_write: '0.0000125', input_cache_write_1h: '0.00002' },
            }),
          ],
        },
        'alpha/embed': {
          output_modalities: ['embeddings'],
          endpoints: [ep('up1', 'embed-echo', '0.0000001', '0', { pricing: { prompt: '0.0000001', completion: '0', request: '0.0001' } })],
        },
      },
      mutate: (c) => {
        c.store = { path: c.access_log.replace('access.log', 'db.sqlite') };
        c.auth = { admin_key: ADMIN };
      },
    });
  });
  after(async () => {
    await env?.kill();
  });

  const get = async (p, headers = {}) => {
    const r = await fetch(env.base + p, { headers });
    const text = await r.text();
    let json;
    try {
      json = JSON.parse(text);
    } catch {}
    return { status: r.status, headers: r.headers, text, json };
  };

  test('GET /models: envelope, OpenRouter Model members, text models by default', async () => {
    const r = await get('/api/v1/models');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.total_count, 2, 'embeddings-only models are not in the default (text) list');
    assert.equal(r.json.links.next, null);
    assert.deepEqual(r.json.data.map((m) => m.id).sort(), ['alpha/big', 'test/echo']);
    const m = r.json.data.find((x) => x.id === 'test/echo');
    for (const k of ['canonical_slug', 'name', 'created', 'pricing', 'context_length', 'architecture', 'top_provider',
      'per_request_limits', 'supported_parameters', 'default_parameters', 'supported_voices', 'links'])
      assert.ok(k in m, `Model.${k} present`);
    assert.equal(m.supported_voices, null);
    assert.equal(m.pricing.prompt, '0.000001', 'the cheapest endpoint prices the listing');
    assert.equal(m.context_length, 8192);
    assert.equal(m.links.details, '/api/v1/models/test/echo/endpoints');
  });

  test('GET /models filters: output_modalities, supported_parameters, q, context, prices, providers, authors', async () => {
    const ids = async (q) => {
      const r = await get('/v1/models?' + q);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.total_count, r.json.data.length);
      return r.json.data.map((m) => m.id).sort();
    };
    assert.deepEqual(await ids('output_modalities=embeddings'), ['alpha/embed']);
    assert.ok((await ids('output_modalities=all')).includes('alpha/embed'));
    assert.deepEqual(await ids('output_modalities=text,embeddings&model_authors=alpha'), ['alpha/big', 'alpha/embed']);
    assert.deepEqual(await ids('supported_parameters=tools,tool_choice'), ['test/echo']);
    assert.deepEqual(await ids('q=ECHOES'), ['test/echo'], 'q searches the description, case-insensitively');
    assert.deepEqual(await ids('context=100000'), ['alpha/big']);
    assert.deepEqual(await ids('min_price=5&model_authors=alpha,test'), ['alpha/big'], '$/M prompt price');
    assert.deepEqual(await ids('max_output_price=2.5&model_authors=test'), ['test/echo']);
    assert.deepEqual(await ids('providers=up2&model_authors=alpha,test'), ['alpha/big', 'test/echo']);
    assert.deepEqual(await ids('input_modalities=image&model_authors=alpha'), ['alpha/big']);
    assert.deepEqual(await ids('unknown_filter=1&model_authors=test'), ['test/echo'], 'unknown filters are ignored');
    const newest = await get('/v1/models?sort=newest&model_authors=alpha,test');
    assert.deepEqual(newest.json.data.map((m) => m.id), ['alpha/big', 'test/echo']);
  });

  test('GET /models pagination: offset/limit, total_count, links.next keeps the query', async () => {
    const p1 = await get('/v1/models?output_modalities=all&limit=2');
    assert.equal(p1.json.total_count, 3);
    assert.equal(p1.json.data.length, 2);
    assert.equal(p1.json.links.next, '/v1/models?output_modalities=all&limit=2&offset=2');
    const p2 = await get(p1.json.links.next);
    assert.equal(p2.json.data.length, 1);
    assert.equal(p2.json.links.next, null);
    const all = [...p1.json.data, ...p2.json.data].map((m) => m.id);
    assert.equal(new Set(all).size, 3, 'pages do not overlap');
    const count = await get('/v1/models/count?output_modalities=all');
    assert.deepEqual(count.json, { data: { count: 3 } });
  });

  test('GET /models bad query parameters → 400 naming the parameter', async () => {
    for (const [q, name] of [
      ['limit=0', 'limit'],
      ['limit=5000', 'limit'],
      ['offset=-1', 'offset'],
      ['limit=abc', 'limit'],
      ['context=1.5', 'context'],
      ['sort=random', 'sort'],
      ['min_price=x', 'min_price'],
      ['q=%zz', 'q'],
      [`supported_parameters=${Array.from({ length: 40 }, (_, i) => 'p' + i).join(',')}`, 'supported_parameters'],
    ]) {
      const r = await get('/v1/models?' + q);
      assertError(r, 400, { type: 'invalid_request', mentions: name });
    }
  });

  test('one model: OpenRouter /model/{author}/{slug} and the OpenAI SDK /models/{author}/{slug}', async () => {
    const or = await get('/api/v1/model/alpha/big');
    assert.equal(or.status, 200, or.text);
    assert.equal(or.json.data.id, 'alpha/big');
    assert.equal(or.json.data.top_provider.max_completion_tokens, 4096);
    assert.equal(or.json.data.pricing.input_cache_write, '0.0000125');
    assert.equal(or.json.data.pricing.input_cache_write_1h, '0.00002');
    const variant = await get('/api/v1/model/alpha/big:nitro');
    assert.equal(variant.json.data.id, 'alpha/big', 'variant suffixes resolve to the base model');
    const oa = await get('/v1/models/alpha/big');
    assert.equal(oa.json.id, 'alpha/big');
    assert.equal(oa.json.object, 'model');
    assert.equal(oa.json.owned_by, 'alpha');
    assertError(await get('/v1/models/no/such'), 404, { mentions: 'no/such' });
    assertError(await get('/v1/model/no/such'), 404);
  });

  test('endpoints: every PublicEndpoint member, null where there is no value', async () => {
    const r = await get('/v1/models/test/echo/endpoints');
    assert.equal(r.status, 200, r.text);
    const d = r.json.data;
    assert.equal(d.id, 'test/echo');
    assert.equal(d.created, 1700000000);
    assert.equal(d.description, 'echoes the prompt');
    assert.ok(d.architecture.input_modalities.includes('text'));
    assert.equal(d.endpoints.length, 2);
    const e = d.endpoints.find((x) => x.provider_name === 'up2');
    assert.equal(e.model_id, 'test/echo');
    assert.equal(e.model_name, 'Test Echo');
    assert.equal(e.tag, 'up2');
    assert.equal(e.pricing.prompt, '0.000003');
    assert.equal(e.quantization, null);
    assert.equal(e.context_length, 8192);
    assert.deepEqual(e.supports_tool_choice, { auto: true, function: true, none: true, required: true });
    for (const k of ['uptime_last_5m', 'uptime_last_30m', 'uptime_last_1d', 'latency_last_30m', 'throughput_last_30m', 'max_completion_tokens'])
      assert.equal(e[k], null, `${k} is null without data`);
  });

  test('embeddings are billed per token and per request, with cost_details', async () => {
    const r = await fetch(env.base + '/v1/embeddings', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'alpha/embed', input: 'one two three four five six seven eight' }),
    });
    const j = await r.json();
    assert.equal(r.status, 200, JSON.stringify(j));
    const u = j.usage;
    assert.ok(u.prompt_tokens > 0);
    const expected = u.prompt_tokens * 0.0000001 + 0.0001;
    assertClose(u.cost, expected, 'embedding cost');
    assertClose(u.cost_details.upstream_inference_prompt_cost, expected, 'prompt cost');
    assert.equal(u.cost_details.upstream_inference_completions_cost, 0);
  });

  test('chat: system_fingerprint and the cost split', async () => {
    const r = await fetch(env.base + '/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'test/echo', provider: { order: ['up2'] }, messages: [{ role: 'user', content: 'cost me' }] }),
    });
    const j = await r.json();
    assert.equal(r.status, 200, JSON.stringify(j));
    assert.ok('system_fingerprint' in j);
    const u = j.usage;
    assertClose(u.cost_details.upstream_inference_prompt_cost, u.prompt_tokens * 0.000003, 'prompt part');
    assertClose(u.cost_details.upstream_inference_completions_cost, u.completion_tokens * 0.000004, 'completion part');
    assertClose(u.cost, u.prompt_tokens * 0.000003 + u.completion_tokens * 0.000004, 'total');
  });
  // last: creating the first key closes the open gateway
  test('providers and credits', async () => {
    const p = await get('/api/v1/providers');
    assert.equal(p.status, 200);
    const up1 = p.json.data.find((x) => x.slug === 'up1');
    assert.deepEqual(up1, {
      name: 'up1', slug: 'up1', privacy_policy_url: null, terms_of_service_url: null, status_page_url: null,
      headquarters: null, datacenters: null,
    });
    const mk = await fetch(env.base + '/api/admin/keys', {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'credits', credit_limit: 2 }),
    });
    const key = (await mk.json()).key;
    const c = await get('/api/v1/credits', { authorization: `Bearer ${key}` });
    assert.equal(c.status, 200, c.text);
    assert.deepEqual(c.json, { data: { total_credits: 2, total_usage: 0 } });
    assertError(await get('/api/v1/credits'), 401);
  });

});
