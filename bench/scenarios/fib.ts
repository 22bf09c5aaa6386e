// fib: closed-loop small-n throughput and latency (every answer checked), F(1,000,000) latency
// (cold, repeated, and distinct n near 1e6), and how much big requests stall everyone else
// (a probe client's small request round trip while 4 clients ask for distinct large n nonstop).
import { RequestClient } from '../lib/client.js';
import { fibAnswer, fibTable } from '../lib/fib.js';
import { buildReport, type Metrics, type Row, type ScenarioReport } from '../lib/report.js';
import { scrapeMetric, startServer, type DbKind, type ServerKind } from '../lib/servers.js';
import { round, sleep, summarize } from '../lib/util.js';

export interface FibOptions {
  clients: number;
  seconds: number;
  /** Duration of the event-loop-lag phase (4 big-n clients + probe). */
  largeSeconds: number;
  /** Sequential distinct requests near 1e6 for the F(1e6) p50. */
  largeCount: number;
  db: DbKind;
  pgAdminUrl: string;
  servers: ServerKind[];
  log?: (line: string) => void;
}

export const FIB_ROWS: Row[] = [
  { label: 'small n: clients', key: 'clients' },
  { label: 'small n: requests/s', key: 'smallRequestsPerSecond', ratio: true },
  { label: 'small n: latency p50 ms', key: 'smallP50Ms', ratio: true },
  { label: 'small n: latency p99 ms', key: 'smallP99Ms', ratio: true },
  { label: 'small n: answers checked', key: 'smallAnswers' },
  { label: 'small n: wrong answers', key: 'smallWrong' },
  { label: 'F(1e6) first call ms', key: 'largeColdMs', ratio: true },
  { label: 'F(1e6) repeated (cache) ms', key: 'largeRepeatMs', ratio: true },
  { label: 'F(~1e6) distinct n p50 ms', key: 'largeP50Ms', ratio: true },
  { label: 'F(~1e6) distinct n max ms', key: 'largeMaxMs', ratio: true },
  { label: 'big-n wrong answers', key: 'largeWrong' },
  { label: 'probe RTT idle p50 ms', key: 'probeIdleP50Ms' },
  { label: 'probe RTT under big-n p50 ms', key: 'probeLoadedP50Ms', ratio: true },
  { label: 'probe RTT under big-n p99 ms', key: 'probeLoadedP99Ms', ratio: true },
  { label: 'probe RTT under big-n max ms', key: 'probeLoadedMaxMs', ratio: true },
  { label: 'event-loop lag p99 ms (probe)', key: 'lagP99Ms', ratio: true },
  { label: 'big-n answers/s (4 clients)', key: 'largePerSecond', ratio: true },
  { label: 'server /metrics lag p99 ms', key: 'metricsLagP99Ms' },
];

const SMALL_MAX = 90;
/** Pulse's event-loop delay since the previous scrape (README, Metrics). */
const LAG_METRIC = 'pulse_event_loop_lag_seconds{quantile="0.99"}';
const TABLE = fibTable(SMALL_MAX);

