// SPDX-License-Identifier: MIT
// Per-call latency of a stdio MCP tool, called directly over stdio and through llmgate's /mcp (one Streamable HTTP
// session, keep-alive, sequential calls), and of a built-in tool with the same HTTP client (the client's and the
// HTTP hop's share). Prints one JSON line {direct, gateway, builtin_same_client, added} with p50/p99 in ms.
// Usage: node mcp_stdio_latency.mjs <fake_mcp_server> <gateway base URL> <N>
import { spawn } from 'node:child_process';

const [server, base, nArg] = process.argv.slice(2);
const N = Number(nArg || 2000);

function pct(a, p) {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

async function direct() {
  const proc = spawn(server, [], { stdio: ['pipe', 'pipe', 'ignore'] });
  let buf = '';
  const waiting = new Map();
  proc.stdout.setEncoding('utf8');
  proc.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const m = JSON.parse(buf.slice(0, i));
      buf = buf.slice(i + 1);
      if (m.id !== undefined && waiting.has(m.id)) (waiting.get(m.id)(m), waiting.delete(m.id));
    }
  });
  let id = 0;
  const req = (method, params) =>
    new Promise((resolve) => {
      const my = ++id;
      waiting.set(my, resolve);
      proc.stdin.write(JSON.stringify({ jsonrpc: '2.0', id: my, method, params }) + '\n');
    });
  await req('initialize', { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'bench', version: '1' } });
  proc.stdin.write(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) + '\n');
  const t = [];
  for (let i = 0; i < N + 200; ++i) {
    const t0 = process.hrtime.bigint();
    await req('tools/call', { name: 'echo', arguments: { message: 'x' } });
    if (i >= 200) t.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  proc.stdin.end();
  return t;
}

async function gateway(tool = 'fake__echo', args = { message: 'x' }) {
  const url = base + '/mcp';
  const h = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
  const init = await fetch(url, {
    method: 'POST',
    headers: h,
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'bench', version: '1' } } }),
  });
  const sid = init.headers.get('mcp-session-id');
  await init.text();
  const sh = { ...h, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
  await (await fetch(url, { method: 'POST', headers: sh, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) })).text();
  const t = [];
  for (let i = 0; i < N + 200; ++i) {
    const t0 = process.hrtime.bigint();
    const r = await fetch(url, {
      method: 'POST',
      headers: sh,
      body: JSON.stringify({ jsonrpc: '2.0', id: i + 2, method: 'tools/call', params: { name: tool, arguments: args } }),
    });
    const j = await r.json();
    if (!j.result) throw new Error(JSON.stringify(j));
    if (i >= 200) t.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return t;
}

const d = await direct();
const g = await gateway();
// the same HTTP client on a built-in tool: what the client and the HTTP hop cost without any upstream
const b = await gateway('llmgate__list_models', {});
const out = {
  n: N,
  direct: { p50: pct(d, 50), p99: pct(d, 99) },
  gateway: { p50: pct(g, 50), p99: pct(g, 99) },
  builtin_same_client: { p50: pct(b, 50), p99: pct(b, 99) },
};
out.added = { p50: out.gateway.p50 - out.direct.p50, p99: out.gateway.p99 - out.direct.p99 };
console.log(JSON.stringify(out));
