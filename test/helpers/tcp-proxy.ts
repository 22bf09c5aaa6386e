// A TCP proxy the test controls, to put between Pulse and PostgreSQL and break the link on purpose.
// Listens on 127.0.0.1:0 and forwards to a target (PostgreSQL on 127.0.0.1:5432 by default).
// cut() destroys every current connection and then refuses new ones (accepted and closed at once,
// like a server that went away) or holds them (accepted and left silent, like a black hole) until
// restore(). swallowReplies() lets statements reach the server but loses its answers.

import { createServer, connect, type Server, type Socket } from 'node:net';

export type CutMode = 'refuse' | 'hold' | 'freeze';

export interface TcpProxy {
  port: number;
  /** True between cut() and restore(). */
  readonly isCut: boolean;
  /** Connections accepted so far (forwarded, refused or held). */
  readonly accepted: number;
  /** Connections open through the proxy right now. */
  readonly open: number;
  /** `url` with its host and port replaced by the proxy's. */
  urlFor(url: string): string;
  /**
   * Keeps forwarding what clients send but drops what the server answers, on current and new
   * connections: statements still commit, their replies are lost. Ends with cut() or restore().
   */
  swallowReplies(): void;
  /**
   * Destroys every current connection; new ones are refused (default) or held until restore().
   * 'freeze' instead keeps the current connections open but silent in both directions (a network
   * partition without resets) and holds new ones; restore() lets the frozen bytes flow again.
   */
  cut(mode?: CutMode): void;
  /** Forwards again; held connections are closed so their clients retry. */
  restore(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host?: string; port?: number } = {}): Promise<TcpProxy> {
  const targetHost = target.host ?? '127.0.0.1';
  const targetPort = target.port ?? 5432;
  interface Pair {
    client: Socket;
    upstream: Socket;
    /** Bytes held back while frozen, each way, in order. */
    toUpstream: Buffer[];
    toClient: Buffer[];
  }
  const pairs = new Set<Pair>();
  const held = new Set<Socket>();
  let mode: CutMode | undefined;
  let swallowing = false;
  let accepted = 0;

  const server: Server = createServer((client) => {
    accepted++;
    client.on('error', () => undefined);
    if (mode === 'refuse') {
      client.destroy();
      return;
    }
    if (mode === 'hold' || mode === 'freeze') {
      held.add(client);
      client.pause();
      client.once('close', () => held.delete(client));
      return;
    }
    const upstream = connect({ host: targetHost, port: targetPort });
    upstream.on('error', () => undefined);
    const pair: Pair = { client, upstream, toUpstream: [], toClient: [] };
    pairs.add(pair);
    const teardown = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.once('close', teardown);
    upstream.once('close', teardown);
    // PostgreSQL traffic in tests is small: no backpressure handling needed.
    client.on('data', (chunk: Buffer) => {
      if (mode === 'freeze') pair.toUpstream.push(chunk);
      else upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (swallowing) return;
      if (mode === 'freeze') pair.toClient.push(chunk);
      else client.write(chunk);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address !== 'object') throw new Error('proxy has no address');
  const port = address.port;

  return {
    port,
    get isCut() {
      return mode !== undefined;
    },
    get accepted() {
      return accepted;
    },
    get open() {
      return pairs.size;
    },
    urlFor(url: string) {
      const parsed = new URL(url);
      parsed.hostname = '127.0.0.1';
      parsed.port = String(port);
      return parsed.toString();
    },
    swallowReplies() {
      swallowing = true;
    },
    cut(cutMode: CutMode = 'refuse') {
      mode = cutMode;
      swallowing = false;
      if (cutMode === 'freeze') return;
      for (const { client, upstream } of [...pairs]) {
        client.destroy();
        upstream.destroy();
      }
      pairs.clear();
    },
    restore() {
      mode = undefined;
      swallowing = false;
      for (const pair of pairs) {
        for (const chunk of pair.toUpstream.splice(0)) pair.upstream.write(chunk);
        for (const chunk of pair.toClient.splice(0)) pair.client.write(chunk);
      }
      for (const socket of [...held]) socket.destroy();
      held.clear();
    },
    async close() {
      mode = 'refuse';
      for (const { client, upstream } of [...pairs]) {
        client.destroy();
        upstream.destroy();
      }
      for (const socket of held) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