/** Deterministic xorshift so both servers get the same request sequence. */
function prng(seed: number): () => number {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

interface Checked {
  ok: boolean;
  why?: string;
}

function check(message: Record<string, unknown>, n: number, id: unknown, expected: { value: string; digits: number }): Checked {
  if (message.type !== 'fibonacci') return { ok: false, why: `type ${String(message.type)} ${String(message.code ?? '')}` };
  if (message.n !== n) return { ok: false, why: `n ${String(message.n)} for ${n}` };
  if (message.id !== id) return { ok: false, why: `id ${String(message.id)} for ${String(id)}` };
  if (message.value !== expected.value) return { ok: false, why: `wrong value for n=${n}` };
  if (message.digits !== expected.digits) return { ok: false, why: `digits ${String(message.digits)} for n=${n}` };
  return { ok: true };
}

/** Probe: a small request every 20 ms until `until`; round trips in ms. */
async function probe(client: RequestClient, until: number, errors: string[]): Promise<number[]> {
  const rtts: number[] = [];
  for (let i = 0; i < 100_000 && Date.now() < until; i++) {
    try {
      const { message, ms } = await client.request(JSON.stringify({ type: 'fibonacci', n: 10, id: `p${i}` }));
      const c = check(message, 10, `p${i}`, { value: '55', digits: 2 });
      if (!c.ok) errors.push(`probe: ${c.why ?? ''}`);
      rtts.push(ms);
    } catch (error) {
      errors.push(`probe: ${String(error)}`);
    }
    await sleep(20);
  }
  return rtts;
}

async function measure(kind: ServerKind, options: FibOptions): Promise<Metrics> {
  const log = options.log ?? (() => undefined);
  const server = await startServer(kind, { workers: 1, db: options.db, pgAdminUrl: options.pgAdminUrl });
  const url = `${server.wsUrl}?presence=0`;
  const errors: string[] = [];
  const clients: RequestClient[] = [];
  try {
    await sleep(1000);
    // ---- small n, closed loop ----
    for (let i = 0; i < options.clients; i++) clients.push(await RequestClient.open(url));
    log(`fib/${kind}: ${clients.length} clients, small n for ${options.seconds} s`);
    let latencies: number[] = [];
    let wrong = 0;
    // The same closed loop twice: an uncounted warm-up (the bench's own client code is shared by
    // both servers and would otherwise be JIT-compiled during whichever server runs first), then
    // the measured run. Answers are checked in both.
    const closedLoop = async (seconds: number, seed: number): Promise<void> => {
      const stopAt = Date.now() + seconds * 1000;
      await Promise.all(
        clients.map(async (client, c) => {
          const random = prng(seed + c + 1);
          for (let i = 0; i < 10_000_000 && Date.now() < stopAt; i++) {
            const n = Math.floor(random() * (SMALL_MAX + 1));
            // Every fourth request is the bare-integer form, whose answer has id null.
            const bare = i % 4 === 3;
            const id = bare ? null : i;
            const payload = bare ? String(n) : JSON.stringify({ type: 'fibonacci', n, id });
            try {
              const { message, ms } = await client.request(payload);
              const value = TABLE[n] ?? '';
              const result = check(message, n, id, { value, digits: value.length });
              if (!result.ok) {
                wrong++;
                if (errors.length < 20) errors.push(`small: ${result.why ?? ''}`);
              }
              latencies.push(ms);
            } catch (error) {
              wrong++;
              if (errors.length < 20) errors.push(`small: ${String(error)}`);
              return;
            }
          }
        }),
      );
    };
    await closedLoop(Math.min(2, options.seconds), 1000);
    const warmupAnswers = latencies.length;
    latencies = [];
    const started = performance.now();
    await closedLoop(options.seconds, 0);
    const elapsed = (performance.now() - started) / 1000;
    const small = summarize(latencies);
    await Promise.all(clients.splice(1).map((c) => c.close()));
    const one = clients[0] as RequestClient;

    // ---- F(1e6): cold, repeated, distinct n ----
    log(`fib/${kind}: F(1e6) latency`);
    const big: Array<{ n: number; id: string; message: Record<string, unknown> }> = [];
    const bigRequest = async (n: number, id: string): Promise<number> => {
      const { message, ms } = await one.request(JSON.stringify({ type: 'fibonacci', n, id }), 60_000);
      big.push({ n, id, message });
      return ms;
    };
    const coldMs = await bigRequest(1_000_000, 'cold');
    const repeatMs = await bigRequest(1_000_000, 'repeat');
    const distinct: number[] = [];
    for (let i = 1; i <= options.largeCount; i++) distinct.push(await bigRequest(1_000_000 - i, `d${i}`));
    const distinctSummary = summarize(distinct);

    // ---- event-loop lag: probe idle, then while 4 clients ask for distinct large n nonstop ----
    log(`fib/${kind}: probe idle 2 s, then 4 big-n clients for ${options.largeSeconds} s`);
    const probeClient = await RequestClient.open(url);
    clients.push(probeClient);
    const idle = summarize(await probe(probeClient, Date.now() + 2000, errors));
    const heavy: RequestClient[] = [];
    for (let i = 0; i < 4; i++) heavy.push(await RequestClient.open(url));
    clients.push(...heavy);
    if (kind === 'pulse') await scrapeMetric(server.httpUrl, LAG_METRIC); // a scrape starts a fresh window
    let nextN = 999_000;
    let heavyAnswers = 0;
    const heavySamples: Array<{ n: number; id: string; message: Record<string, unknown> }> = [];
    const heavyStop = Date.now() + options.largeSeconds * 1000;
    const heavyStarted = performance.now();
    const heavyLoops = heavy.map(async (client) => {
      for (let i = 0; i < 100_000 && Date.now() < heavyStop; i++) {
        const n = nextN--;
        const id = `h${n}`;
        try {
          const { message } = await client.request(JSON.stringify({ type: 'fibonacci', n, id }), 120_000);
          heavyAnswers++;
          if (heavySamples.length < 200) heavySamples.push({ n, id, message });
        } catch (error) {
          errors.push(`heavy: ${String(error)}`);
          return;
        }
      }
    });
    const loaded = summarize(await probe(probeClient, heavyStop, errors));
    await Promise.all(heavyLoops);
    const heavySeconds = (performance.now() - heavyStarted) / 1000;
    const metricsLag = kind === 'pulse' ? await scrapeMetric(server.httpUrl, LAG_METRIC) : undefined;

    // ---- check the big answers (after timing, so checking costs the server nothing) ----
    let largeWrong = 0;
    const toCheck = [...big, ...heavySamples.filter((_, i) => i % Math.max(1, Math.ceil(heavySamples.length / 8)) === 0)];
    for (const { n, id, message } of toCheck) {
      const result = check(message, n, id, fibAnswer(n));
      if (!result.ok) {
        largeWrong++;
        errors.push(`large: ${result.why ?? ''}`);
      }
    }
    return {
      server: kind,
      clients: options.clients,
      smallRequestsPerSecond: round(latencies.length / elapsed, 0),
      smallP50Ms: round(small.p50, 3),
      smallP99Ms: round(small.p99, 3),
      smallMaxMs: round(small.max, 3),
      smallAnswers: latencies.length,
      smallWarmupAnswers: warmupAnswers,
      smallWrong: wrong,
      largeColdMs: round(coldMs, 1),
      largeRepeatMs: round(repeatMs, 1),
      largeP50Ms: round(distinctSummary.p50, 1),
      largeMaxMs: round(distinctSummary.max, 1),
      largeChecked: toCheck.length,
      largeWrong,
      probeIdleP50Ms: round(idle.p50, 3),
      probeLoadedP50Ms: round(loaded.p50, 2),
      probeLoadedP99Ms: round(loaded.p99, 2),
      probeLoadedMaxMs: round(loaded.max, 2),
      probeSamples: loaded.count,
      lagP99Ms: round(Math.max(0, loaded.p99 - idle.p50), 2),
      largeAnswers: heavyAnswers,
      largePerSecond: round(heavyAnswers / heavySeconds, 1),
      metricsLagP99Ms: metricsLag === undefined ? null : round(metricsLag * 1000, 2),
      errors: errors.length,
      errorSample: errors.slice(0, 5).join(' | '),
    };
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await server.stop();
  }
}

export async function runFib(options: FibOptions): Promise<ScenarioReport> {
  const startedAt = new Date().toISOString();
  const servers: ScenarioReport['servers'] = {};
  const failures: string[] = [];
  for (const kind of options.servers) {
    const m = await measure(kind, options);
    servers[kind] = m;
    if (m.smallWrong !== 0) failures.push(`${kind}: ${String(m.smallWrong)} wrong small-n answers (${String(m.errorSample)})`);
    if (m.largeWrong !== 0) failures.push(`${kind}: ${String(m.largeWrong)} wrong big-n answers (${String(m.errorSample)})`);
    if (typeof m.smallAnswers !== 'number' || m.smallAnswers === 0) failures.push(`${kind}: no small-n answer`);
    if (m.errors !== 0) failures.push(`${kind}: ${String(m.errors)} errors (${String(m.errorSample)})`);
  }
  return buildReport('fib', startedAt, options, servers, FIB_ROWS, failures, [
    'small n: uniform in 0..90, one request in flight per client, every fourth as bare text; every answer compared with a local table; 2 s uncounted warm-up first (the bench process is shared by both servers)',
    'F(1e6) repeated: Pulse may answer from its result cache; the reference recomputes. Distinct n = 999,999 … for a cache-free p50',
    'event-loop lag = probe (n=10 every 20 ms) round-trip p99 under load − idle p50; same probe for both servers; Pulse’s own pulse_event_loop_lag_seconds p99 over the same phase is shown beside it',
  ]);
}
