// PulseClient: Pulse's JSON protocol (docs/design.md §3) for applications, in browsers and in
// Node ≥ 20. It keeps one connection open: it reconnects with capped exponential backoff and
// full jitter, at once after a drain (1001), and when the server falls silent; it stops, with a
// PulseError saying why, when the server refuses the connection for a reason retrying cannot fix.
// Requests are correlated with their answers and never hang. Follow a connection:
//   connect() → open(): name checked, token fetched, socket opened → welcome → 'open', snapshot
//   of who is online → frames (onFrame) → the socket closes (onDropped) → a refusal is explained
//   by the HTTP pre-check (explainRefusal) → stop, or schedule the next attempt → open() again.

import { CLOSE_CODE_MEANING, CloseCode, ERROR_CODE_MEANING, HTTP_ERROR_CODES, RETRYABLE_HTTP_ERROR_CODES, type HttpErrorBody } from '../protocol/codes.js';
import type { ClientFrame, PresenceFrame, ServerFrame, TimeFrame, UsersRequest, WelcomeFrame } from '../protocol/frames.js';
import { parseServerFrame } from '../protocol/frames.js';
import { NAME_PATTERN, NAME_RULE } from '../protocol/names.js';
import { DEFAULT_BACKOFF, backoffDelay, drainDelay, type BackoffPolicy } from './backoff.js';
import { OnlineList, type OnlineEntry } from './online-list.js';
import { PulseError } from './pulse-error.js';

export type ClientState = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** What PulseClient needs of a WebSocket: the browser's, Node 22's global one and `ws` all fit. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}
export type WebSocketFactory = new (url: string) => WebSocketLike;

export interface PulseClientOptions {
  /** The JSON protocol endpoint, e.g. `ws://localhost:8000/ws` (wss:// behind TLS). */
  url: string;
  /** Display name in open mode; omit for a guest name. Checked against the server's rule before connecting. */
  name?: string;
  /** Called before every connect and reconnect, so that an expiring token is renewed. */
  getToken?: () => string | Promise<string>;
  /** Receive presence messages and keep `online` (default true). */
  presence?: boolean;
  /** A request with no answer after this long fails with TIMEOUT (default 30 s). */
  requestTimeoutMs?: number;
  /** No frame for this long means the connection is dead: reconnect (default 2.5 s, a tick and a half past the expected second). */
  silenceMs?: number;
  backoff?: Partial<BackoffPolicy>;
  /** A connection open this long resets the backoff (default 5 s). */
  stableAfterMs?: number;
  /**
   * Reconnect after a failure or a drop (default true). False: the first failure closes the
   * client and rejects connect() with it (one-shot tools).
   */
  reconnect?: boolean;
  /** The HTTP pre-check that explains a refused connection (default: `api/admission` next to the endpoint). */
  admissionUrl?: string;
  /** Defaults: the global WebSocket where there is one, else the `ws` package; the global fetch. */
  WebSocket?: WebSocketFactory;
  fetch?: typeof fetch;
  random?: () => number;
}

export interface FibonacciAnswer {
  n: number;
  /** Exact decimal, with '-' for negative results. */
  value: string;
  /** Decimal digits, sign excluded. */
  digits: number;
}

export interface UsersAnswer {
  online: number;
  users: { id: string; name: string; sessions: number; since: string }[];
  truncated: boolean;
}

export interface RequestOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
}

/** The next attempt is scheduled (state 'reconnecting'): when, and why the last one ended. */
export interface RetryInfo {
  /** Milliseconds until the next attempt. */
  delayMs: number;
  /** Why the connection dropped or was refused; always retryable. */
  error: PulseError;
  /** The close code and reason, when an open connection closed (absent for a refused or failed attempt). */
  close?: { code: number; reason: string };
}

export interface PulseClientEvents {
  /** Every frame from the server, before the events below (for tools that show the raw protocol). */
  frame: ServerFrame;
  welcome: WelcomeFrame;
  time: TimeFrame;
  presence: PresenceFrame;
  /** The online list changed (a snapshot or a presence message). */
  online: readonly OnlineEntry[];
  state: ClientState;
  /** After the 'reconnecting' state: for a countdown ("reconnecting in 3 s"). */
  retry: RetryInfo;
  error: PulseError;
}

