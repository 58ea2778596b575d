// SPDX-License-Identifier: MIT
// Real-client tests of mid-stream failover (#10 item 5): the official `openai` and `@anthropic-ai/sdk` SDKs stream
// through an upstream reset after two tokens and see one answer (prefix + the continuation the next endpoint produced
// from the prefill), with no error raised; without the opt-in the same stream raises, as before.
// Needs tests/clients/node_modules (scripts/install-deps.sh --test). A missing install FAILS.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe } from 'node:test';
import { startEnv, gwTest, ep } from '../integration/harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const HDR = { 'X-LLMGate-Midstream-Failover': 'true' };
const cont = (prefix) => ` continued after "${prefix}"`;
let env;
let OpenAI;
let Anthropic;
const test = gwTest(() => env);
const pair = (a, b) => ({ policy: 'price', midstream_failover: true, endpoints: [ep('up1', a, '0.000001', '0.000001'), ep('up2', b, '0.000002', '0.000002')] });

describe('official SDKs through a mid-stream failover', () => {
  before(async () => {
    for (const pkg of ['openai', '@anthropic-ai/sdk'])
      if (!fs.existsSync(path.join(here, 'node_modules', pkg, 'package.json')))
        throw new Error(`tests/clients/node_modules/${pkg} is missing: run \`scripts/install-deps.sh --test\``);
    OpenAI = (await import('openai')).default;
    Anthropic = (await import('@anthropic-ai/sdk')).default;
    env = await startEnv({
      models: {
        'test/sdk-mf': pair('words-6+reset-mid+s1', 'prefill-echo+s2'),
        'test/sdk-mf-off': pair('words-6+reset-mid+o1', 'prefill-echo+o2'),
        'test/sdk-mf-a': pair('words-6+reset-mid+a1', 'prefill-echo+a2'),
      },
    });
  });
  after(async () => {
    await env?.kill();
  });

  test('openai SDK: chat.completions stream with the opt-in header reads one answer, finish_reason stop', async () => {
    const client = new OpenAI({ baseURL: `${env.base}/v1`, apiKey: 'anything', maxRetries: 0, timeout: 30000, defaultHeaders: HDR });
    const stream = await client.chat.completions.create({
      model: 'test/sdk-mf',
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'go on' }],
    });
    let text = '';
    let finish = null;
    let usage = null;
    for await (const c of stream) {
      text += c.choices[0]?.delta?.content ?? '';
      finish = c.choices[0]?.finish_reason ?? finish;
      usage = c.usage ?? usage;
    }
    assert.equal(text, 'w1 w2 ' + cont('w1 w2 '));
    assert.equal(finish, 'stop');
    assert.ok(usage && usage.completion_tokens > 5 && usage.cost > 0, JSON.stringify(usage));
  });

  test('openai SDK: without the header the stream raises the mid-stream error, as before', async () => {
    const client = new OpenAI({ baseURL: `${env.base}/v1`, apiKey: 'anything', maxRetries: 0, timeout: 30000 });
    const stream = await client.chat.completions.create({ model: 'test/sdk-mf-off', stream: true, messages: [{ role: 'user', content: 'go on' }] });
    let text = '';
    await assert.rejects(async () => {
      for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
    });
    assert.equal(text, 'w1 w2 ');
  });

  test('anthropic SDK: messages.stream reads one message, stop_reason end_turn', async () => {
    const client = new Anthropic({ baseURL: env.base, apiKey: 'any-key', maxRetries: 0, timeout: 30000, defaultHeaders: HDR });
    const stream = client.messages.stream({ model: 'test/sdk-mf-a', max_tokens: 100, messages: [{ role: 'user', content: 'go on' }] });
    const msg = await stream.finalMessage();
    assert.equal(msg.content[0].text, 'w1 w2 ' + cont('w1 w2 '));
    assert.equal(msg.stop_reason, 'end_turn');
  });
});
