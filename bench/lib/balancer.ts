// A TCP load balancer in front of several server instances, as a Kubernetes Service or nginx
// would be: each new connection goes to the next backend in the rotation; a backend taken out
// (its endpoint removed, before it is stopped) gets no new connections, while the ones it has
// stay until it closes them. A backend that refuses the connection (stopped, not listening yet)
// is skipped for the next one, as kube-proxy's retry does, so a client only sees a failure when
// no backend is listening at all. Loopback only.

import { connect, createServer, type Server, type Socket } from 'node:net';

export interface Balancer {
  port: number;
  /** Routes new connections to these ports, in turn. */
  setBackends(ports: number[]): void;
  /** Connections accepted, and upstream connects refused and retried on the next backend. */
  stats(): { accepted: number; refusedRetried: number; failed: number };
  close(): Promise<void>;
}

export async function startBalancer(ports: number[]): Promise<Balancer> {
  let backends = [...ports];
  let next = 0;
  let accepted = 0;
  let refusedRetried = 0;
  let failed = 0;
  const open = new Set<Socket>();
  const server: Server = createServer((client) => {
    accepted++;
    client.on('error', () => undefined);
    open.add(client);
    client.once('close', () => open.delete(client));
    // The client's first bytes wait in its socket until the upstream is there.
    client.pause();
    // Each backend at most once per connection: bounded by the rotation's length.
    const tries = backends.length;
    const attempt = (tried: number): void => {
      const port = backends[next++ % Math.max(1, backends.length)];
      if (port === undefined || tried >= tries || client.destroyed) {
        failed++;
        client.destroy();
        return;
      }
      const upstream = connect({ port, host: '127.0.0.1' });
      let connected = false;
      upstream.once('connect', () => {
        connected = true;
        open.add(upstream);
        upstream.once('close', () => open.delete(upstream));
        client.on('close', () => upstream.destroy());
        upstream.on('close', () => client.destroy());
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
      });
      upstream.on('error', (error: Error & { code?: string }) => {
        if (!connected && error.code === 'ECONNREFUSED') {
          refusedRetried++;
          upstream.destroy();
          attempt(tried + 1);
          return;
        }
        client.destroy();
      });
    };
    attempt(0);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : 0,
    setBackends(list) {
      backends = [...list];
    },
    stats: () => ({ accepted, refusedRetried, failed }),
    async close() {
      for (const socket of open) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
