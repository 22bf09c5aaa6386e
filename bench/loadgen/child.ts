// One load-generator process: holds up to ~15,000 client sockets (the per-process open-files
// limit is 20,000), spread over loopback source addresses; obeys the parent over IPC.
// `connect`/`ticks` hold lean raw-socket clients (raw-client.ts); `churn` uses `ws` clients,
// whose handshake and close are what it measures; `hold` holds reconnecting PulseClients (crowd.ts).
import { WebSocket } from 'ws';
import { closeCrowd, hold, holdReport, holdStatus } from './crowd.js';
import { RawClient, type RawClientEvents } from './raw-client.js';
import type { ChildMessage, ChurnCommand, ConnectCommand, ParentMessage, TicksCommand } from './protocol.js';

const clients: RawClient[] = [];
const otherMessages: Record<string, number> = {};
const closes: Record<string, number> = {};

function send(message: ChildMessage): void {
  process.send?.(message);
}

function bump(map: Record<string, number>, key: string): void {
  map[key] = (map[key] ?? 0) + 1;
}

/** Clients between their TCP connect and their welcome: what openOne() promised them. */
const opening = new Map<RawClient, { resolve: (client: RawClient) => void; reject: (error: Error) => void; timer: NodeJS.Timeout }>();
/** Clients given up on (handshake timeout): already counted as failed connects, not as closes. */
const abandoned = new WeakSet<RawClient>();

/** Shared by every client. Ticks are recorded on the client; anything else is only counted, by type. */
const events: RawClientEvents = {
  onFirstFrame(client) {
    bump(otherMessages, 'first');
    const pending = opening.get(client);
    if (!pending) return;
    opening.delete(client);
    clearTimeout(pending.timer);
    pending.resolve(client);
  },
  onTick(client, epochMs, arrival) {
    client.epochs.push(epochMs);
    client.latencies.push(arrival - epochMs);
  },
  onOtherFrame(_client, payload) {
    let type = 'unparsed';
    try {
      type = String((JSON.parse(payload.toString()) as { type?: unknown }).type);
    } catch {
      // counted as unparsed
    }
    bump(otherMessages, type);
  },
  onClose(client, code, reason) {
    const pending = opening.get(client);
    if (pending) {
      opening.delete(client);
      clearTimeout(pending.timer);
      pending.reject(new Error(reason && code === 1006 ? reason.slice(0, 60) : `closed ${code} before welcome`));
    } else if (!abandoned.has(client)) bump(closes, String(code));
  },
};

function openOne(url: URL, localAddress: string | undefined, timeoutMs: number): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const client = new RawClient(url, localAddress, events);
    const timer = setTimeout(() => {
      if (!opening.delete(client)) return;
      abandoned.add(client);
      client.destroy();
      reject(new Error('timeout'));
    }, timeoutMs);
    opening.set(client, { resolve, reject, timer });
  });
}

async function connect(command: ConnectCommand): Promise<void> {
  const started = Date.now();
  const errors: Record<string, number> = {};
  let launched = 0;
  let inFlight = 0;
  let ok = 0;
  let failed = 0;
  const handshakeMs: number[] = [];
  const target = new URL(command.url);
  // Stop starting new connections after this (a server slower than the asked rate still gets
  // 10× the nominal time, at least 2 minutes); those never started count as failed.
  const deadline = started + Math.max(120_000, (command.count / command.ratePerSecond) * 10_000);
  await new Promise<void>((resolve) => {
    const pump = (): void => {
      const allowed = Math.min(command.count, Math.floor(((Date.now() - started) / 1000) * command.ratePerSecond) + 1);
      while (launched < allowed && inFlight < command.maxInFlight && Date.now() <= deadline) {
        const index = command.firstIndex + launched;
        launched++;
        inFlight++;
        const address = command.localAddresses[index % Math.max(1, command.localAddresses.length)];
        const t0 = performance.now();
        openOne(target, address, command.timeoutMs).then(
          (client) => {
            clients.push(client);
            handshakeMs.push(performance.now() - t0);
            ok++;
          },
          (error: Error & { code?: string }) => {
            failed++;
            bump(errors, error.code ?? error.message.slice(0, 60));
          },
        ).finally(() => {
          inFlight--;
        });
      }
      if (inFlight === 0 && (launched >= command.count || Date.now() > deadline)) {
        if (launched < command.count) {
          failed += command.count - launched;
          errors['connect phase deadline'] = command.count - launched;
        }
        resolve();
      } else setTimeout(pump, 5);
    };
    pump();
  });
  send({ type: 'connected', ok, failed, errors, durationMs: Date.now() - started, handshakeMs: Float64Array.from(handshakeMs) });
}

function ticks(command: TicksCommand): void {
  const expectedPerClient = Math.floor((command.windowEnd - command.windowStart) / 1000) + 1;
  let received = 0;
  let duplicates = 0;
  let outside = 0;
  let open = 0;
  const latencies: number[] = [];
  const perEpoch = new Map<number, [number, number]>();
  for (const client of clients) {
    if (client.isOpen) open++;
    const seen = new Set<number>();
    client.epochs.forEach((epochMs, i) => {
      if (epochMs < command.windowStart || epochMs > command.windowEnd) {
        outside++;
        return;
      }
      if (seen.has(epochMs)) {
        duplicates++;
        return;
      }
      seen.add(epochMs);
      received++;
      const latency = client.latencies[i] ?? Number.NaN;
      latencies.push(latency);
      const range = perEpoch.get(epochMs);
      if (!range) perEpoch.set(epochMs, [latency, latency]);
      else {
        range[0] = Math.min(range[0], latency);
        range[1] = Math.max(range[1], latency);
      }
    });
  }
  const cpu = process.cpuUsage();
  send({
    type: 'ticks',
    clients: clients.length,
    open,
    expected: expectedPerClient * clients.length,
    received,
    duplicates,
    latencies: Float64Array.from(latencies),
    perEpoch: [...perEpoch].map(([epochMs, [min, max]]) => [epochMs, min, max]),
    outside,
    otherMessages,
    closes,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
  });
}

