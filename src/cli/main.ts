#!/usr/bin/env node
// pulse-client: command-line client of Pulse's JSON protocol. See `pulse-client --help`.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { USAGE, parseArgs } from './args.js';
import { runInteractive } from './interactive.js';
import { EXIT_USAGE } from './exit-codes.js';
import { runOneShot } from './oneshot.js';

/** The version in the package.json above this file (src/cli/ or dist/src/cli/). */
function version(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'pulse' && pkg.version) return pkg.version;
    } catch {
      // not here; look one level up
    }
    dir = dirname(dir);
  }
  return 'unknown';
}

async function main(argv: readonly string[]): Promise<number> {
  const parsed = parseArgs(argv, process.env);
  if (!parsed.ok) {
    process.stderr.write(`pulse-client: ${parsed.error}\nTry pulse-client --help\n`);
    return EXIT_USAGE;
  }
  const opts = parsed.options;
  switch (opts.mode) {
    case 'help':
      process.stdout.write(USAGE);
      return 0;
    case 'version':
      process.stdout.write(`pulse-client ${version()}\n`);
      return 0;
    case 'fib':
    case 'users':
      return runOneShot(opts, {
        out: (line) => process.stdout.write(`${line}\n`),
        err: (line) => process.stderr.write(`${line}\n`),
      });
    case 'interactive':
      return runInteractive(opts, { input: process.stdin, output: process.stdout, error: process.stderr });
  }
}

// A closed pipe (`pulse-client --users | head -1`) is not an error worth a stack trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Everything is closed by now; don't let a straggling handle keep the process alive.
    setTimeout(() => process.exit(code), 2000).unref();
  },
  (err: unknown) => {
    process.stderr.write(`pulse-client: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(70);
  },
);
