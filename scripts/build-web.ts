// Bundles the web page: web/app.ts with what it imports of src/client and src/protocol, into
// dist/web/app.js, which the server serves at /app.js next to web/'s static files. Part of
// `npm run build`; the browser tests and scripts/screenshot.ts call buildWeb() so that they never
// test a stale bundle. `--watch` rebuilds on every change (while `npm run dev` runs).
import { build, context, type BuildOptions } from 'esbuild';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { WEB_BUNDLE_DIR, WEB_DIR } from '../src/paths.js';

const options: BuildOptions = {
  entryPoints: [join(WEB_DIR, 'app.ts')],
  outfile: join(WEB_BUNDLE_DIR, 'app.js'),
  bundle: true,
  format: 'esm',
  platform: 'browser',
  // Browsers of the last few years: \p{…} regexps, BigInt, AbortSignal.timeout are all native.
  target: 'es2022',
  minify: true,
  sourcemap: 'linked',
  logLevel: 'warning',
  // PulseClient falls back to the `ws` package where there is no global WebSocket: never in a browser.
  external: ['ws'],
};

export async function buildWeb(): Promise<void> {
  await build(options);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.argv.includes('--watch')) await (await context({ ...options, logLevel: 'info' })).watch();
  else await buildWeb();
}
