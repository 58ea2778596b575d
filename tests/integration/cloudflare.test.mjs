// SPDX-License-Identifier: MIT
// Cloudflare in both roles (issue 9, item 5).
// 1. Workers AI as a provider: the shipped preset examples/cloudflare-workers-ai.json, loaded as it is with only its
//    base_url host pointed at the mock's Workers AI routes (/client/v4/accounts/{id}/ai/v1, Bearer token checked):
//    chat, stream, embeddings with `@cf/...` upstream ids, every error class in Cloudflare's v4 envelope, and
//    fallback from a Cloudflare error to another provider.
// 2. llmgate behind Cloudflare AI Gateway (custom provider / OpenAI-compatible "compat" endpoint): the request AI
//    Gateway sends (an OpenAI chat body, `Authorization: Bearer <llmgate key>`, cf-aig-* and cf-* headers) is
//    answered; no cf-aig-* header reaches the upstream; the cf-aig-authorization secret is echoed nowhere.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEnv, gwTest, assertError, assertClose, expectedCost, deltaText, httpGet, run, GATEWAY_BIN, TIMEOUTS } from './harness.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const PRESET = JSON.parse(fs.readFileSync(path.join(ROOT, 'examples', 'cloudflare-workers-ai.json'), 'utf8'));
const ACCOUNT = '0123456789abcdef0123456789abcdef';
const CF_TOKEN = 'cf-token-' + Math.random().toString(36).slice(2);
const CF_MODEL = '@cf/meta/llama-3.1-8b-instruct';

/** The preset's providers and models, with the Workers AI base_url (and OpenRouter's) pointed at the mock. */
function applyPreset(conf, mockBase) {
  for (const p of PRESET.providers) {
    const q = structuredClone(p);
    if (q.name === 'cloudflare') {
      assert.match(q.base_url, /^https:\/\/api\.cloudflare\.com\/client\/v4\/accounts\/[^/]+\/ai\/v1$/);
      q.base_url = `${mockBase}/client/v4/accounts/${ACCOUNT}/ai/v1`;
    } else {
      q.base_url = `${mockBase}/v1`;
    }
    q.timeouts = { ...TIMEOUTS };
    conf.providers.push(q);
  }
  Object.assign(conf.models, structuredClone(PRESET.models));
}

