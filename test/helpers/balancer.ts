// A TCP load balancer in front of several Pulse instances, as a Kubernetes Service or nginx
// would be: each new connection goes to the next backend in the rotation; a backend taken out
// (its endpoint removed, before it is stopped) gets no new connections, while the ones it has
// stay until it closes them.

import { connect, createServer, type Server, type Socket } from 'node:net';

export interface Balancer {
  port: number;
  /** Routes new connections to these ports, in turn. */
  setBackends(ports: number[]): void;
  close(): Promise<void>;
}

export async function startBalancer(ports: number[]): Promise<Balancer> {
  let backends = [...ports];
  let next = 0;
  const open = new Set<Socket>();
  const server: Server = createServer((client) => {
    client.on('error', () => undefined);
    const port = backends[next++ % backends.length];
    if (port === undefined) {
      client.destroy();
      return;
    }
    const upstream = connect({ port, host: '127.0.0.1' });
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    open.add(client).add(upstream);
    client.once('close', () => open.delete(client));
    upstream.once('close', () => open.delete(upstream));
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : 0,
    setBackends(list) {
      backends = [...list];
    },
    async close() {
      for (const socket of open) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
