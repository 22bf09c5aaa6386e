// Gateway: the open connections and their lifecycle. Follow a connection:
//   upgrade.ts (route → handshake check → admission → ws handshake) → accept(): registered, one
//   shared listener of each kind attached, the token's expiry armed, the session opened in
//   presence, the welcome written
//   → its frames go to dispatch.ts; ticks, presence messages and pings come from broadcast.ts
//   → onClose(): unregistered, its place given back to admission, the session closed in presence
//     with the code the server sent (or the peer's), the other text clients told it left
// drain() closes everyone with 1001, waits for the peers' answers, then drops the rest.

import { randomUUID } from 'node:crypto';
import type { WebSocket } from 'ws';
import type { TokenVerifier } from '../auth/token-verifier.js';
import type { Config } from '../config.js';
import type { FibonacciService } from '../fibonacci/service.js';
import type { Logger } from '../log.js';
import type { Presence } from '../presence/presence.js';
import { storableText } from '../presence/storable-text.js';
import { CloseCode } from '../protocol/codes.js';
import { TextProtocol } from '../protocol/messages.js';
import type { Admission, Identity } from './admission.js';
import { Broadcaster } from './broadcast.js';
import { Connection, type Connections } from './connection.js';
import { Dispatcher } from './dispatch.js';
import { welcomeEncoder } from './json-codec.js';
import type { GatewayMetrics } from './metrics.js';
import { RateLimiter } from './rate-limiter.js';

export type GatewayConfig = Pick<
  Config,
  | 'fibMaxN'
  | 'fibMaxInFlight'
  | 'maxMessageBytes'
  | 'rateLimitPerSecond'
  | 'rateLimitBurst'
  | 'slowClientSkipBytes'
  | 'slowClientCloseBytes'
  | 'pingIntervalMs'
>;

/** What the gateway needs of presence: sessions in, changes and the online users out. */
export type GatewayPresence = Pick<Presence, 'instanceId' | 'onlineUsers' | 'open' | 'close' | 'takeChanges'>;

export interface GatewayDeps {
  config: GatewayConfig;
  admission: Admission;
  presence: GatewayPresence;
  fibonacci: Pick<FibonacciService, 'compute'>;
  /** Verifies refreshed tokens; undefined in open mode. */
  tokens: TokenVerifier | undefined;
  metrics: GatewayMetrics;
  log: Logger;
}

/** Longest User-Agent kept with a session. */
const USER_AGENT_MAX = 256;
/** How long peers get to answer the 1001 close of a drain before they are dropped. */
const DRAIN_GRACE_MS = 2_000;
/**
 * Each connection is logged at debug (a reconnect storm would otherwise write two lines per
 * client); at info, one summary line this often says how many opened and closed.
 */
const SUMMARY_INTERVAL_MS = 60_000;

// ws reports protocol violations with these codes; the close code it sends follows them.
const WS_ERROR_CLOSE_CODES: Record<string, number> = {
  WS_ERR_UNSUPPORTED_MESSAGE_LENGTH: CloseCode.MESSAGE_TOO_BIG,
  WS_ERR_INVALID_UTF8: CloseCode.INVALID_PAYLOAD,
};

const CONNECTION = Symbol('pulse.connection');
type SocketWithConnection = WebSocket & { [CONNECTION]: Connection };

function onPong(this: WebSocket): void {
  (this as SocketWithConnection)[CONNECTION].alive = true;
}

function onSocketError(this: WebSocket, err: Error & { code?: string }): void {
  const conn = (this as SocketWithConnection)[CONNECTION];
  conn.closeCode ??= WS_ERROR_CLOSE_CODES[err.code ?? ''] ?? CloseCode.PROTOCOL_ERROR;
  conn.closeReason ??= err.message;
}

export class Gateway {
  readonly connections: Connections = { json: new Set(), text: new Set() };
  private readonly dispatcher: Dispatcher;
  private readonly broadcaster: Broadcaster;
  private readonly encodeWelcome: ReturnType<typeof welcomeEncoder>;
  /** One listener of each kind for every socket; `this` is the socket. */
  private readonly onMessage: (this: WebSocket, data: Buffer, isBinary: boolean) => void;
  private readonly onSocketClose: (this: WebSocket, code: number, reason: Buffer) => void;
  private readonly summaryTimer: NodeJS.Timeout;
  private openedSinceSummary = 0;
  private closedSinceSummary = 0;

