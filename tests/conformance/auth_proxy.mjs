// SPDX-License-Identifier: MIT
// A loopback pass-through that adds `Authorization: Bearer <key>` to every request, so the official conformance suite
// (which has no auth options) can run against a gateway that requires API keys. Everything else is forwarded as it
// came: method, path, Host and Origin (the suite's DNS-rebinding checks need the gateway to see them), body, and the
// response streamed back unbuffered (SSE). Usage: node auth_proxy.mjs <gateway port> <key>; prints its own port.
import http from 'node:http';

const [target, key] = [Number(process.argv[2]), process.argv[3]];
if (!target || !key) {
  console.error('usage: node auth_proxy.mjs <gateway port> <key>');
  process.exit(2);
}

const server = http.createServer((req, res) => {
  const headers = { ...req.headers, authorization: `Bearer ${key}` };
  const up = http.request({ host: '127.0.0.1', port: target, method: req.method, path: req.url, headers }, (r) => {
    res.writeHead(r.statusCode ?? 502, r.headers);
    r.pipe(res);
  });
  up.on('error', (e) => {
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
    res.end(`auth proxy: ${e.message}`);
  });
  res.on('close', () => up.destroy()); // the client left: so does the upstream request (cancellation reaches the gateway)
  req.pipe(up);
});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
