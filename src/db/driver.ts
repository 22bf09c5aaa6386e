// One small interface over the two drivers: `pg` for a PostgreSQL server, PGlite for the
// embedded quick start. Everything above this file speaks plain SQL with $n parameters.
import { mkdirSync } from 'node:fs';
import pg from 'pg';
import type { Logger } from '../log.js';

export interface Queryable {
  /**
   * `prepareAs` names a statement that runs often: on a PostgreSQL server it is parsed and planned
   * once per connection instead of on every call. PGlite, and queries inside transaction(), ignore it.
   */
  query<R = Record<string, unknown>>(text: string, params?: unknown[], prepareAs?: string): Promise<R[]>;
}

export interface Transaction extends Queryable {
  /** Runs several statements at once (migrations). */
  exec(sql: string): Promise<void>;
}

export interface Db extends Queryable {
  readonly kind: 'pg' | 'pglite';
  /**
   * Runs `fn` in one transaction on one connection, whose statements may take up to an hour:
   * migrations, which may build an index over hundreds of millions of rows.
   */
  transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T>;
  /**
   * Subscribes to NOTIFY on `channel`. `onConnected` runs every time the subscription is (re)established,
   * after which notifications may have been missed: the caller resynchronises there.
   */
  listen(channel: string, onMessage: (payload: string) => void, onConnected: () => void): Promise<void>;
  close(): Promise<void>;
}

// pg returns int8/numeric as strings; our counts fit in a double.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

/** How long a statement inside transaction() may take (migrations). */
const TRANSACTION_QUERY_TIMEOUT_MS = 3_600_000;

export interface PgOptions {
  /** Where the LISTEN session connects (a transaction-mode pool cannot hold one); default the URL. */
  listenUrl?: string;
  /** How long a pool query may take: 10 s. */
  queryTimeoutMs?: number;
}

export function createPgDb(url: string, log: Logger, options: PgOptions = {}): Db {
  const listenUrl = options.listenUrl ?? url;
  const pool = new pg.Pool({
    connectionString: url,
    max: 4,
    connectionTimeoutMillis: 3_000,
    idleTimeoutMillis: 30_000,
    // A query that hangs (a half-open TCP connection to a lost server) must fail so the writer can retry.
    query_timeout: options.queryTimeoutMs ?? 10_000,
    keepAlive: true,
  });
  // Idle clients that lose the server emit here; without a listener the process would crash.
  pool.on('error', (err) => log.warn({ err: err.message }, 'database connection lost'));
  // A checked-out client has no pool listener, and pool.query's own one fires once: a second error
  // (the server terminating a connection whose statement already failed, say) would crash Pulse.
  pool.on('connect', (client) => client.on('error', (err) => log.debug({ err: err.message }, 'database connection error')));

  let closed = false;
  let listener: pg.Client | undefined;
  let retryTimer: NodeJS.Timeout | undefined;

  const db: Db = {
    kind: 'pg',
    async query<R>(text: string, params?: unknown[], prepareAs?: string) {
      const result = await pool.query({ text, values: params, name: prepareAs });
      return result.rows as R[];
    },
    async transaction<T>(fn: (tx: Transaction) => Promise<T>) {
      const client = await pool.connect();
      // Each statement here may take an hour, not the pool's 10 s: a migration's index build takes
      // about 0.4 s per million sessions, and cut short it would be retried for ever.
      const run = (text: string, values?: unknown[]) => client.query({ text, values, query_timeout: TRANSACTION_QUERY_TIMEOUT_MS } as pg.QueryConfig);
      try {
        await run('BEGIN');
        const tx: Transaction = {
          async query<R>(text: string, params?: unknown[]) {
            return (await run(text, params)).rows as R[];
          },
          async exec(sql: string) {
            await run(sql);
          },
        };
        const value = await fn(tx);
        await run('COMMIT');
        client.release();
        return value;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        client.release(true); // its state is unknown (a statement may have timed out): not back in the pool
        throw err;
      }
    },
    async listen(channel, onMessage, onConnected) {
      let delay = 100;
      const connect = async (): Promise<void> => {
        if (closed) return;
        const client = new pg.Client({ connectionString: listenUrl, connectionTimeoutMillis: 3_000, keepAlive: true });
        const retry = () => {
          if (closed || retryTimer) return;
          listener = undefined;
          client.end().catch(() => undefined);
          retryTimer = setTimeout(() => {
            retryTimer = undefined;
            void connect();
          }, delay);
          delay = Math.min(delay * 2, 1_000);
        };
        client.on('error', (err) => {
          log.warn({ err: err.message }, 'database listener lost; reconnecting');
          retry();
        });
        client.on('end', retry);
        client.on('notification', (msg) => {
          if (msg.channel === channel && msg.payload !== undefined) onMessage(msg.payload);
        });
        try {
          await client.connect();
          await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
          listener = client;
          delay = 100;
          onConnected();
        } catch (err) {
          log.warn({ err: (err as Error).message }, 'database listener could not connect; retrying');
          retry();
        }
      };
      await connect();
    },
    async close() {
      closed = true;
      if (retryTimer) clearTimeout(retryTimer);
      await listener?.end().catch(() => undefined);
      await pool.end().catch(() => undefined);
    },
  };
  return db;
}

export async function createPgliteDb(dataDir: string): Promise<Db> {
  const { PGlite } = await import('@electric-sql/pglite');
  if (dataDir !== ':memory:') mkdirSync(dataDir, { recursive: true });
  const lite = await PGlite.create(dataDir === ':memory:' ? undefined : dataDir);
  const db: Db = {
    kind: 'pglite',
    async query<R>(text: string, params?: unknown[]) {
      return (await lite.query<R>(text, params)).rows;
    },
    transaction<T>(fn: (tx: Transaction) => Promise<T>) {
      return lite.transaction((tx) =>
        fn({
          async query<R>(text: string, params?: unknown[]) {
            return (await tx.query<R>(text, params)).rows;
          },
          async exec(sql: string) {
            await tx.exec(sql);
          },
        }),
      );
    },
    async listen(channel, onMessage, onConnected) {
      await lite.listen(channel, onMessage);
      onConnected();
    },
    async close() {
      await lite.close();
    },
  };
  return db;
}
