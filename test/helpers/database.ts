// A uniquely named PostgreSQL database per test file, dropped afterwards, on the server that
// TEST_DATABASE_URL names: CI's system PostgreSQL, or the throwaway one that scripts/run-tests.mjs
// starts when it is unset.

import { randomBytes } from 'node:crypto';
import pg from 'pg';

// A file run alone (node --test, not through the runner) has no server to use: say how to get one,
// once, rather than fail in every suite.
if (!process.env.TEST_DATABASE_URL) {
  console.error(
    'TEST_DATABASE_URL is not set: run the tests with `npm test` or `node scripts/run-tests.mjs <file>`, which start a throwaway PostgreSQL, or set TEST_DATABASE_URL=postgres://...',
  );
  process.exit(1);
}

export const TEST_DATABASE_URL: string = process.env.TEST_DATABASE_URL;

export interface TestDatabase {
  url: string;
  name: string;
  query<R = Record<string, unknown>>(text: string, params?: unknown[]): Promise<R[]>;
  drop(): Promise<void>;
}

export async function createTestDatabase(prefix = 'pulse_test'): Promise<TestDatabase> {
  const name = `${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  await admin.end();
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${name}`;
  const pool = new pg.Pool({ connectionString: url.toString(), max: 2 });
  return {
    url: url.toString(),
    name,
    async query<R>(text: string, params?: unknown[]) {
      return (await pool.query(text, params)).rows as R[];
    },
    async drop() {
      await pool.end();
      const cleanup = new pg.Client({ connectionString: TEST_DATABASE_URL });
      await cleanup.connect();
      await cleanup.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
      await cleanup.end();
    },
  };
}