type Listener<T> = (payload: T) => void;

/** A request waiting for its answer. Answers come in request order, so the oldest is the next. */
interface Pending {
  /** The id the frame carries; undefined for a frame sent as given (send()), whose answer is taken as it comes. */
  id: string | undefined;
  settle: (frame: ServerFrame | PulseError) => void;
  /** Settled early (timeout, abort): its answer, when it comes, is dropped. */
  done: boolean;
}

/** A refusal without a code this client knows (a proxy's, a newer server's): these statuses are final. */
const FINAL_STATUSES = new Set([400, 401, 403, 404]);
/** A handshake that has not produced a welcome by then is given up. */
const WELCOME_TIMEOUT_MS = 10_000;

export class PulseClient {
  private readonly options: PulseClientOptions;
  private readonly backoff: BackoffPolicy;
  private readonly random: () => number;
  private readonly listeners = new Map<keyof PulseClientEvents, Set<Listener<never>>>();
  private readonly onlineList = new OnlineList();
  private socket: WebSocketLike | undefined;
  private socketClass: WebSocketFactory | undefined;
  private currentState: ClientState = 'closed';
  private lastWelcome: WelcomeFrame | undefined;
  /** False before connect() and after close() or a final refusal. */
  private wanted = false;
  /**
   * Counts close() and stop(): an attempt that awaited (a token, the refusal's explanation) goes on
   * only if none came meanwhile, even when connect() has made the client wanted again since.
   */
  private generation = 0;
  private attempt = 0;
  private nextRequestId = 0;
  private pending: Pending[] = [];
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private silenceTimer: ReturnType<typeof setTimeout> | undefined;
  private stableTimer: ReturnType<typeof setTimeout> | undefined;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;
  /** The token of the current connection (getToken's latest), for its expiry. */
  private token: string | undefined;
  private waitingForWelcome: { resolve: (welcome: WelcomeFrame) => void; reject: (err: PulseError) => void }[] = [];

  constructor(options: PulseClientOptions) {
    this.options = options;
    this.backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
    this.random = options.random ?? Math.random;
  }

  get state(): ClientState {
    return this.currentState;
  }

  /** The welcome of the open connection, if there is one. */
  get welcome(): WelcomeFrame | undefined {
    return this.currentState === 'open' ? this.lastWelcome : undefined;
  }

  /** Who is online, ordered by name: a snapshot kept up to date by presence messages. */
  get online(): readonly OnlineEntry[] {
    return this.onlineList.list;
  }

  /** Users online across all instances, as the server last said: more than `online.length` when the list is truncated. */
  get onlineCount(): number {
    return this.onlineList.count;
  }

  /** False while `online` may be partial: before the first snapshot, after a drop, or past a truncated message. */
  get onlineComplete(): boolean {
    return this.onlineList.complete;
  }