describe('Cloudflare Workers AI preset', () => {
  let env;
  const test = gwTest(() => env);
  const statuses = [400, 401, 403, 404, 408, 413, 429, 500, 503];

  before(async () => {
    env = await startEnv({
      mockArgs: ['--cloudflare-token', CF_TOKEN],
      env: { CLOUDFLARE_API_TOKEN: CF_TOKEN, OPENROUTER_API_KEY: 'or-key' },
      mutate(conf) {
        const mockBase = conf.providers[0].base_url.replace(/\/v1$/, '');
        applyPreset(conf, mockBase);
        const cf = conf.providers.find((p) => p.name === 'cloudflare');
        // the same account with a token Cloudflare does not know
        conf.providers.push({ ...cf, name: 'cloudflare-badtoken', api_key_env: undefined, api_key: 'not-the-token' });
        conf.providers.push({ ...cf, name: 'cloudflare-badaccount', base_url: `${mockBase}/client/v4/accounts/nope/ai/v1` });
        conf.providers.push({ ...cf, name: 'cloudflare-raw', options: { max_tokens_field: 'max_tokens' } });
        conf.models['cf/numeric'] = { endpoints: [{ provider: 'cloudflare', model: `${CF_MODEL}+cf-numeric` }] };
        conf.models['cf/numeric-raw'] = { endpoints: [{ provider: 'cloudflare-raw', model: `${CF_MODEL}+cf-numeric` }] };
        conf.models['cf/badtoken'] = { endpoints: [{ provider: 'cloudflare-badtoken', model: CF_MODEL }] };
        conf.models['cf/badaccount'] = { endpoints: [{ provider: 'cloudflare-badaccount', model: CF_MODEL }] };
        for (const s of statuses) {
          conf.models[`cf/err-${s}`] = { endpoints: [{ provider: 'cloudflare', model: `${CF_MODEL}+cf-error-${s}` }] };
          conf.models[`cf/fallback-${s}`] = {
            endpoints: [
              { provider: 'cloudflare', model: `${CF_MODEL}+cf-error-${s}`, pricing: { prompt: '0.000001' } },
              { provider: 'openrouter', model: `meta-llama/llama-3.1-8b-instruct+fb-${s}`, pricing: { prompt: '0.000002' } },
            ],
          };
        }
      },
    });
  });
  after(async () => env && (await env.stop()));

  test('the preset is a valid config on its own (llmgate --check-config)', async () => {
    const r = await run(GATEWAY_BIN, ['--check-config', path.join(ROOT, 'examples', 'cloudflare-workers-ai.json')]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });

  test('chat: catalog id -> @cf/ upstream id, Bearer token, priced at the preset rates', async () => {
    await env.mockReset();
    const r = await env.chat('cloudflare/llama-3.1-8b', 'hello from workers ai', { max_completion_tokens: 64 });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.model, 'cloudflare/llama-3.1-8b');
    assert.equal(r.json.choices[0].message.content, 'hello from workers ai');
    const ep = PRESET.models['cloudflare/llama-3.1-8b'].endpoints[0];
    assertClose(r.json.usage.cost, expectedCost(r.json.usage, ep.pricing.prompt, ep.pricing.completion), 'cost');
    const last = await env.mockLast(CF_MODEL);
    assert.ok(last, 'the mock saw the @cf/ model id exactly');
    assert.equal(last.body.model, CF_MODEL);
    assert.equal(last.headers.authorization, `Bearer ${CF_TOKEN}`);
    // the preset's max_tokens_field: Workers AI takes max_tokens
    assert.equal(last.body.max_tokens, 64);
    assert.equal(last.body.max_completion_tokens, undefined);
  });

  test('stream: SSE through the Workers AI route, usage requested and billed', async () => {
    await env.mockReset();
    const r = await env.chatStream('cloudflare/llama-3.1-8b', 'one two three four');
    assert.equal(r.status, 200, r.raw);
    assert.equal(deltaText(r.chunks), 'one two three four');
    const usage = r.chunks.filter((c) => c.usage).pop()?.usage;
    assert.ok(usage && usage.completion_tokens === 4, JSON.stringify(usage));
    assert.ok(r.chunks.every((c) => c.model === 'cloudflare/llama-3.1-8b'));
    const last = await env.mockLast(CF_MODEL);
    assert.equal(last.body.stream, true);
    assert.equal(last.body.stream_options?.include_usage, true);
  });

  test('stream: a numeric token sent as a JSON number keeps its text (coerce_numeric_content)', async () => {
    const r = await env.chatStream('cf/numeric', 'the answer is 42');
    assert.equal(r.status, 200, r.raw);
    assert.equal(deltaText(r.chunks), 'the answer is 42');
    assert.ok(!r.raw.includes('"error"'), r.raw);
    // the same stream without the option is a broken chunk: the attempt fails, never a silently lost "42"
    const bad = await env.chatStream('cf/numeric-raw', 'the answer is 42');
    assert.ok(!deltaText(bad.chunks || []).endsWith('42'), bad.raw);
    assert.ok(bad.status !== 200 || bad.raw.includes('"error"'), bad.raw);
  });

  test('embeddings: @cf/baai/bge-large-en-v1.5', async () => {
    await env.mockReset();
    const r = await env.post('/v1/embeddings', { model: 'cloudflare/bge-large-en-v1.5', input: ['alpha beta', 'gamma'] });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.model, 'cloudflare/bge-large-en-v1.5');
    assert.equal(r.json.data.length, 2);
    assert.equal(r.json.data[0].embedding.length, 8);
    const last = await env.mockLast('@cf/baai/bge-large-en-v1.5');
    assert.deepEqual(last.body.input, ['alpha beta', 'gamma']);
    assert.equal(last.headers.authorization, `Bearer ${CF_TOKEN}`);
  });

  // status Cloudflare answers -> what the client gets (status, error type); the v4 message is carried through
  const expected = {
    400: [400, 'invalid_request', 'No such model'],
    401: [502, 'provider_unavailable', 'Authentication error'],
    403: [502, 'provider_unavailable', 'Service unavailable for account'],
    404: [404, 'invalid_request', 'The model name is invalid'],
    408: [502, 'timeout', 'Request timeout'], // "All providers failed": a 408 is the provider's, not the gateway's, timeout
    413: [413, 'payload_too_large', 'Request is too large'],
    429: [429, 'rate_limit_exceeded', 'Capacity temporarily exceeded'],
    500: [502, 'provider_unavailable', 'Internal server error'],
    503: [503, 'provider_overloaded', 'Internal server error'],
  };
  for (const s of statuses) {
    test(`v4 envelope ${s} -> HTTP ${expected[s][0]} ${expected[s][1]}`, async () => {
      const r = await env.chat(`cf/err-${s}`, 'hi');
      const e = assertError(r, expected[s][0], { type: expected[s][1] });
      assert.ok(r.text.includes(expected[s][2]), `the Cloudflare message reaches the client: ${r.text}`);
    });
  }

  test('a wrong token is Cloudflare 10000 -> 502, and the token is not echoed', async () => {
    const r = await env.chat('cf/badtoken', 'hi');
    assertError(r, 502, { type: 'provider_unavailable' });
    assert.ok(r.text.includes('Authentication error'), r.text);
    assert.ok(!r.text.includes('not-the-token'), r.text);
  });

  test('a wrong account id (7003) is a provider failure, not the client\'s bad request', async () => {
    const r = await env.chat('cf/badaccount', 'hi');
    assertError(r, 502, { type: 'provider_unavailable' });
    assert.ok(r.text.includes('perhaps your object identifier is invalid'), r.text);
  });

  // which Cloudflare failures fall over to the next provider (the client asked for Cloudflare first)
  const fallsOver = { 400: true, 401: true, 403: true, 404: true, 408: true, 413: false, 429: true, 500: true, 503: true };
  for (const s of statuses) {
    test(`fallback: Cloudflare ${s} ${fallsOver[s] ? '->' : 'does not fall over to'} OpenRouter`, async () => {
      await env.mockReset();
      const r = await env.chat(`cf/fallback-${s}`, 'fall over please', { provider: { order: ['cloudflare'] } });
      const cfCalls = await env.mockCount(`${CF_MODEL}+cf-error-${s}`);
      const orCalls = await env.mockCount(`meta-llama/llama-3.1-8b-instruct+fb-${s}`);
      assert.ok(cfCalls >= 1, 'Cloudflare was tried first');
      if (fallsOver[s]) {
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.choices[0].message.content, 'fall over please');
        assert.equal(r.json.provider, 'openrouter');
        assert.equal(orCalls, 1);
      } else {
        assert.equal(r.status, expected[s][0], r.text);
        assert.equal(orCalls, 0);
      }
    });
  }

  test('the preset fallback model (Workers AI or OpenRouter) routes with provider.order', async () => {
    await env.mockReset();
    for (const order of [['cloudflare'], ['openrouter']]) {
      const r = await env.chat('meta-llama/llama-3.1-8b-instruct', 'ordered', { provider: { order, allow_fallbacks: false } });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.provider, order[0]);
    }
    assert.equal(await env.mockCount(CF_MODEL), 1);
    assert.equal(await env.mockCount('meta-llama/llama-3.1-8b-instruct'), 1);
  });
});

