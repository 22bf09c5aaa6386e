// Cleans up after a throwaway PostgreSQL (scripts/throwaway-postgres.ts) once its owner is gone.
// Usage: node scripts/postgres-watchdog.mjs <folder>; <folder>/data is the server's data directory.
// The owner starts this detached, with stdin a pipe that only the owner holds. End of input means
// the owner closed it (a normal stop) or died (any signal, SIGKILL included, since the kernel closes
// a dead process's pipes): either way stop the server (pid from postmaster.pid) and remove <folder>.
// Plain JavaScript, no dependencies: it must start fast and need nothing that might be gone.
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const folder = process.argv[2];
if (!folder) {
  console.error('usage: postgres-watchdog.mjs <folder>');
  process.exit(2);
}

function alive(pid) {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return error.code === 'EPERM';
  }
  // An exited server whose parent (our dead owner) left it to an init that reaps slowly is a zombie:
  // gone already for our purpose. /proc tells that on Linux; elsewhere trust kill().
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ').pop()?.[0] !== 'Z';
  } catch {
    return true;
  }
}

async function gone(pid, ms) {
  for (const deadline = Date.now() + ms; Date.now() < deadline; await new Promise((r) => setTimeout(r, 50))) {
    if (!alive(pid)) return true;
  }
  return !alive(pid);
}

function postmasterPid() {
  try {
    const pid = Number(readFileSync(join(folder, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined; // never started, or stopped cleanly (postgres removes the file)
  }
}

async function cleanUp() {
  const pid = postmasterPid();
  if (pid && alive(pid)) {
    // Immediate shutdown: the data is thrown away, so there is nothing to checkpoint.
    process.kill(pid, 'SIGQUIT');
    if (!(await gone(pid, 10_000))) {
      // The server runs in its own process group: take its children with it.
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        process.kill(pid, 'SIGKILL');
      }
      await gone(pid, 5_000);
    }
  }
  rmSync(folder, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
}

process.stdin.resume();
process.stdin.once('close', () => {
  cleanUp().then(
    () => process.exit(0),
    (error) => {
      console.error(`postgres-watchdog: ${error.message}`);
      process.exit(1);
    },
  );
});