  on<E extends keyof PulseClientEvents>(event: E, listener: Listener<PulseClientEvents[E]>): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener as Listener<never>);
    return () => void set.delete(listener as Listener<never>);
  }

  /**
   * Opens the connection and keeps it open. Resolves on the welcome; rejects with a PulseError
   * when retrying cannot help (a refused name, token or origin), or when close() is called first.
   */
  connect(): Promise<WelcomeFrame> {
    if (this.currentState === 'open' && this.lastWelcome) return Promise.resolve(this.lastWelcome);
    const welcomed = new Promise<WelcomeFrame>((resolve, reject) => this.waitingForWelcome.push({ resolve, reject }));
    if (!this.wanted) {
      this.wanted = true;
      this.attempt = 0;
      this.setState('connecting');
      void this.open();
    }
    return welcomed;
  }

  /** F(n), exact. n beyond ±maxN rejects with OUT_OF_RANGE, a non-integer with INVALID_NUMBER. */
  async fibonacci(n: number | bigint, options: RequestOptions = {}): Promise<FibonacciAnswer> {
    // Written by hand so that a bigint reaches the server exactly, as JSON number text.
    const nText = typeof n === 'bigint' ? n.toString() : JSON.stringify(n);
    const frame = await this.request((id) => `{"type":"fibonacci","n":${nText},"id":"${id}"}`, options);
    if (frame.type !== 'fibonacci') throw unexpected(frame);
    return { n: frame.n, value: frame.value, digits: frame.digits };
  }

  /** Who is online across all instances (at most 1000 users, ordered by name; `truncated` past that). */
  async users(options: RequestOptions = {}): Promise<UsersAnswer> {
    const frame = await this.request((id) => JSON.stringify({ type: 'users', id } satisfies UsersRequest), options);
    if (frame.type !== 'users') throw unexpected(frame);
    return { online: frame.online, users: frame.users, truncated: frame.truncated === true };
  }

  /**
   * Sends any client frame, or raw text, and resolves with the server's answer to it, whatever
   * its type, error frames included (tools that speak the protocol directly).
   */
  send(frame: ClientFrame | string, options: RequestOptions = {}): Promise<ServerFrame> {
    return this.request(() => (typeof frame === 'string' ? frame : JSON.stringify(frame)), options, true);
  }

  /** Closes the connection for good; pending requests and a pending connect() reject with CLOSED. */
  close(): void {
    const wasWanted = this.wanted;
    this.wanted = false;
    this.generation++;
    this.clearTimers();
    const socket = this.socket;
    this.socket = undefined;
    if (socket) {
      detach(socket);
      socket.close(CloseCode.NORMAL, 'bye');
    }
    const closed = new PulseError('CLOSED', 'the client was closed');
    this.failPending(closed);
    this.rejectWelcomeWaiters(closed);
    if (wasWanted || this.currentState !== 'closed') this.setState('closed');
  }

  // ------------------------------------------------------------------ one connection

  private async open(): Promise<void> {
    const generation = this.generation;
    const { name } = this.options;
    if (name !== undefined && !NAME_PATTERN.test(name)) {
      this.stop(new PulseError('INVALID_NAME', `${JSON.stringify(name)}: ${NAME_RULE}`, false, 400));
      return;
    }
    let query: URLSearchParams;
    try {
      query = await this.connectionQuery();
      this.socketClass ??= await webSocketClass(this.options.WebSocket);
    } catch (err) {
      if (this.generation === generation) this.retryAfterFailure(new PulseError('DISCONNECTED', `could not prepare the connection: ${(err as Error).message}`, true));
      return;
    }
    if (!this.wanted || this.generation !== generation) return;
    const url = withQuery(this.options.url, query);
    let socket: WebSocketLike;
    try {
      socket = new this.socketClass(url);
    } catch (err) {
      this.stop(new PulseError('PROTOCOL', `cannot open ${this.options.url}: ${(err as Error).message}`));
      return;
    }
    this.socket = socket;
    let welcomed = false;
    this.watchSilence(socket, WELCOME_TIMEOUT_MS);
    socket.onmessage = (event) => {
      if (this.socket !== socket || typeof event.data !== 'string') return;
      const frame = parseServerFrame(event.data);
      if (frame?.type === 'welcome') welcomed = true;
      this.watchSilence(socket, this.options.silenceMs ?? 2_500);
      if (frame) this.onFrame(frame);
    };
    // A close event follows an error; the error says why an attempt failed where the runtime tells (Node, not browsers).
    let failure: unknown;
    socket.onerror = (event) => {
      failure = (event as { error?: unknown }).error;
    };
    socket.onclose = (event) => {
      if (this.socket === socket) void this.onDropped(event.code, event.reason, welcomed, query, failure);
    };
  }

  private async connectionQuery(): Promise<URLSearchParams> {
    const query = new URLSearchParams();
    if (this.options.getToken) {
      this.token = await this.options.getToken();
      query.set('token', this.token);
    }
    else if (this.options.name !== undefined) query.set('name', this.options.name);
    if (this.options.presence === false) query.set('presence', '0');
    return query;
  }

  private onFrame(frame: ServerFrame): void {
    this.emit('frame', frame);
    switch (frame.type) {
      case 'welcome':
        this.onWelcome(frame);
        return;
      case 'time':
        this.emit('time', frame);
        return;
      case 'presence':
        if (this.onlineList.applyPresence(frame)) this.requestSnapshot();
        this.emit('presence', frame);
        this.emit('online', this.onlineList.list);
        return;
      default:
        this.onAnswer(frame);
    }
  }

  private onWelcome(welcome: WelcomeFrame): void {
    this.lastWelcome = welcome;
    this.setState('open');
    this.stableTimer = setTimeout(() => (this.attempt = 0), this.options.stableAfterMs ?? 5_000);
    const waiters = this.waitingForWelcome;
    this.waitingForWelcome = [];
    for (const waiter of waiters) waiter.resolve(welcome);
    this.emit('welcome', welcome);
    if (this.options.presence !== false) this.requestSnapshot();
    this.scheduleRefresh();
  }

  /**
   * Before the token expires, a new one from getToken() replaces it on the open connection
   * (a `refresh`), so that the server's expiry close never comes. Refreshed when a fifth of its
   * remaining life is left, between 1 s and 60 s before its exp.
   */
  private scheduleRefresh(): void {
    clearTimeout(this.refreshTimer);
    const exp = this.token === undefined ? undefined : tokenExpiry(this.token);
    if (exp === undefined || !this.options.getToken) return;
    const remaining = exp * 1000 - Date.now();
    const margin = Math.min(60_000, Math.max(1_000, remaining / 5));
    this.refreshTimer = setTimeout(() => void this.refresh(), Math.max(0, remaining - margin));
  }

  private async refresh(): Promise<void> {
    try {
      const token = await this.options.getToken!();
      const answer = await this.send({ type: 'refresh', token });
      if (answer.type === 'error') throw new PulseError(answer.code, answer.message);
      this.token = token;
      this.scheduleRefresh();
    } catch (err) {
      // The server closes at the old exp (1008) and the reconnect fetches a token again.
      if (this.currentState === 'open') this.emit('error', err instanceof PulseError ? err : new PulseError('DISCONNECTED', `token refresh failed: ${(err as Error).message}`, true));
    }
  }

  /** Answers come in request order: this one is the oldest pending request's. */
  private onAnswer(frame: Exclude<ServerFrame, WelcomeFrame | TimeFrame | PresenceFrame>): void {
    if (frame.type === 'users') {
      this.onlineList.applySnapshot(frame);
      this.emit('online', this.onlineList.list);
    }
    const head = this.pending.shift();
    if (!head || (head.id !== undefined && frame.id !== null && frame.id !== head.id)) {
      if (head) this.pending.unshift(head);
      if (frame.type === 'error') this.emit('error', new PulseError(frame.code, frame.message || ERROR_CODE_MEANING[frame.code] || frame.code));
      return;
    }
    if (!head.done) head.settle(frame);
  }

  private async onDropped(code: number, reason: string, welcomed: boolean, query: URLSearchParams, failure?: unknown): Promise<void> {
    const generation = this.generation;
    this.socket = undefined;
    this.clearTimers();
    this.onlineList.markStale();
    this.failPending(new PulseError('DISCONNECTED', `the connection closed (${describeClose(code, reason)}) before the answer came`, true));
    if (!this.wanted) return;
    if (!welcomed) {
      // A browser cannot read why an upgrade was refused: the pre-check answers the same question as JSON.
      const refusal = await this.explainRefusal(query, code, reason, failure);
      if (!this.wanted || this.generation !== generation) return;
      if (!refusal.retryable) this.stop(refusal);
      else this.retryAfterFailure(refusal);
      return;
    }
    const closed = new PulseError('DISCONNECTED', `the connection closed: ${describeClose(code, reason)}`, true);
    if (this.options.reconnect === false) {
      this.stop(closed);
      return;
    }
    this.setState('reconnecting');
    if (code === CloseCode.GOING_AWAY) {
      this.attempt = 0;
      this.schedule(drainDelay(this.backoff, this.random), closed, { code, reason });
    } else {
      this.emit('error', closed);
      this.schedule(backoffDelay(this.backoff, this.attempt++, this.random), closed, { code, reason });
    }
  }

  private async explainRefusal(query: URLSearchParams, code: number, reason: string, failure: unknown): Promise<PulseError> {
    const fetchFn = this.options.fetch ?? globalThis.fetch;
    const fallback = new PulseError('DISCONNECTED', `could not connect to ${this.options.url} (${describeClose(code, reason)})`, true, undefined, failure);
    if (typeof fetchFn !== 'function') return fallback;
    try {
      const response = await fetchFn(withQuery(this.options.admissionUrl ?? admissionUrlFor(this.options.url), query), {
        signal: AbortSignal.timeout(5_000),
      });
      if (response.ok) {
        await response.arrayBuffer();
        return fallback; // admission would take it now: the failure was something else, and may pass
      }
      const body = (await response.json()) as Partial<HttpErrorBody>;
      const known = typeof body.code === 'string' && Object.hasOwn(HTTP_ERROR_CODES, body.code);
      const retryable = known ? RETRYABLE_HTTP_ERROR_CODES.has(body.code!) : !FINAL_STATUSES.has(response.status);
      return new PulseError(body.code ?? 'DISCONNECTED', body.message ?? `refused with HTTP ${response.status}`, retryable, response.status);
    } catch {
      return fallback; // the server is not there at all: keep trying
    }
  }

  private retryAfterFailure(error: PulseError): void {
    if (this.options.reconnect === false) {
      this.stop(error);
      return;
    }
    this.emit('error', error);
    this.setState('reconnecting');
    this.schedule(backoffDelay(this.backoff, this.attempt++, this.random), error);
  }

  private schedule(delayMs: number, error: PulseError, close?: RetryInfo['close']): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.wanted) void this.open();
    }, delayMs);
    this.emit('retry', close ? { delayMs, error, close } : { delayMs, error });
  }

  /** Stops for good: retrying cannot help. */
  private stop(error: PulseError): void {
    this.wanted = false;
    this.generation++;
    this.clearTimers();
    this.rejectWelcomeWaiters(error);
    this.setState('closed');
    this.emit('error', error);
  }

  /** Restarts the silence watch: no frame within `ms` drops the connection. */
  private watchSilence(socket: WebSocketLike, ms: number): void {
    clearTimeout(this.silenceTimer);
    this.silenceTimer = setTimeout(() => {
      if (this.socket !== socket) return;
      detach(socket);
      socket.close(4000, 'silent');
      void this.onDropped(CloseCode.ABNORMAL, `no frame for ${ms} ms`, true, new URLSearchParams());
    }, ms);
  }

  // ------------------------------------------------------------------ requests

  /** `raw`: the answer resolves whatever it is; otherwise an error frame rejects with a PulseError. */
  private request(frame: (id: string) => string, options: RequestOptions, raw = false): Promise<ServerFrame> {
    const socket = this.socket;
    if (!socket || this.currentState !== 'open' || socket.readyState !== 1) {
      return Promise.reject(new PulseError('DISCONNECTED', 'not connected', true));
    }
    if (options.signal?.aborted) return Promise.reject(new PulseError('ABORTED', 'the request was aborted'));
    const id = `c${++this.nextRequestId}`;
    return new Promise<ServerFrame>((resolve, reject) => {
      const timeoutMs = options.timeoutMs ?? this.options.requestTimeoutMs ?? 30_000;
      const timer = setTimeout(() => finish(new PulseError('TIMEOUT', `no answer within ${timeoutMs} ms`, true)), timeoutMs);
      const onAbort = () => finish(new PulseError('ABORTED', 'the request was aborted'));
      options.signal?.addEventListener('abort', onAbort, { once: true });
      const pending: Pending = { id: raw ? undefined : id, done: false, settle: (answer) => finish(answer) };
      const finish = (answer: ServerFrame | PulseError) => {
        if (pending.done) return;
        pending.done = true;
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        if (answer instanceof PulseError) reject(answer);
        else if (answer.type === 'error' && !raw) reject(new PulseError(answer.code, answer.message || ERROR_CODE_MEANING[answer.code], answer.code === 'RATE_LIMITED' || answer.code === 'BUSY'));
        else resolve(answer);
      };
      this.pending.push(pending);
      socket.send(frame(id));
    });
  }

  /** Asks for `users` to rebuild `online`; presence messages wait for the answer. */
  private requestSnapshot(): void {
    const socket = this.socket;
    if (!socket || socket.readyState !== 1) return;
    this.onlineList.expectSnapshot();
    const id = `c${++this.nextRequestId}`;
    this.pending.push({ id, done: false, settle: () => undefined });
    socket.send(JSON.stringify({ type: 'users', id } satisfies UsersRequest));
  }

  private failPending(error: PulseError): void {
    const pending = this.pending;
    this.pending = [];
    for (const request of pending) request.settle(error);
  }

  // ------------------------------------------------------------------ plumbing

  private rejectWelcomeWaiters(error: PulseError): void {
    const waiters = this.waitingForWelcome;
    this.waitingForWelcome = [];
    for (const waiter of waiters) waiter.reject(error);
  }

  private clearTimers(): void {
    clearTimeout(this.retryTimer);
    clearTimeout(this.silenceTimer);
    clearTimeout(this.stableTimer);
    clearTimeout(this.refreshTimer);
    this.retryTimer = this.silenceTimer = this.stableTimer = this.refreshTimer = undefined;
  }

  private setState(state: ClientState): void {
    if (state === this.currentState) return;
    this.currentState = state;
    this.emit('state', state);
  }

  private emit<E extends keyof PulseClientEvents>(event: E, payload: PulseClientEvents[E]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        (listener as Listener<PulseClientEvents[E]>)(payload);
      } catch (err) {
        // A listener's bug must not break the connection: report it where it can be seen.
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }
}

