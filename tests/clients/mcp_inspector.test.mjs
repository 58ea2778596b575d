// SPDX-License-Identifier: MIT
// The MCP Inspector CLI (@modelcontextprotocol/inspector, pinned in tests/mcp-clients/package-lock.json) against /mcp
// with keys on, in each protocol era: `--protocol-era modern` speaks 2026-07-28 stateless requests, `auto` finds the
// modern era on its own, `legacy` uses initialize + sessions. The era is visible: the 2026-07-28 diagnostic tools of the
// fixtures (test_missing_capability) are listed only to stateless requests. Needs tests/mcp-clients/node_modules
// (scripts/install-deps.sh --test). A missing install FAILS.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe } from 'node:test';
import { GATEWAY_BIN, childEnv, gwTest, run, startEnv } from '../integration/harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const INSPECTOR = path.join(here, '..', 'mcp-clients', 'node_modules', '.bin', 'mcp-inspector');
let env, secret, home;
const test = gwTest(() => env);

async function inspector(era, args) {
  const r = await run(
    INSPECTOR,
    ['--cli', env.base + '/mcp', '--transport', 'http', '--protocol-era', era, '--header', `Authorization: Bearer ${secret}`,
      '--format', 'json', '-q', ...args],
    { env: childEnv({ HOME: home }), timeout: 60000 },
  );
  assert.equal(r.code, 0, `inspector ${era} ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

describe('MCP Inspector CLI in each protocol era', () => {
  before(async () => {
    if (!fs.existsSync(INSPECTOR)) throw new Error('tests/mcp-clients/node_modules is missing: run `scripts/install-deps.sh --test`');
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'llmgate-inspector-home-'));
    const db = path.join(home, 'keys.db');
    const made = await run(GATEWAY_BIN, ['keys', 'create', '--db', db, '--name', 'inspector', '--json']);
    assert.equal(made.code, 0, made.stderr);
    secret = JSON.parse(made.stdout).key;
    env = await startEnv({
      mutate(conf) {
        conf.store = { path: db };
        conf.mcp = { conformance_fixtures: true };
      },
    });
  });
  after(async () => {
    await env?.stop();
    if (home) fs.rmSync(home, { recursive: true, force: true });
  });

  for (const era of ['modern', 'auto', 'legacy']) {
    test(`--protocol-era ${era}: tools/list and tools/call`, async () => {
      const list = await inspector(era, ['--method', 'tools/list']);
      const names = (list.result?.tools ?? list.tools ?? []).map((t) => t.name);
      assert.ok(names.includes('test_simple_text') && names.includes('llmgate__list_models'), names.join(', '));
      // stateless requests see the 2026-07-28 diagnostics, sessions do not: the era really is the one asked for
      assert.equal(names.includes('test_missing_capability'), era !== 'legacy', `${era}: ${names.join(', ')}`);
      const call = await inspector(era, ['--method', 'tools/call', '--tool-name', 'test_simple_text']);
      assert.equal((call.result ?? call).content[0].text, 'This is a simple text response for testing.');
    });
  }

  test('without the key the Inspector is refused', async () => {
    const r = await run(INSPECTOR, ['--cli', env.base + '/mcp', '--transport', 'http', '--protocol-era', 'modern', '--method', 'tools/list', '--format', 'json', '-q'], {
      env: childEnv({ HOME: home }),
      timeout: 60000,
    });
    assert.notEqual(r.code, 0);
  });
});
