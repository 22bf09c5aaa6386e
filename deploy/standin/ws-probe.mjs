// VERIFICATION AID: connects to a running Pulse (container or not) and checks the JSON protocol basics.
// Usage (from the repository root, uses the `ws` package of node_modules):
//   node deploy/standin/ws-probe.mjs ws://127.0.0.1:8000/ws?name=probe [holdMs]
// Prints the welcome, the first `time` frame and a fibonacci answer, keeps the socket open for holdMs
// (default 0) so the database can be inspected, then closes with 1000. Exit 0 = all seen.
import WebSocket from 'ws';

const url = process.argv[2] ?? 'ws://127.0.0.1:8000/ws?name=probe';
const holdMs = Number(process.argv[3] ?? 0);
const t0 = Date.now();
const seen = {};
const ws = new WebSocket(url);
const fail = (why) => { console.error(`ws-probe: FAIL ${why}`); process.exit(1); };
setTimeout(() => fail(`timeout; seen ${Object.keys(seen).join(',') || 'nothing'}`), 10_000 + holdMs).unref();
ws.on('error', (err) => fail(err.message));
ws.on('unexpected-response', (_req, res) => fail(`HTTP ${res.statusCode} at upgrade`));
ws.on('message', (data) => {
  const msg = JSON.parse(String(data));
  if (seen[msg.type]) return;
  seen[msg.type] = msg;
  console.log(`+${String(Date.now() - t0).padStart(5)} ms ${msg.type}: ${JSON.stringify(msg).slice(0, 240)}`);
  if (msg.type === 'welcome') ws.send(JSON.stringify({ type: 'fibonacci', n: 100, id: 'probe' }));
  if (seen.welcome && seen.time && seen.fibonacci && !seen.done) {
    seen.done = true;
    if (seen.fibonacci.value !== '354224848179261915075') fail(`F(100) = ${seen.fibonacci.value}`);
    if (seen.time.epochMs % 1000 !== 0) fail(`epochMs ${seen.time.epochMs} not on the second`);
    console.log(`ws-probe: ok sessionId=${seen.welcome.sessionId} instanceId=${seen.welcome.instanceId}; holding ${holdMs} ms`);
    setTimeout(() => ws.close(1000, 'probe done'), holdMs);
  }
});
ws.on('close', (code) => { console.log(`ws-probe: closed ${code}`); process.exit(seen.done ? 0 : 1); });