/** A JWT's `exp`, read without verifying it (the server does that); undefined when it has none. */
function tokenExpiry(token: string): number | undefined {
  const payload = token.split('.')[1];
  if (!payload) return undefined;
  try {
    const json = atob(payload.replace(/-/g, '+').replace(/_/g, '/'));
    const exp = (JSON.parse(json) as { exp?: unknown }).exp;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp : undefined;
  } catch {
    return undefined;
  }
}

function unexpected(frame: ServerFrame): PulseError {
  return new PulseError('PROTOCOL', `unexpected ${frame.type} frame in answer`);
}

function describeClose(code: number, reason: string): string {
  return `${code} ${reason || CLOSE_CODE_MEANING[code] || ''}`.trim();
}

/** Stops listening to a socket being abandoned; its errors still need a listener (`ws` throws without one). */
function detach(socket: WebSocketLike): void {
  socket.onopen = socket.onmessage = socket.onclose = null;
  socket.onerror = ignore;
}

function ignore(): void {}

function withQuery(url: string, query: URLSearchParams): string {
  const target = new URL(url);
  for (const [key, value] of query) target.searchParams.set(key, value);
  return target.toString();
}

/** `api/admission` beside the endpoint, over HTTP: ws://host/ws → http://host/api/admission. */
function admissionUrlFor(endpoint: string): string {
  const http = new URL(endpoint);
  http.protocol = http.protocol === 'wss:' ? 'https:' : 'http:';
  http.search = '';
  return new URL('api/admission', http).toString();
}

/** The global WebSocket where there is one (browsers, Node ≥ 22), else the `ws` package. */
async function webSocketClass(given: WebSocketFactory | undefined): Promise<WebSocketFactory> {
  if (given) return given;
  const global = (globalThis as { WebSocket?: WebSocketFactory }).WebSocket;
  if (typeof global === 'function') return global;
  // A computed name: bundlers for the browser leave it alone, and browsers never reach it.
  const wsPackage = 'ws';
  const loaded = (await import(wsPackage)) as { WebSocket: WebSocketFactory };
  return loaded.WebSocket;
}

