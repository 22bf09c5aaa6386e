#!/usr/bin/env node
// pulse-client launcher (package.json "bin"): runs the compiled client when it has been built
// (npm run build / npm start → dist/), otherwise the TypeScript source through tsx, so that
// `npx pulse-client` works in a fresh clone right after `npm ci`.
import { existsSync } from 'node:fs';

const built = new URL('../dist/src/cli/main.js', import.meta.url);
if (existsSync(built)) {
  await import(built.href);
} else {
  let register;
  try {
    ({ register } = await import('tsx/esm/api'));
  } catch {
    process.stderr.write('pulse-client: not built and tsx is not installed; run `npm ci && npm run build` first\n');
    process.exit(70);
  }
  register();
  await import(new URL('../src/cli/main.ts', import.meta.url).href);
}
