// Tiny `node --import` modules the bench writes into its cache folder and preloads into the processes it runs.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = fileURLToPath(new URL('.', import.meta.url));
export const REPO_DIR = join(BENCH_DIR, '..');
export const CACHE_DIR = join(BENCH_DIR, '.cache');

// Exits when the bench that started this process is gone (it was reparented), so no server outlives a bench
// that was killed with SIGKILL. One unref'd timer: no work on the process's request path.
const PARENT_WATCH = `const parent = process.ppid;
setInterval(() => { if (process.ppid !== parent) process.exit(0); }, 500).unref();
`;

// The peer gateway listens on all interfaces and has no host option: force every TCP listen onto loopback.
const LOOPBACK_LISTEN = `import net from 'node:net';
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const cb = typeof args[args.length - 1] === 'function' ? args.pop() : undefined;
  const first = args[0];
  let options;
  if (typeof first === 'number' || (typeof first === 'string' && /^\\d+$/.test(first))) {
    options = { port: Number(first) };
    if (typeof args[2] === 'number') options.backlog = args[2];
  } else if (first !== null && typeof first === 'object' && typeof first.port !== 'undefined') {
    options = { ...first };
  } else {
    return listen.apply(this, cb ? [...args, cb] : args);
  }
  options.host = '127.0.0.1';
  return cb ? listen.call(this, options, cb) : listen.call(this, options);
};
`;

function writePreload(name: string, text: string): string {
  const dir = join(CACHE_DIR, 'preload');
  const path = join(dir, name);
  mkdirSync(dir, { recursive: true });
  let current: string | undefined;
  try {
    current = readFileSync(path, 'utf8');
  } catch {
    current = undefined;
  }
  if (current !== text) writeFileSync(path, text);
  return path;
}

export function parentWatchPreload(): string {
  return writePreload('parent-watch.mjs', PARENT_WATCH);
}

export function loopbackListenPreload(): string {
  return writePreload('loopback-listen.mjs', LOOPBACK_LISTEN);
}
