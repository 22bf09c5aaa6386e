// Where the files Pulse serves and runs live, whether it runs from src/ (tsx) or dist/ (tsc).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findProjectRoot(start: string): string {
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'web'))) return dir;
    if (dirname(dir) === dir) throw new Error(`cannot find the Pulse project folder above ${start}`);
  }
}

export const PROJECT_ROOT = findProjectRoot(dirname(fileURLToPath(import.meta.url)));
export const WEB_DIR = join(PROJECT_ROOT, 'web');
/** The page's script, bundled from web/app.ts by scripts/build-web.ts (`npm run build`). */
export const WEB_BUNDLE_DIR = join(PROJECT_ROOT, 'dist', 'web');
export const ASYNCAPI_FILE = join(PROJECT_ROOT, 'docs', 'asyncapi.yaml');
export const MIGRATIONS_DIR = join(PROJECT_ROOT, 'src', 'db', 'migrations');
