// SPDX-License-Identifier: MIT
// Soak test (`make soak`, not part of `make test`): SOAK_SECONDS (default 600) of mixed streamed and non-streamed
// chat traffic through the real gateway with API keys, a ledger and fallbacks (the first endpoint of a model fails
// with 503, the second serves), against the mock upstream. The gateway's RSS is sampled every 10 s; the run fails if
// RSS after the warm-up grows by more than 1 % or any request fails unexpectedly. Prints one JSON summary line.
import fs from 'node:fs';
import path from 'node:path';
import { ep, httpPost, httpSse, startEnv, sleep } from '../integration/harness.mjs';

const SECONDS = Number(process.env.SOAK_SECONDS || 600);
const WARMUP_S = Math.max(20, Math.min(120, Math.round(SECONDS * 0.15)));
const CONCURRENCY = Number(process.env.SOAK_CONCURRENCY || 8);
const SAMPLE_MS = 10000;
const ADMIN = 'soak-admin-' + Math.random().toString(36).slice(2);

function rssKiB(pid) {
  const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

const env = await startEnv({
  models: {
    'soak/fallback': { endpoints: [ep('up1', 'fail-503'), ep('up2', 'words-40')] },
    'soak/direct': { endpoints: [ep('up2', 'lorem')] },
  },
  mutate: (c) => {
    c.store = { path: path.join(path.dirname(c.access_log), 'soak.db') };
    c.auth = { admin_key: ADMIN };
    c.access_log = null;
    c.routing.keepalive = 'off';
  },
});
const pid = env.proc.pid;
let failed = 0;
const failures = [];
try {
  const keys = [];
  for (let i = 0; i < 3; i++) {
    const r = await httpPost(env.base, '/api/admin/keys', { name: `soak-${i}`, credit_limit: 1000 }, { authorization: `Bearer ${ADMIN}` });
    if (r.status !== 201) throw new Error(`cannot create key: ${r.status} ${r.text}`);
    keys.push(r.json.key);
  }
  const counts = { stream: 0, plain: 0, fallback: 0 };
  const deadline = Date.now() + SECONDS * 1000;
  let n = 0;
  async function worker(w) {
    while (Date.now() < deadline) {
      const i = n++;
      const key = keys[i % keys.length];
      const model = i % 3 === 0 ? 'soak/fallback' : 'soak/direct';
      const body = { model, messages: [{ role: 'user', content: `soak request ${i} from worker ${w}` }], max_tokens: 64 };
      const h = { authorization: `Bearer ${key}` };
      try {
        if (i % 2 === 0) {
          const r = await httpSse(env.base, '/v1/chat/completions', { ...body, stream: true }, h);
          if (r.status !== 200 || !r.raw.includes('data: [DONE]') || r.raw.includes('"error"')) throw new Error(`stream ${r.status}: ${r.raw.slice(0, 200)}`);
          counts.stream++;
        } else {
          const r = await httpPost(env.base, '/v1/chat/completions', body, h);
          if (r.status !== 200 || !r.json?.choices?.[0]?.message) throw new Error(`plain ${r.status}: ${r.text.slice(0, 200)}`);
          counts.plain++;
        }
        if (model === 'soak/fallback') counts.fallback++;
      } catch (e) {
        failed++;
        if (failures.length < 10) failures.push(String(e.message || e));
      }
    }
  }
  const samples = [];
  const t0 = Date.now();
  const sampler = (async () => {
    while (Date.now() < deadline) {
      samples.push({ t_s: Math.round((Date.now() - t0) / 1000), rss_kib: rssKiB(pid) });
      await sleep(Math.min(SAMPLE_MS, Math.max(0, deadline - Date.now())));
    }
    samples.push({ t_s: Math.round((Date.now() - t0) / 1000), rss_kib: rssKiB(pid) });
  })();
  await Promise.all([...Array(CONCURRENCY).keys()].map(worker).concat([sampler]));
  const after = samples.filter((s) => s.t_s >= WARMUP_S);
  const baseline = after.length ? after[0].rss_kib : NaN;
  const tail = after.slice(-3).map((s) => s.rss_kib).sort((a, b) => a - b);
  const final = tail.length ? tail[Math.floor(tail.length / 2)] : NaN;
  const growth = (final - baseline) / baseline;
  const total = counts.stream + counts.plain;
  const summary = {
    seconds: SECONDS,
    warmup_s: WARMUP_S,
    concurrency: CONCURRENCY,
    requests: total,
    requests_per_s: Math.round(total / SECONDS),
    streamed: counts.stream,
    non_streamed: counts.plain,
    with_fallback: counts.fallback,
    failed,
    rss_baseline_kib: baseline,
    rss_final_kib: final,
    rss_peak_kib: Math.max(...samples.map((s) => s.rss_kib)),
    rss_growth_pct: Math.round(growth * 10000) / 100,
    samples,
  };
  console.log(JSON.stringify(summary));
  if (failures.length) console.error('failures:\n' + failures.join('\n'));
  const ok = failed === 0 && after.length >= 2 && Number.isFinite(growth) && growth <= 0.01;
  await env.stop(60000);
  if (!ok) {
    console.error(`soak FAILED: ${failed} failed requests, RSS growth ${summary.rss_growth_pct}% after warm-up (limit 1%)`);
    process.exit(1);
  }
  console.error(`soak passed: ${total} requests, RSS ${baseline} -> ${final} KiB (${summary.rss_growth_pct}%)`);
} catch (e) {
  console.error(e);
  await env.kill();
  process.exit(1);
}