async function closeAll(): Promise<void> {
  const pending = clients.map((client) => client.close(5000));
  await Promise.all(pending);
  const closed = clients.length + closeCrowd();
  clients.length = 0;
  send({ type: 'closed', closed });
}

/** One connect → welcome → close cycle; resolves with the welcome's ids. */
function cycle(
  url: string,
  localAddress: string | undefined,
  onWelcome: (sessionId: string) => void,
  onClosing: (sessionId: string) => void,
): Promise<{ sessionId: string; instanceId: string; welcomeMs: number; closeMs: number }> {
  return new Promise((resolve, reject) => {
    const startedAt = performance.now();
    let closingAt = 0;
    const ws = new WebSocket(url, { localAddress, perMessageDeflate: false, handshakeTimeout: 10_000 });
    let ids: { sessionId: string; instanceId: string; welcomeMs: number; closeMs: number } | undefined;
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(ids ? 'close timeout' : 'welcome timeout'));
    }, 15_000);
    ws.once('message', (data: Buffer) => {
      try {
        const welcome = JSON.parse(data.toString()) as { type?: unknown; sessionId?: unknown; instanceId?: unknown };
        if (welcome.type !== 'welcome' || typeof welcome.sessionId !== 'string') throw new Error('first frame is not a welcome');
        ids = {
          sessionId: welcome.sessionId,
          instanceId: typeof welcome.instanceId === 'string' ? welcome.instanceId : '',
          welcomeMs: performance.now() - startedAt,
          closeMs: 0,
        };
      } catch (error) {
        clearTimeout(timer);
        ws.terminate();
        reject(error instanceof Error ? error : new Error(String(error)));
        return;
      }
      onWelcome(ids.sessionId);
      onClosing(ids.sessionId);
      closingAt = performance.now();
      ws.close(1000);
    });
    ws.on('error', () => undefined); // the close event follows and settles the cycle
    ws.on('close', (code: number) => {
      clearTimeout(timer);
      if (ids) resolve({ ...ids, closeMs: performance.now() - closingAt });
      else reject(new Error(`closed ${code} before welcome`));
    });
  });
}

async function churn(command: ChurnCommand): Promise<void> {
  const started = Date.now();
  const stopAt = started + command.seconds * 1000;
  const errors: Record<string, number> = {};
  const sessionIds: string[] = [];
  const instanceIds = new Set<string>();
  const cycleMs: number[] = [];
  const welcomeMs: number[] = [];
  const closeMs: number[] = [];
  let failures = 0;
  const cpuBefore = process.cpuUsage();
  const loop = async (loopIndex: number): Promise<void> => {
    const name = `bench-${command.firstIndex + loopIndex}`;
    const url = `${command.url}${command.url.includes('?') ? '&' : '?'}presence=0&name=${name}`;
    // Bounded in time (stopAt) and count (a cycle takes well over 10 µs, so 1e6 is never reached).
    for (let i = 0; i < 1_000_000 && Date.now() < stopAt; i++) {
      const sample = i % command.sampleEvery === 0;
      const address = command.localAddresses[(loopIndex + i) % Math.max(1, command.localAddresses.length)];
      const t0 = performance.now();
      try {
        const ids = await cycle(
          url,
          address,
          (sessionId) => {
            if (sample) send({ type: 'churnSample', sessionId, event: 'open', at: Date.now() });
          },
          (sessionId) => {
            if (sample) send({ type: 'churnSample', sessionId, event: 'close', at: Date.now() });
          },
        );
        sessionIds.push(ids.sessionId);
        if (ids.instanceId) instanceIds.add(ids.instanceId);
        cycleMs.push(performance.now() - t0);
        welcomeMs.push(ids.welcomeMs);
        closeMs.push(ids.closeMs);
      } catch (error) {
        failures++;
        bump(errors, (error as Error & { code?: string }).code ?? (error as Error).message.slice(0, 60));
      }
    }
  };
  await Promise.all(Array.from({ length: command.loops }, (_, i) => loop(i)));
  const cpu = process.cpuUsage(cpuBefore);
  send({
    type: 'churn',
    cycles: sessionIds.length,
    failures,
    errors,
    sessionIds,
    instanceIds: [...instanceIds],
    durationMs: Date.now() - started,
    cycleMs: Float64Array.from(cycleMs),
    welcomeMs: Float64Array.from(welcomeMs),
    closeMs: Float64Array.from(closeMs),
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
  });
}

process.on('message', (message: ParentMessage) => {
  const run = async (): Promise<void> => {
    switch (message.cmd) {
      case 'connect':
        return connect(message);
      case 'ticks':
        return ticks(message);
      case 'churn':
        return churn(message);
      case 'hold':
        return send(await hold(message));
      case 'holdStatus':
        return send(holdStatus());
      case 'holdReport':
        return send(holdReport());
      case 'close':
        return closeAll();
      case 'exit':
        process.exit(0);
    }
  };
  run().catch((error: unknown) => send({ type: 'error', message: String(error) }));
});
// The parent went away: never linger holding sockets.
process.on('disconnect', () => process.exit(0));
