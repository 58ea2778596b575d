// SPDX-License-Identifier: MIT
// Real-client test: the Claude Code CLI itself (`@anthropic-ai/claude-code`, pinned by package-lock.json; its native
// binary ships inside the npm package) in non-interactive mode (`claude -p`) with ANTHROPIC_BASE_URL at llmgate and a
// non-Claude catalog model behind it (the mock upstream's `bash-tool` model: it calls Claude Code's Bash tool, then
// answers with the tool's output). The turn must complete through a real tool call: Claude Code runs the command and
// sends its result back through the gateway. A missing npm install FAILS.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe } from 'node:test';
import { startEnv, gwTest, ep } from '../integration/harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const CLAUDE = path.join(here, 'node_modules', '.bin', 'claude');
let env;
let home;
const test = gwTest(() => env);

function claude(args, extraEnv = {}) {
  return new Promise((resolve) => {
    const child = execFile(
      CLAUDE,
      args,
      {
        cwd: home,
        timeout: 120000,
        maxBuffer: 16 << 20,
        env: {
          PATH: process.env.PATH,
          HOME: home,
          ANTHROPIC_BASE_URL: env.base,
          ANTHROPIC_API_KEY: 'sk-llmgate-test',
          CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
          DISABLE_AUTOUPDATER: '1',
          DISABLE_TELEMETRY: '1',
          ...extraEnv,
        },
      },
      (err, stdout, stderr) => resolve({ code: err ? err.code ?? -1 : 0, stdout, stderr }),
    );
    child.stdin.end(); // no stdin: -p takes the prompt from argv
  });
}

describe('Claude Code CLI on a non-Claude model through llmgate', () => {
  before(async () => {
    if (!fs.existsSync(CLAUDE))
      throw new Error('tests/claude-code/node_modules is missing: run `scripts/install-deps.sh --test` (or `npm ci` here)');
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'llmgate-claude-'));
    env = await startEnv({
      models: {
        'test/agent': { endpoints: [ep('up1', 'bash-tool')] },
        'test/echo': { endpoints: [ep('up1', 'echo')] },
      },
    });
  });
  after(async () => {
    await env?.kill();
    if (home) fs.rmSync(home, { recursive: true, force: true });
  });

  test('a turn that uses the Bash tool completes', async () => {
    const r = await claude(['-p', 'run the marker command', '--model', 'test/agent', '--max-turns', '4', '--output-format', 'json', '--allowedTools', 'Bash']);
    assert.equal(r.code, 0, `claude exited ${r.code}: ${r.stderr}\n${r.stdout}`);
    const out = JSON.parse(r.stdout);
    assert.equal(out.is_error, false, r.stdout);
    assert.equal(out.subtype, 'success');
    assert.ok(out.num_turns >= 2, 'one turn asked for the tool, the next answered with its result');
    assert.equal(out.result, 'tool said: llmgate-tool-ok', 'Claude Code ran the command and sent its output back');
    const last = await env.mockLast('bash-tool');
    const msgs = last.body.messages;
    const toolMsg = msgs.find((m) => m.role === 'tool');
    assert.ok(toolMsg, 'the tool result reached the upstream as an OpenAI tool message');
    assert.equal(toolMsg.tool_call_id, 'call_bash_1');
    assert.match(JSON.stringify(toolMsg.content), /llmgate-tool-ok/);
    assert.ok(msgs.some((m) => m.role === 'system'), 'its system prompt reached the upstream');
    assert.ok(Array.isArray(last.body.tools) && last.body.tools.some((t) => t.function?.name === 'Bash'), 'its tools were translated');
  });

  test('a plain turn: the answer is the model text', async () => {
    const r = await claude(['-p', 'hello from claude code', '--model', 'test/echo', '--max-turns', '1', '--output-format', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    // the echo model repeats the whole last user turn: Claude Code's own reminder block, then the prompt
    assert.ok(out.result.endsWith('hello from claude code'), out.result);
    assert.equal(out.is_error, false);
  });
});