describe('llmgate behind Cloudflare AI Gateway', () => {
  let env;
  let key;
  const test = gwTest(() => env);
  const ADMIN = 'adm-' + Math.random().toString(36).slice(2);
  const AIG_SECRET = 'cfut_' + Math.random().toString(36).slice(2) + 'SECRETaig';

  before(async () => {
    env = await startEnv({
      mutate(conf) {
        conf.auth = { admin_key: ADMIN, require_keys: true };
        conf.log_level = 'debug';
        conf.models['openai/gpt-4o-mini'] = { endpoints: [{ provider: 'up1', model: 'aig-echo' }] };
      },
    });
    const r = await env.post('/api/admin/keys', { name: 'ai gateway' }, { authorization: `Bearer ${ADMIN}` });
    assert.equal(r.status, 201, r.text);
    key = r.json.key;
  });
  after(async () => env && (await env.stop()));

  /** What AI Gateway's custom provider / compat endpoint sends upstream to llmgate. */
  const aigHeaders = () => ({
    authorization: `Bearer ${key}`,
    'content-type': 'application/json',
    'cf-aig-authorization': `Bearer ${AIG_SECRET}`,
    'cf-aig-cache-ttl': '3600',
    'cf-aig-skip-cache': 'true',
    'cf-aig-metadata': JSON.stringify({ user: 'u-42', team: 'search', secret_hint: AIG_SECRET }),
    'cf-aig-request-timeout': '20000',
    'cf-aig-max-attempts': '2',
    'cf-aig-event-id': '0f4c2b0e-8b7e-4c39-9d5c-6c8b1e3e5f10',
    'cf-aig-collect-log': 'true',
    'cf-aig-custom-cost': JSON.stringify({ per_token_in: 0.000001, per_token_out: 0.000002 }),
    'cf-ray': '8f1e2d3c4b5a6978-CDG',
    'cf-connecting-ip': '203.0.113.7',
    'cf-ipcountry': 'FR',
    'x-forwarded-for': '203.0.113.7',
    'x-forwarded-proto': 'https',
    'accept-encoding': 'gzip, br',
    'user-agent': 'Cloudflare-AI-Gateway',
  });
  const aigBody = (extra = {}) => ({
    model: 'openai/gpt-4o-mini',
    messages: [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'through the ai gateway' },
    ],
    temperature: 0.2,
    max_tokens: 50,
    ...extra,
  });

  test('the compat request is answered; no cf-aig-* header reaches the upstream', async () => {
    await env.mockReset();
    const r = await env.post('/v1/chat/completions', aigBody(), aigHeaders());
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.object, 'chat.completion');
    assert.equal(r.json.choices[0].message.content, 'through the ai gateway');
    assert.ok(r.json.usage.total_tokens > 0);
    const last = await env.mockLast('aig-echo');
    assert.ok(last, 'the upstream was called');
    const names = Object.keys(last.headers);
    assert.deepEqual(names.filter((n) => n.startsWith('cf-')), [], `cf-* headers reached the upstream: ${names}`);
    assert.equal(last.headers.authorization, 'Bearer k1', 'the upstream gets the provider key, not the client key');
    assert.ok(!JSON.stringify(last).includes(AIG_SECRET), 'the cf-aig-authorization secret reached the upstream');
    assert.ok(!JSON.stringify(last).includes(key), 'the llmgate key reached the upstream');
    assert.equal(last.body.temperature, 0.2);
  });

  test('stream through the compat endpoint', async () => {
    const r = await env.sse('/v1/chat/completions', aigBody({ stream: true }), aigHeaders());
    assert.equal(r.status, 200, r.raw);
    assert.equal(deltaText(r.chunks), 'through the ai gateway');
    assert.ok(!r.raw.includes(AIG_SECRET));
  });

  test('the /api/v1 path AI Gateway may be pointed at works the same', async () => {
    const r = await env.post('/api/v1/chat/completions', aigBody(), aigHeaders());
    assert.equal(r.status, 200, r.text);
  });

  test('cf-aig-authorization is never the credential: without Authorization the request is 401', async () => {
    const h = aigHeaders();
    delete h.authorization;
    const r = await env.post('/v1/chat/completions', aigBody(), h);
    assertError(r, 401);
    assert.ok(!r.text.includes(AIG_SECRET), r.text);
  });

  test('errors answered to AI Gateway keep the OpenAI shape and echo no secret', async () => {
    const bad = await env.post('/v1/chat/completions', aigBody({ model: 'no/such-model' }), aigHeaders());
    assert.equal(bad.status, 400, bad.text);
    assert.equal(typeof bad.json.error.message, 'string');
    assert.ok(!bad.text.includes(AIG_SECRET), bad.text);
  });

  test('the cf-aig-authorization value is echoed nowhere: response headers, generation record, logs', async () => {
    const r = await env.post('/v1/chat/completions', aigBody(), aigHeaders());
    assert.equal(r.status, 200, r.text);
    for (const [n, v] of r.headers) assert.ok(!v.includes(AIG_SECRET), `response header ${n} echoes the secret`);
    assert.ok(!r.text.includes(AIG_SECRET));
    const g = await httpGet(env.base, `/api/v1/generation?id=${encodeURIComponent(r.json.id)}`, { authorization: `Bearer ${key}` });
    assert.ok(!g.text.includes(AIG_SECRET), g.text);
    await new Promise((res) => setTimeout(res, 300)); // the access log line is written at settlement
    assert.ok(env.accessLog().length > 0, 'the access log has lines');
    assert.ok(!env.accessLog().join('\n').includes(AIG_SECRET), 'the access log has the secret');
    assert.ok(!env.log().includes(AIG_SECRET), 'the gateway log (debug level) has the secret');
  });
});
