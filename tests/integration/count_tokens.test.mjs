// SPDX-License-Identifier: MIT
// POST /v1/messages/count_tokens (openrouter-api.md §14) and the parts of /v1/messages that Claude Code relies on for
// non-Claude models: system entries inside messages[], output_config.effort, adaptive thinking, ?beta=true. Errors in
// Anthropic's shape.
import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import { startEnv, gwTest, ep, httpPost } from './harness.mjs';

let env;
const test = gwTest(() => env);

function assertAnthropicError(r, status, type, mentions) {
  assert.equal(r.status, status, r.text);
  assert.equal(r.json?.type, 'error', r.text);
  assert.equal(r.json.error.type, type, r.text);
  if (mentions) assert.ok(r.json.error.message.includes(mentions), `message should name ${mentions}: ${r.json.error.message}`);
}

describe('count_tokens and Claude Code request shapes', () => {
  before(async () => {
    env = await startEnv({ models: { 'test/echo': { endpoints: [ep('up1', 'echo')] } } });
  });
  after(async () => {
    await env?.kill();
  });

  const count = (body, q = '?beta=true') => httpPost(env.base, '/v1/messages/count_tokens' + q, body, { 'anthropic-version': '2023-06-01' });

  test('a real count, never 0, growing with the input', async () => {
    const small = await count({ model: 'test/echo', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(small.status, 200, small.text);
    assert.ok(Number.isInteger(small.json.input_tokens) && small.json.input_tokens > 0);
    const big = await count({
      model: 'test/echo',
      system: 'You are a coding agent working in a repository with many files.',
      tools: [{ name: 'Bash', description: 'Run a shell command', input_schema: { type: 'object', properties: { command: { type: 'string' } } } }],
      messages: [
        { role: 'user', content: 'list the files' },
        { role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'Bash', input: { command: 'ls' } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't1', content: 'README.md src tests' }] },
      ],
    });
    assert.equal(big.status, 200, big.text);
    assert.ok(big.json.input_tokens > small.json.input_tokens + 20, JSON.stringify([small.json, big.json]));
    const plain = await count({ model: 'test/echo', messages: [{ role: 'user', content: 'hi' }] }, '');
    assert.deepEqual(plain.json, small.json, 'same answer without ?beta=true');
  });

  test('bad input: Anthropic error shape, the field named', async () => {
    assertAnthropicError(await count('not json'), 400, 'invalid_request_error');
    assertAnthropicError(await count({ model: 'test/echo', messages: 'x' }), 400, 'invalid_request_error', 'messages');
    assertAnthropicError(await count({ model: 'test/echo', messages: [{ role: 'robot', content: 'x' }] }), 400, 'invalid_request_error', 'messages[0].role');
    assertAnthropicError(await count({ model: 'no/such', messages: [{ role: 'user', content: 'x' }] }), 404, 'not_found_error', 'no/such');
    const get = await fetch(env.base + '/v1/messages/count_tokens');
    assert.equal(get.status, 405);
  });

  test('/v1/messages accepts system entries inside messages[] and Claude Code fields', async () => {
    const r = await httpPost(env.base, '/v1/messages?beta=true', {
      model: 'test/echo',
      max_tokens: 100,
      thinking: { type: 'adaptive', display: 'omitted' },
      output_config: { effort: 'high' },
      context_management: { edits: [{ type: 'clear_thinking_20251015', keep: 'all' }] },
      metadata: { user_id: '{"session_id":"abc"}' },
      system: [{ type: 'text', text: 'be brief', cache_control: { type: 'ephemeral' } }],
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'first' }] },
        { role: 'system', content: [{ type: 'text', text: 'environment: linux' }] },
        { role: 'user', content: 'echo this back' },
      ],
    }, { 'anthropic-version': '2023-06-01' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.type, 'message');
    assert.equal(r.json.content[0].text, 'echo this back');
    const up = await env.mockLast('echo');
    const roles = up.body.messages.map((m) => m.role);
    assert.deepEqual(roles, ['system', 'user', 'system', 'user'], 'the mid-conversation system entry stays in place');
    assert.equal(up.body.reasoning?.effort, 'high', 'output_config.effort becomes reasoning.effort');
    const bad = await httpPost(env.base, '/v1/messages', {
      model: 'test/echo', max_tokens: 10, messages: [{ role: 'system', content: [{ type: 'image' }] }],
    });
    assertAnthropicError(bad, 400, 'invalid_request_error', 'messages[0].content[0]');
  });
});
