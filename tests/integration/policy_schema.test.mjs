// SPDX-License-Identifier: MIT
// Policy settings checked against the policy's SCHEMA by --check-config, with the config's JSON-path messages: a typo
// under a shipped policy's settings, a value outside a declared range or list, a missing required setting, and a
// broken SCHEMA refusing the policy. A valid file passes.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { run, GATEWAY_BIN } from './harness.mjs';

const REPO = path.resolve(import.meta.dirname, '..', '..');
const ROUTE_BY_HEADER = path.join(REPO, 'examples', 'policy-route-by-header.lua');
const BAD_SCHEMA = `local M = { NAME = "bad", VERSION = "1.0.0" }
M.SCHEMA = { limit = { type = "integer", min = 10, max = 1 } }
function M.select(req, candidates) return { candidates[1].id } end
return M
`;
const REQUIRED = `local M = { NAME = "needs", VERSION = "1.0.0" }
M.SCHEMA = { team = { type = "string", required = true } }
function M.select(req, candidates) return { candidates[1].id } end
return M
`;

let dir;
const base = {
  listeners: [{ address: '127.0.0.1', port: 1 }],
  providers: [{ name: 'p', plugin: 'openai', base_url: 'http://127.0.0.1:9/v1', api_key: 'k' }],
  models: { 'a/b': { endpoints: [{ provider: 'p', model: 'm', pricing: { prompt: '0', completion: '0' } }] } },
};

async function check(policies) {
  const file = path.join(dir, `c${Math.random().toString(36).slice(2)}.json`);
  fs.writeFileSync(file, JSON.stringify({ ...base, policies }));
  const r = await run(GATEWAY_BIN, ['--check-config', file]);
  return { code: r.code, out: r.stdout + r.stderr };
}

describe('policy settings schema at --check-config', () => {
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmgate-schema-'));
    fs.writeFileSync(path.join(dir, 'bad.lua'), BAD_SCHEMA);
    fs.writeFileSync(path.join(dir, 'needs.lua'), REQUIRED);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('valid settings pass', async () => {
    const r = await check({ default: { settings: {} }, rbh: { path: ROUTE_BY_HEADER, settings: { default_hint: 'fast' } } });
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /: ok \(/);
  });

  test('a typo under a shipped policy is an error naming its JSON path', async () => {
    const r = await check({ default: { settings: { default_hnt: 'cheap' } } });
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /policies\.default\.settings\.default_hnt: unknown setting/);
  });

  test('a misspelt setting of a custom policy suggests the declared name', async () => {
    const r = await check({ rbh: { path: ROUTE_BY_HEADER, settings: { default_hnt: 'cheap' } } });
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /policies\.rbh\.settings\.default_hnt: unknown setting \(did you mean "default_hint"\?\)/);
  });

  test('a value outside one_of, and a wrong type', async () => {
    let r = await check({ rbh: { path: ROUTE_BY_HEADER, settings: { default_hint: 'slow' } } });
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /policies\.rbh\.settings\.default_hint: must be one of \["cheap","fast","weighted"\]/);
    r = await check({ rbh: { path: ROUTE_BY_HEADER, settings: { default_hint: 3 } } });
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /policies\.rbh\.settings\.default_hint: expected a string/);
  });

  test('a missing required setting', async () => {
    const r = await check({ needs: { path: path.join(dir, 'needs.lua') } });
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /policies\.needs\.settings\.team: missing required setting/);
  });

  test('a broken SCHEMA refuses the policy, naming the file and the spec key', async () => {
    const r = await check({ bad: { path: path.join(dir, 'bad.lua') } });
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /policy 'bad': .*bad\.lua: invalid SCHEMA\.limit\.min: greater than max/);
  });
});