  constructor(private readonly deps: GatewayDeps) {
    const { config, presence, metrics } = deps;
    this.dispatcher = new Dispatcher(config, deps.fibonacci, presence.onlineUsers, metrics, deps.log, deps.tokens);
    this.broadcaster = new Broadcaster(this.connections, config, presence, metrics);
    this.encodeWelcome = welcomeEncoder(presence.instanceId, {
      maxN: config.fibMaxN,
      maxMessageBytes: config.maxMessageBytes,
      messagesPerSecond: config.rateLimitPerSecond,
    });
    // The listeners need both the socket (their `this`) and the gateway.
    const dispatcher = this.dispatcher;
    this.onMessage = function (data, isBinary) {
      dispatcher.onFrame((this as SocketWithConnection)[CONNECTION], data, isBinary);
    };
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const gateway = this;
    this.onSocketClose = function (code, reason) {
      gateway.onClose((this as SocketWithConnection)[CONNECTION], code, reason.toString());
    };
    this.summaryTimer = setInterval(() => this.logSummary(), SUMMARY_INTERVAL_MS).unref();
  }

  get connectionCount(): number {
    return this.connections.json.size + this.connections.text.size;
  }

  get isDraining(): boolean {
    return this.deps.admission.isDraining;
  }

  /** Takes over a socket whose upgrade admission admitted; its place in admission's counts is now the connection's. */
  accept(socket: WebSocket, protocol: 'json' | 'text', identity: Identity, remoteAddr: string, userAgent: string | undefined): void {
    const { config, presence, metrics } = this.deps;
    const now = Date.now();
    const conn = new Connection(
      socket,
      randomUUID(),
      identity.userId,
      identity.name,
      protocol,
      remoteAddr,
      userAgent ? userAgent.slice(0, USER_AGENT_MAX) : null,
      now,
      new RateLimiter(config.rateLimitPerSecond, config.rateLimitBurst, now),
      protocol === 'json' && identity.presence,
    );
    this.broadcaster.track(conn);
    this.connections[protocol].add(conn);
    metrics.connectionOpened(protocol);

    // Shared listeners that find their connection on the socket: no closures per connection.
    (socket as SocketWithConnection)[CONNECTION] = conn;
    socket.on('message', this.onMessage);
    socket.on('pong', onPong);
    socket.on('error', onSocketError);
    socket.once('close', this.onSocketClose);

    conn.expireAt(identity.expiresAt);
    presence.open(conn);
    this.openedSinceSummary++;
    this.deps.log.debug({ sessionId: conn.id, userId: conn.userId, protocol, remoteAddr }, 'session opened');
    if (protocol === 'json') {
      conn.send(this.encodeWelcome(conn.id, { id: conn.userId, name: conn.name }, now), config.slowClientCloseBytes);
    }
  }

  /** Called by the clock at every second boundary. */
  tick(epochMs: number): void {
    this.broadcaster.tick(epochMs);
  }

  /** Upgrades get 503 from now on; every client is closed with 1001. Resolves when all are gone or at `deadline`. */
  async drain(deadline: number): Promise<void> {
    clearInterval(this.summaryTimer);
    this.deps.admission.drain();
    this.broadcaster.stop();
    for (const conn of this.all()) conn.close(CloseCode.GOING_AWAY, 'server shutting down');
    // Peers get a moment to answer the close; whoever has not by then is dropped.
    const graceEnd = Math.min(deadline, Date.now() + DRAIN_GRACE_MS);
    while (this.connectionCount > 0 && Date.now() < graceEnd) await new Promise((r) => setTimeout(r, 25));
    for (const conn of this.all()) conn.socket.terminate();
    while (this.connectionCount > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    this.logSummary();
  }

  /** One info line for the connections opened and closed since the last one, when there were any. */
  private logSummary(): void {
    if (this.openedSinceSummary === 0 && this.closedSinceSummary === 0) return;
    this.deps.log.info({ opened: this.openedSinceSummary, closed: this.closedSinceSummary, open: this.connectionCount }, 'connections');
    this.openedSinceSummary = 0;
    this.closedSinceSummary = 0;
  }

  private all(): Connection[] {
    return [...this.connections.json, ...this.connections.text];
  }

  private onClose(conn: Connection, peerCode: number, peerReason: string): void {
    if (!this.connections[conn.protocol].delete(conn)) return;
    const { admission, presence, metrics, config } = this.deps;
    conn.expireAt(undefined);
    admission.release(conn.remoteAddr);

    // The server's own code when it closed; the peer's otherwise (1006 when the TCP connection just ended).
    const code = conn.closeCode ?? peerCode;
    // The peer's reason is any UTF-8, U+0000 included: made storable before it reaches the database.
    const reason = conn.closeReason ?? storableText(peerReason);
    metrics.connectionClosed(conn.protocol, code);
    presence.close(conn, code, reason || null);
    this.closedSinceSummary++;
    this.deps.log.debug({ sessionId: conn.id, userId: conn.userId, code, reason }, 'session closed');

    if (conn.protocol === 'text' && !admission.isDraining) {
      const line = TextProtocol.left(conn.userId);
      for (const other of this.connections.text) other.send(line, config.slowClientCloseBytes);
    }
  }
}
