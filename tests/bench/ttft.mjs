// SPDX-License-Identifier: MIT
// Time to first token: N sequential streamed requests over one keep-alive connection; for each, the time from sending
// the request until the first SSE data event carrying non-empty delta content arrives. Prints "p50 p99" in µs.
// Usage: node ttft.mjs URL BODY_FILE MODEL N
import fs from 'node:fs';
import http from 'node:http';

const [url, bodyFile, model, nArg] = process.argv.slice(2);
const n = Number(nArg || 200);
const body = JSON.parse(fs.readFileSync(bodyFile, 'utf8'));
body.model = model;
body.stream = true;
const payload = JSON.stringify(body);
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function once() {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    let first = null;
    let buf = '';
    const req = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (d) => {
        if (first !== null) return;
        buf += d;
        for (const line of buf.split('\n')) {
          if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
          try {
            const c = JSON.parse(line.slice(6)).choices?.[0]?.delta?.content;
            if (typeof c === 'string' && c.length > 0) {
              first = process.hrtime.bigint();
              break;
            }
          } catch {}
        }
      });
      res.on('end', () => resolve(first === null ? null : Number(first - t0) / 1000));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

const samples = [];
for (let i = 0; i < n + 20; i++) {
  const us = await once();
  if (i >= 20 && us !== null) samples.push(us); // first 20 warm the connection and caches
}
samples.sort((a, b) => a - b);
const pct = (p) => samples[Math.min(samples.length - 1, Math.floor((p / 100) * samples.length))];
console.log(`${Math.round(pct(50))} ${Math.round(pct(99))}`);
agent.destroy();
