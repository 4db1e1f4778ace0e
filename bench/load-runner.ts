// Runs the load client as its own process, pinned to the load CPU, and returns its result.
import { parseResultLine, type LoadResult, type LoadSpec } from './load-client.js';
import { REPO_DIR } from './preloads.js';
import { spawnChild } from './processes.js';
import { LOAD_CPU } from './targets.js';

export async function runLoadClient(spec: LoadSpec): Promise<LoadResult> {
  const child = spawnChild('load', process.execPath, ['--import', 'tsx', 'bench/load-client.ts', JSON.stringify(spec), '--watch-stdin'], {
    cpu: LOAD_CPU,
    cwd: REPO_DIR,
    stdout: 'lines',
  });
  let result: LoadResult | undefined;
  child.onLine((line) => {
    result = parseResultLine<LoadResult>(line) ?? result;
  });
  // The client bounds itself; this is the backstop if it hangs anyway.
  const limitMs = spec.rampMs + spec.durationMs + spec.streamTimeoutMs * 2 + 60_000;
  const timer = setTimeout(() => void child.stop(1000), limitMs);
  const code = await child.exited;
  clearTimeout(timer);
  if (!result) throw new Error(`load client for ${spec.label} failed (exit ${code}): ${child.stderrTail().slice(-1200).trim()}`);
  return result;
}
