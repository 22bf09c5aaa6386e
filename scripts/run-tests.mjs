#!/usr/bin/env node
// Runs every *.test.ts under the given folders (default: test/) with Node's own runner through tsx.
// Node 20's --test cannot glob TypeScript files itself, so we list them here.
// The PostgreSQL suites (the files that import test/helpers/database.ts) use TEST_DATABASE_URL; when
// it is unset, a throwaway server (scripts/throwaway-postgres.ts) is started for the run and removed
// afterwards, also when the run fails or is interrupted.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';

function collect(dir, out) {
  for (const entry of readdirSync(dir).sort()) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) collect(path, out);
    else if (entry.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

const roots = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const files = (roots.length ? roots : ['test']).flatMap((r) => (statSync(r).isDirectory() ? collect(r, []) : [r]));
if (files.length === 0) {
  console.error('run-tests: no test files found');
  process.exit(1);
}

let postgres;
const env = { ...process.env };
if (!env.TEST_DATABASE_URL && files.some((file) => readFileSync(file, 'utf8').includes('helpers/database'))) {
  const { tsImport } = await import('tsx/esm/api');
  const { startThrowawayPostgres } = await tsImport('./throwaway-postgres.ts', import.meta.url);
  try {
    postgres = await startThrowawayPostgres();
  } catch (error) {
    console.error(`run-tests: TEST_DATABASE_URL is unset and no throwaway PostgreSQL could be started: ${error.message}`);
    process.exit(1);
  }
  env.TEST_DATABASE_URL = postgres.url;
  console.error(`run-tests: TEST_DATABASE_URL is unset: a throwaway PostgreSQL on 127.0.0.1:${postgres.port} serves this run`);
}

const concurrency = process.env.TEST_CONCURRENCY ?? '2';
const child = spawn(
  process.execPath,
  ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, ...process.argv.slice(2).filter((a) => a.startsWith('--')), ...files],
  { stdio: 'inherit', env },
);
// On Ctrl-C (which reaches the tests too) or a signal to this process alone: the tests end first,
// then the server is stopped. Should this process die outright, the server's watchdog cleans up.
let signalled;
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    signalled ??= signal;
    child.kill(signal);
  });
}
const status = await new Promise((done) => child.once('exit', (code) => done(code ?? 1)));
try {
  await postgres?.stop();
} catch (error) {
  console.error(`run-tests: ${error.message}`);
  process.exit(1);
}
process.exit(signalled ? 128 + constants.signals[signalled] : status);
