// npm run bench -- [--quick] [--scenario NAME] [--runs N] [--no-peer] [--no-build] [--no-pin] [--out DIR]
// Runs the benchmark scenarios side by side and writes latest.md, latest.svg and latest.json (bench/README.md).
import { relative } from 'node:path';
import { runBench } from './bench.js';
import { USAGE, UsageError, parseCli, type BenchOptions } from './config.js';
import { killAllChildren } from './processes.js';
import { headlineRows, fmtSpread } from './headline.js';
import { writeReport } from './report.js';

const log = (msg: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

function onSignal(signal: NodeJS.Signals): void {
  log(`${signal}: stopping every child process`);
  killAllChildren();
  process.exit(130);
}

async function main(): Promise<void> {
  let opts: BenchOptions;
  try {
    opts = parseCli(process.argv.slice(2));
  } catch (err) {
    // parseArgs throws TypeErrors for unknown or malformed options; --help is a UsageError without a message.
    const msg = err instanceof Error ? err.message : String(err);
    if (!msg) process.stdout.write(`${USAGE}\n`);
    else process.stderr.write(`bench: ${msg}\n${USAGE}\n`);
    process.exit(err instanceof UsageError && !msg ? 0 : 2);
  }
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  log(`scenarios: ${opts.scenarios.join(', ')}; runs: ${opts.runs}${opts.quick ? '; quick' : ''}`);
  const results = await runBench(opts, log);
  const paths = writeReport(results, opts.outDir);
  process.stdout.write('\nHeadline\n');
  for (const row of headlineRows(results)) {
    const mark = row.pass === undefined ? '-' : row.pass ? '✓' : '✗';
    process.stdout.write(`  ${mark} ${row.target}: ${fmtSpread(row.measured, row.unit)} (goal ${row.goal})${row.note ? ` — ${row.note}` : ''}\n`);
  }
  process.stdout.write(`\nWrote ${relative(process.cwd(), paths.md)}, ${relative(process.cwd(), paths.svg)} and ${relative(process.cwd(), paths.json)} in ${results.durationS} s\n`);
  const failed = Object.keys(results.failures);
  if (failed.length > 0) {
    process.stderr.write(`bench: scenarios that did not run: ${failed.join(', ')} (see the report)\n`);
    process.exitCode = 1;
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  killAllChildren();
  process.exit(1);
});
