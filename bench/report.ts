// Writes the results: latest.md (tables), latest.svg (chart) and latest.json (raw per-run results).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchResults } from './bench.js';
import { renderChart } from './chart.js';
import {
  across,
  addedAcross,
  bargeInFigures,
  capacityFigures,
  cpuUsPerChunk,
  failures,
  fanoutFigures,
  realtimeFigures,
  rolloutFigures,
  voiceFigures,
  type VoiceFigures,
  wireComboFigures,
  wireCostliest,
  wireRatios,
  gapP50,
  gapP99,
  ratioAcross,
  streamsPerSec,
  tokensPerSec,
  ttftP50,
  ttftP99,
} from './figures.js';
import { floorRows } from './floor-goals.js';
import { fmt, fmtSpread, headlineRows, stormLabel } from './headline.js';
import type { LoadResult } from './load-client.js';
import { stormRate, type BargeInResult, type StormRate, type StormRuns } from './scenarios/barge-in.js';
import { CLUSTER_RATIOS, REDIS_CONFIG_LABEL, clusterFigures, clusterRateLabel, type ClusterRatio, type ClusterStormFigures } from './scenarios/barge-in-cluster.js';
import { relayQuestion } from './realtime-client.js';
import { LEDGER_CONFIG_INFO, ledgerFigures, measurable, noiseBand, type Difference, type Differences, type LedgerConfig } from './scenarios/ledger.js';
import type { RunResults, TargetName } from './scenarios/stage.js';
import { TAIL_VARIANTS, type TailRun, type TailVariant } from './scenarios/tail.js';
import { ANTHROPIC_MODEL, COMBO, GEMINI_MODEL, RELAY } from './scenarios/wire.js';
import { configLabel, workersFigures, type WorkersRatio } from './scenarios/workers.js';
import { GATEWAY_CPU, LOAD_CPU } from './targets.js';
import { spread, type Quartiles, type Spread } from './stats.js';
import type { VoiceRunResult } from './voice-run.js';

/** A markdown table; `align` per column ('l' or 'r'), by default the first column left and the others right. */
const table = (head: string[], rows: string[][], align?: string) =>
  [
    `| ${head.join(' | ')} |`,
    `|${head.map((_, i) => ((align?.[i] ?? (i === 0 ? 'l' : 'r')) === 'l' ? '---' : '--:')).join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');

const verdict = (pass: boolean | undefined) => (pass === undefined ? '–' : pass ? '✓' : '✗');

function failureCell(runs: RunResults[], t: TargetName): string {
  const f = failures(runs, t);
  if (f.total === 0 && f.errors.length === 0) return '–';
  return f.bad === 0 && f.errors.length === 0 ? `0/${f.total}` : `**${f.bad}/${f.total}**`;
}

function failureNotes(runs: RunResults[], label: string): string[] {
  const notes: string[] = [];
  for (const t of ['direct', 'jarvis', 'peer', 'floor'] as const) {
    const f = failures(runs, t);
    if (f.errors.length > 0) notes.push(`- ${label}, ${t}: ${f.errors.map((e) => `\`${e.replace(/`/g, "'")}\``).join('; ')}`);
  }
  return notes;
}

function header(r: BenchResults): string[] {
  const m = r.machine;
  const peer = r.peer.available ? `${r.peer.name} ${r.peer.version} (npm \`@portkey-ai/gateway\`, installed in bench/.cache/portkey)` : `${r.peer.name} ${r.peer.version}: unavailable (${r.peer.reason ?? 'not needed by the chosen scenarios'})`;
  return [
    '# Jarvis benchmark results',
    '',
    `Written by \`npm run bench${r.options.quick ? ' -- --quick' : ''}\` on ${m.date} in ${r.durationS} s.${r.options.quick ? ' **Quick run: small loads; good for same-run ratios against the floor (a 20% regression shows), not for absolute figures.**' : ''}`,
    '',
    `- **Machine:** ${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB, Linux ${m.kernel}, Node ${m.node}; 1-min load average at start ${m.loadAtStart}`,
    `- **Pinning:** ${r.pinning}`,
    `- **Runs:** every measurement ${r.options.runs}× (scenarios interleave direct, Jarvis and peer within a run, rotating their order); figures are medians with (min–max) across runs, and every ratio is computed within one run against the direct path measured in that run`,
    `- **Jarvis:** ${r.options.jarvisFrom === 'dist' ? '`npm run build`, then `node dist/main.js`' : 'from source via tsx (smoke test)'}, default log level \`info\` to a temp file, stdout to /dev/null`,
    `- **Peer:** ${peer}`,
    `- **Upstream:** the project's mock upstream (fakes/openai/mock-cli.ts) in its own process; direct path = client → mock${r.wire ? "; for the wire scenario also an Anthropic upstream (bench/anthropic-mock.ts: fakes/anthropic's events) and a Gemini one (bench/gemini-mock.ts: fakes/gemini's chunks), each paced as the mock paces its chunks, each in its own process" : ''}${r.rollout ? '; for the rollout scenario a tool-loop upstream (bench/tool-loop-mock.ts: a function call while the conversation holds fewer than the rollout\'s calls, then text) in its own process' : ''}${r.realtime ? '; for the realtime scenario also the Realtime fake (bench/realtime-mock.ts: fakes/realtime, OpenAI\'s Realtime API in GA events) in its own process' : ''}`,
    `- **Floor:** bench/bare-relay.ts, pinned like the gateways: node:http in, node:http out through a keep-alive agent, the upstream's bytes piped through with no parsing, events, logs or sessions. It is not a gateway; it is what two sockets and a pipe cost on this machine, so a target below the floor's own figure cannot be met here by any Node.js gateway`,
  ];
}

function headline(r: BenchResults): string[] {
  const rows = headlineRows(r).map((row) => [row.target, row.goal, fmtSpread(row.measured, row.unit), verdict(row.pass), row.note ?? '']);
  return ['', '## Headline', '', table(['Target', 'Goal', 'Measured: median (min–max)', '', 'Note'], rows, 'llrll'), '', '![Throughput relative to the direct path](latest.svg)'];
}

function againstFloor(r: BenchResults): string[] {
  const rows = floorRows(r).map((row) => [row.target, fmtSpread(row.jarvis, row.figureUnit), fmtSpread(row.floor, row.figureUnit), fmtSpread(row.measured, row.unit), row.goal, verdict(row.pass)]);
  if (rows.length === 0) return [];
  return [
    '',
    '## Against the floor',
    '',
    'Goals set against the floor relay measured in the same run (issue 18): "Jarvis vs floor" is computed within each run (a ratio, or Jarvis minus the floor in ms), then its median and min–max across runs.',
    '',
    table(['Figure', 'Jarvis', 'floor', 'Jarvis vs floor', 'Goal', ''], rows, 'lrrrll'),
  ];
}

function relaySection(r: BenchResults): string[] {
  const relay = r.relay;
  if (!relay) return [];
  const rows = relay.levels.map((l) => [
    String(l.concurrency),
    fmtSpread(across(l.runs, 'direct', tokensPerSec)),
    fmtSpread(across(l.runs, 'jarvis', tokensPerSec)),
    fmtSpread(across(l.runs, 'peer', tokensPerSec)),
    fmtSpread(ratioAcross(l.runs, 'jarvis', 'direct', tokensPerSec), '×'),
    fmtSpread(ratioAcross(l.runs, 'jarvis', 'peer', tokensPerSec), '×'),
    fmtSpread(ratioAcross(l.runs, 'peer', 'direct', tokensPerSec), '×'),
    fmtSpread(across(l.runs, 'jarvis', streamsPerSec)),
    fmtSpread(across(l.runs, 'jarvis', cpuUsPerChunk)),
    fmtSpread(across(l.runs, 'peer', cpuUsPerChunk)),
    fmtSpread(ratioAcross(l.runs, 'floor', 'direct', tokensPerSec), '×'),
    fmtSpread(across(l.runs, 'floor', cpuUsPerChunk)),
    fmtSpread(addedAcross(l.runs, 'jarvis', 'direct', ttftP50), 'ms'),
    `${failureCell(l.runs, 'jarvis')} / ${failureCell(l.runs, 'peer')}`,
  ]);
  return [
    '',
    '## 1. Relay throughput (flood)',
    '',
    `Closed loop: each of N connections starts a new ${relay.tokens}-token stream as soon as its last one ends, for ${relay.durationMs / 1000} s; the mock sends without delay. Before each party's first level, ${relay.warmupMs / 1000} s of 4-token streams warm it up. Tokens/s counts content chunks received by the client. CPU µs/chunk = gateway CPU seconds (all threads, from /proc/PID/task/*/schedstat) per million relayed tokens. "floor" is bench/bare-relay.ts (node:http piping the upstream's bytes through, nothing else): what any Node.js gateway pays here.${relay.peerError ? ` Peer: ${relay.peerError}` : ''}`,
    '',
    table(['Streams', 'direct tok/s', 'Jarvis tok/s', 'peer tok/s', 'Jarvis/direct', 'Jarvis/peer', 'peer/direct', 'Jarvis streams/s', 'Jarvis CPU µs/chunk', 'peer CPU µs/chunk', 'floor/direct', 'floor CPU µs/chunk', 'Jarvis added TTFT p50', 'bad streams J / P'], rows),
    ...failureNotes(relay.levels.flatMap((l) => l.runs), 'relay'),
  ];
}

function latencySection(r: BenchResults): string[] {
  const lat = r.latency;
  if (!lat) return [];
  const out = [
    '',
    '## 2. Added latency (paced)',
    '',
    `${lat.concurrency} concurrent streams of ${lat.tokens} tokens in a closed loop for ${lat.durationMs / 1000} s, after a warm-up (a stream per connection, then ${lat.warmupMs / 1000} s of 4-token streams before each party's first run in a stage). TTFT: request sent → first content chunk. Gap: between consecutive content chunks (chunks that arrive in one read count as 0 ms apart). "added" = gateway − direct, per run.`,
  ];
  for (const p of lat.pacings) {
    const row = (name: string, f: (r: LoadResult) => number, unit: string, added = true) => [
      name,
      fmtSpread(across(p.runs, 'direct', f), unit),
      fmtSpread(across(p.runs, 'jarvis', f), unit),
      added ? fmtSpread(addedAcross(p.runs, 'jarvis', 'direct', f), unit) : '',
      fmtSpread(across(p.runs, 'peer', f), unit),
      added ? fmtSpread(addedAcross(p.runs, 'peer', 'direct', f), unit) : '',
      fmtSpread(across(p.runs, 'floor', f), unit),
      added ? fmtSpread(addedAcross(p.runs, 'floor', 'direct', f), unit) : '',
    ];
    out.push(
      '',
      `### ${p.delayMs} ms between tokens${p.peerError ? ` (peer: ${p.peerError})` : ''}`,
      '',
      table(
        ['', 'direct', 'Jarvis', 'Jarvis added', 'peer', 'peer added', 'floor', 'floor added'],
        [
          row('TTFT p50', ttftP50, 'ms'),
          row('TTFT p99', ttftP99, 'ms'),
          row('Inter-token gap p50', gapP50, 'ms'),
          row('Inter-token gap p99', gapP99, 'ms'),
          row('Tokens/s', tokensPerSec, '', false),
          ['Throughput / direct', '1×', fmtSpread(ratioAcross(p.runs, 'jarvis', 'direct', tokensPerSec), '×'), '', fmtSpread(ratioAcross(p.runs, 'peer', 'direct', tokensPerSec), '×'), '', fmtSpread(ratioAcross(p.runs, 'floor', 'direct', tokensPerSec), '×'), ''],
          ['Gateway CPU µs/chunk', '', fmtSpread(across(p.runs, 'jarvis', cpuUsPerChunk)), '', fmtSpread(across(p.runs, 'peer', cpuUsPerChunk)), '', fmtSpread(across(p.runs, 'floor', cpuUsPerChunk)), ''],
          ['Bad streams', failureCell(p.runs, 'direct'), failureCell(p.runs, 'jarvis'), '', failureCell(p.runs, 'peer'), '', failureCell(p.runs, 'floor'), ''],
        ],
      ),
      ...failureNotes(p.runs, `latency ${p.delayMs} ms`),
    );
  }
  return out;
}

function bargeInSection(r: BenchResults): string[] {
  const b = r.bargeIn;
  if (!b) return [];
  const unmeasured = (s: StormRuns) => s.skipped ?? (s.errors.length > 0 ? `error: ${s.errors[0]!.slice(0, 120)}` : '–');
  const cells = (s: StormRuns) => {
    if (s.runs.length === 0) return [unmeasured(s), ''];
    const f = bargeInFigures(s.runs);
    return [fmtSpread(f.closeP50, 'ms'), fmtSpread(f.closeP99, 'ms')];
  };
  return [
    '',
    '## 3. Barge-in storm (Jarvis, the floor relay, two Jarvis instances)',
    '',
    `${b.sessions} sessions, each sending ${b.requestsPerSession} streaming requests ${b.gapMs} ms apart with the same \`X-Session-Id\`; the mock streams ${b.tokens} tokens ${b.delayMs} ms apart, so every superseded stream is mid-answer. The sessions start spread over ${b.rates.map((rate) => `${rate.rampMs / 1000} s`).join(', ')}: the same storm at ${b.rates.map((rate) => Math.round(stormRate(b, rate.rampMs)).toLocaleString('en-US')).join(', ')} requests a second. The mock runs inside the driver process, so the client's send times and the mock's connection times share one clock; the clock starts when the new request's headers are written to its socket (undici's \`undici:client:sendHeaders\` diagnostics channel), and stops when the old request's upstream connection closes at the mock. The floor relay (bench/bare-relay.ts) ends a session's old response and destroys its upstream request the moment a newer request's headers arrive, before reading its body: no validation, events, logs or cleanup. Two instances share one Redis, and request k of every session goes to instance k mod 2, so every barge-in crosses instances.`,
    '',
    table(
      ['New request sent → old upstream closed', 'Jarvis p50', 'Jarvis p99', 'floor p50', 'floor p99', 'two instances p50', 'two instances p99'],
      b.rates.map((rate) => [stormLabel(b, rate.rampMs), ...cells(rate.jarvis), ...cells(rate.floor), ...cells(rate.cross)]),
    ),
    ...b.rates.flatMap((rate) => stormRateSection(b, rate)),
  ];
}

/** Jarvis's storm at one rate in detail, with the two-instance storm's endings. */
function stormRateSection(b: BargeInResult, rate: StormRate): string[] {
  const head = ['', `### ${stormLabel(b, rate.rampMs)}`, ''];
  if (rate.jarvis.runs.length === 0) return [...head, `No result: ${rate.jarvis.errors.join('; ') || 'unknown error'}.`];
  const f = bargeInFigures(rate.jarvis.runs);
  const fl = bargeInFigures(rate.floor.runs);
  const list = (m: Record<string, number>) => Object.entries(m).map(([k, v]) => `${k}: ${v}`).join(', ');
  const oldOther = list(f.oldOtherEndings);
  const finalOther = list(f.finalOtherEndings);
  const out = [
    ...head,
    table(
      ['Jarvis', 'p50', 'p99'],
      [
        ['New request sent → old upstream connection closed', fmtSpread(f.closeP50, 'ms'), fmtSpread(f.closeP99, 'ms')],
        ['Old upstream closed → new request at the upstream (hand-over)', fmtSpread(f.handoffP50, 'ms'), fmtSpread(f.handoffP99, 'ms')],
        ["Final request's TTFT (client)", fmtSpread(f.finalTtftP50, 'ms'), fmtSpread(f.finalTtftP99, 'ms')],
        ["Every superseding request's TTFT (client)", fmtSpread(f.newTtftP50, 'ms'), fmtSpread(f.newTtftP99, 'ms')],
        ['Client: request handed to undici → headers written (not Jarvis)', '', fmtSpread(f.clientQueueP99, 'ms')],
      ],
    ),
    '',
    `Jarvis during the storm: event-loop p99 (worst 500 ms scrape) ${fmtSpread(f.loopP99Ms, 'ms')}, CPU ${fmtSpread(f.cpuSec, 's')}; the floor relay's event-loop p99 ${fmtSpread(fl.loopP99Ms, 'ms')}, CPU ${fmtSpread(fl.cpuSec, 's')}. Sessions whose requests the client itself wrote out of order (${f.reorderedSessions}) are left out of every figure.`,
    '',
    `- Old streams that ended \`cancelled\`: **${f.oldCancelled}/${f.oldStreams}**${oldOther ? ` (other endings: ${oldOther})` : ''}`,
    `- Final streams complete: ${f.finalComplete}/${f.finalStreams}${finalOther ? ` (other endings: ${finalOther})` : ''}`,
    `- Sessions where an older request's answer ran to the end and a newer one was cancelled (admitted in the other order): **${f.olderWonSessions}/${f.evaluatedSessions}**`,
    `- Upstream connections measured: ${f.measuredCloses}; superseded before reaching the upstream: ${f.oldNeverUpstream}; closed before the next request was written: ${f.oldClosedBeforeNext}; never closed: ${f.unclosed}`,
  ];
  if (rate.cross.runs.length > 0) {
    const c = bargeInFigures(rate.cross.runs);
    out.push(`- Two instances: old streams that ended \`cancelled\`: **${c.oldCancelled}/${c.oldStreams}**; final streams complete: ${c.finalComplete}/${c.finalStreams}; older request won: ${c.olderWonSessions}/${c.evaluatedSessions}; never closed: ${c.unclosed}`);
  }
  for (const [who, s] of [['Jarvis', rate.jarvis], ['floor', rate.floor], ['two instances', rate.cross]] as const) {
    out.push(...s.errors.map((e) => `- Error (${who}): \`${e.slice(0, 300)}\``));
  }
  return out;
}

function capacitySection(r: BenchResults): string[] {
  const c = r.capacity;
  if (!c) return [];
  const f = capacityFigures(c);
  const fl = capacityFigures(c, 'floor');
  return [
    '',
    '## 4. Capacity (Jarvis, and the floor relay for comparison)',
    '',
    `${c.streams} concurrent streams${c.clampedFrom ? ` (**clamped from ${c.clampedFrom}**: the open-files limit for the bench's children is ${c.fileLimit}, and a relay needs two sockets per stream)` : ''}, opened over ${c.rampMs / 1000} s, each ${c.tokens} tokens at one per ${c.delayMs} ms, so all are open together from about ${c.rampMs / 1000} s to ${(c.tokens * c.delayMs) / 1000} s. A fresh Jarvis and floor relay per run, measured one after the other; idle RSS is read after 32 warm-up streams, peak RSS is sampled every 250 ms; the event loop is read from Jarvis's /metrics (and the floor's, which serves the same two metrics measured the same way), scraped every ${c.scrapeEveryMs} ms. "Every tick" is the p99 of \`jarvis_event_loop_delay_seconds\`, a cumulative histogram of how late a 10 ms tick fires (prom-client's sampling rate), over the period (bucket counts at its start and end, interpolated as PromQL's histogram_quantile does): the target's p99. "Worst scrape" is the worst of the per-scrape p99s of prom-client's \`nodejs_eventloop_lag_p99_seconds\`, which is reset at every scrape: the worst 1 s window.`,
    '',
    table(
      ['', 'Jarvis', 'floor'],
      [
        ['Streams served in full', `${fmtSpread(f.served)} of ${c.streams}`, `${fmtSpread(fl.served)} of ${c.streams}`],
        ['RSS idle', fmtSpread(f.rssIdleMiB, 'MiB'), fmtSpread(fl.rssIdleMiB, 'MiB')],
        ['RSS peak', fmtSpread(f.rssPeakMiB, 'MiB'), fmtSpread(fl.rssPeakMiB, 'MiB')],
        ['RSS per stream (peak − idle) / streams', fmtSpread(f.rssPerStreamKiB, 'KiB'), fmtSpread(fl.rssPerStreamKiB, 'KiB')],
        ['Event-loop p99, every tick while all streams are open', fmtSpread(f.loopP99HoldAllMs, 'ms'), fmtSpread(fl.loopP99HoldAllMs, 'ms')],
        ['Event-loop p99, every tick of the run (opening and closing included)', fmtSpread(f.loopP99RunAllMs, 'ms'), fmtSpread(fl.loopP99RunAllMs, 'ms')],
        ['Event-loop p99, worst scrape (ramp included)', fmtSpread(f.loopP99Ms, 'ms'), fmtSpread(fl.loopP99Ms, 'ms')],
        ['Event-loop p99, worst scrape while all streams are open', fmtSpread(f.loopP99HoldMs, 'ms'), fmtSpread(fl.loopP99HoldMs, 'ms')],
        ['Event-loop p99, median scrape', fmtSpread(f.loopP99MedianMs, 'ms'), fmtSpread(fl.loopP99MedianMs, 'ms')],
        ['Event-loop max, worst scrape', fmtSpread(f.loopMaxMs, 'ms'), fmtSpread(fl.loopMaxMs, 'ms')],
        ['Scrapes per run', fmtSpread(f.scrapes), fmtSpread(fl.scrapes)],
        ['Client TTFT p99', fmtSpread(f.ttftP99, 'ms'), fmtSpread(fl.ttftP99, 'ms')],
        ['CPU seconds per run', fmtSpread(f.cpuSec, 's'), fmtSpread(fl.cpuSec, 's')],
      ],
    ),
    ...(f.failures > 0 ? [`- Jarvis: bad streams over all runs: ${f.failures}; errors: ${f.errors.map((e) => `\`${e}\``).join('; ')}`] : []),
    ...(fl.failures > 0 ? [`- Floor: bad streams over all runs: ${fl.failures}; errors: ${fl.errors.map((e) => `\`${e}\``).join('; ')}`] : []),
    ...c.errors.map((e) => `- Error: \`${e.slice(0, 300)}\``),
  ];
}

function fanoutSection(r: BenchResults): string[] {
  const fo = r.fanout;
  if (!fo) return [];
  const f = fanoutFigures(fo);
  return [
    '',
    '## 5. Fan-out (Jarvis only)',
    '',
    `${fo.subscribers} \`/v1/events\` SSE subscribers (no filter: each gets every event) while ${fo.streams} streams of ${fo.tokens} tokens, ${fo.delayMs} ms apart, run once each. One subscriber parses every event (the auditor); the others count frames.`,
    '',
    table(
      ['', 'median (min–max)'],
      [
        ['Events delivered per second (all subscribers)', fmtSpread(f.eventsPerSec)],
        ['Events delivered (all subscribers)', fmtSpread(f.totalEvents)],
        ['Events per subscriber, min / max', `${fmtSpread(f.minPerSubscriber)} / ${fmtSpread(f.maxPerSubscriber)}`],
        ['`chat.token` events per stream (auditor, p50)', `${fmtSpread(f.tokenEventsPerStream)} for ${fo.tokens} tokens`],
        ['Tokens per `chat.token` event (batching ratio, p50)', fmtSpread(f.tokensPerEvent)],
        ['Streams / tokens seen by the auditor', `${fmtSpread(f.auditedStreams)} / ${fmtSpread(f.auditedTokens)}`],
        ['Dropped events (`jarvis_events_dropped_total` delta)', fmtSpread(f.eventsDropped)],
        ['Dropped subscribers (`jarvis_event_subscribers_dropped_total` delta)', fmtSpread(f.subscribersDropped)],
        ['Stream tokens/s: direct / Jarvis with subscribers', `${fmtSpread(f.directTokensPerSec)} / ${fmtSpread(f.jarvisTokensPerSec)}`],
        ['Stream throughput Jarvis / direct', fmtSpread(f.throughputRatio, '×')],
        ['Bad streams (Jarvis)', `${f.jarvisFailures.bad}/${f.jarvisFailures.total}`],
      ],
    ),
    ...failureNotes(fo.runs, 'fan-out'),
  ];
}

function tailSection(r: BenchResults): string[] {
  const t = r.tail;
  if (!t) return [];
  const pick = (v: TailVariant, f: (run: TailRun) => number) => spread(t.runs.map((row) => row.find((x) => x.variant === v)).filter((x): x is TailRun => x !== undefined).map(f));
  const ttft = (q: 'p50' | 'p99') => (run: TailRun) => run.result?.ttft[q] ?? NaN;
  const name: Record<TailVariant, string> = {
    none: 'No route (the tail upstream alone)',
    failover: `Route, failover at a ${t.firstTokenTimeoutMs} ms first-token deadline`,
    hedge: `Route, hedged after ${t.hedgeAfterMs} ms`,
  };
  const errors = t.runs.flat().filter((x) => x.error).map((x) => `- ${x.variant}: \`${x.error!.slice(0, 300)}\``);
  return [
    '',
    '## 6. First-token tail: routes with failover and hedging (Jarvis only)',
    '',
    `Two mock upstreams; on one, every ${t.tailEvery}th request waits ${fmt(t.tailTtftMs)} ms for its first token (a ${fmt(100 / t.tailEvery)}% tail), the other is healthy. ${t.concurrency} closed-loop streams of ${t.tokens} tokens through Jarvis, asking for the tail upstream alone, or for a route whose second target is the healthy one.`,
    '',
    table(
      ['', 'client TTFT p50', 'client TTFT p99', 'upstream requests per client request'],
      TAIL_VARIANTS.map((v) => [name[v], fmtSpread(pick(v, ttft('p50')), 'ms'), fmtSpread(pick(v, ttft('p99')), 'ms'), fmtSpread(pick(v, (run) => run.upstreamPerRequest))]),
      'lrrr',
    ),
    ...errors,
  ];
}

function voiceSection(r: BenchResults): string[] {
  const v = r.voice;
  if (!v) return [];
  const p = v.params;
  const f = { jarvis: voiceFigures(v.jarvis), floor: voiceFigures(v.floor) };
  const row = (label: string, key: keyof VoiceFigures, unit: string, ratio = true) => [
    label,
    fmtSpread(spread(f.jarvis[key]), unit),
    fmtSpread(spread(f.floor[key]), unit),
    ratio ? fmtSpread(spread(f.jarvis[key].map((j, i) => j / (f.floor[key][i] ?? NaN))), '×') : '',
  ];
  const bad = (runs: VoiceRunResult[]) => runs.map((x) => `${x.badAnswers}/${x.requests - x.bargeIns}${Object.keys(x.badEndings).length ? ` (${Object.entries(x.badEndings).map(([k, n]) => `${n} ${k}`).join(', ')})` : ''}`).join('; ') || '–';
  return [
    '',
    '## 7. Voice-like sessions (Jarvis and the floor relay)',
    '',
    `${p.sessions} sessions start over ${fmt(p.rampMs / 1000)} s and talk for ${fmt(p.durationMs / 1000)} s. Each asks a question, hears an answer of ${p.answerTokens.join('–')} tokens streamed at ${p.tokensPerSec.join('–')} tokens a second, pauses ${p.thinkMs.map((t) => fmt(t / 1000)).join('–')} s and asks again; one request in ${p.bargeEvery} is sent in the middle of the answer before it, with the same \`X-Session-Id\` (a barge-in). ${p.subscribers} \`/v1/events\` subscribers watch every session on Jarvis (the floor has no events). The schedule is seeded, so both get the same conversations; mock and client share the driver process and its clock. "Upstream close" runs from the barge-in request's headers reaching its socket to the old answer's upstream connection closing at the mock.`,
    '',
    table(
      ['', 'Jarvis', 'floor', 'Jarvis / floor'],
      [
        row('Gateway CPU (cores)', 'cores', ''),
        row('Gateway CPU per relayed token', 'usPerToken', 'µs'),
        row('Peak RSS', 'rssMiB', 'MiB'),
        row('TTFT p50', 'ttftP50', 'ms'),
        row('TTFT p99', 'ttftP99', 'ms'),
        row('Barge-in: upstream close p50', 'closeP50', 'ms'),
        row('Barge-in: upstream close p99', 'closeP99', 'ms'),
        row('Event loop p99 (worst 1 s window)', 'loopP99', 'ms'),
        row('Tokens relayed a second', 'tokensPerSec', '', false),
        row('Requests (barge-ins)', 'requests', '', false),
        row('Driver CPU (cores; near 1 means the client was the limit)', 'driverCores', '', false),
      ],
      'lrrr',
    ),
    '',
    `- Answers not interrupted that did not arrive whole: Jarvis ${bad(v.jarvis)}; floor ${bad(v.floor)}.`,
    `- Events received by the subscribers (Jarvis): ${v.jarvis.map((x) => `${x.events.toLocaleString('en-US')} (${Number.isFinite(x.eventsDropped) ? x.eventsDropped : '?'} dropped)`).join('; ') || '–'}. Interrupted upstream requests left open: Jarvis ${v.jarvis.map((x) => x.unclosedUpstream).join('/') || '–'}, floor ${v.floor.map((x) => x.unclosedUpstream).join('/') || '–'}.`,
    ...v.errors.map((e) => `- run failed: \`${e.slice(0, 300)}\``),
  ];
}

function wireSection(r: BenchResults): string[] {
  const w = r.wire;
  if (!w) return [];
  const rows = w.combos.map((c) => {
    const f = wireComboFigures(w, c);
    return [
      COMBO[c].label,
      COMBO[c].passThrough ? 'passed through' : 'translated',
      fmtSpread(f.cpuUsPerToken, 'µs'),
      fmtSpread(f.ttftP50, 'ms'),
      fmtSpread(f.ttftP99, 'ms'),
      fmtSpread(f.rssPeakMiB, 'MiB'),
      fmtSpread(f.tokensPerSec),
      f.bad === 0 && f.errors.length === 0 ? `0/${f.total}` : `**${f.bad}/${f.total}**`,
    ];
  });
  const ratios = wireRatios(w).map((x) => [x.label, x.goal, fmtSpread(x.measured, '×'), verdict(Number.isFinite(x.measured.median) ? x.measured.median <= x.max : undefined)]);
  const top = wireCostliest(w);
  if (top) {
    const perRun = top.costliestPerRun.map((c) => (c ? COMBO[c].label : '–')).join(', ');
    ratios.push([
      `**Costliest translated cell: ${COMBO[top.combo].label} / ${COMBO[RELAY].label}** (per run, the costliest of any: ${fmtSpread(top.worstPerRun, '×')}; ${perRun})`,
      top.goal,
      `**${fmtSpread(top.measured, '×')}**`,
      verdict(Number.isFinite(top.measured.median) ? top.measured.median <= top.max : undefined),
    ]);
  }
  const errors = w.combos.flatMap((c) => wireComboFigures(w, c).errors.map((e) => `- ${COMBO[c].label}: \`${e.replace(/`/g, "'")}\``));
  return [
    '',
    '## 8. CPU per token by wire: every client API over every provider (Jarvis only)',
    '',
    `One warm Jarvis with three upstreams, each a process of its own on the load CPU serving the same answer: ${w.tokens} tokens, ${w.delayMs} ms apart, the first at once. The OpenAI one is the project's mock (model \`mock-model\`); the Anthropic one (\`provider: anthropic\`, model \`${ANTHROPIC_MODEL}\`) is bench/anthropic-mock.ts, fakes/anthropic's events; the Gemini one (\`provider: gemini\`, model \`${GEMINI_MODEL}\`) is bench/gemini-mock.ts, fakes/gemini's chunks; both paced as the mock paces its chunks. ${w.streams} closed-loop streams through \`/v1/chat/completions\`, \`/v1/responses\` or \`/v1/messages\` to each upstream: chat → OpenAI and Messages → Anthropic pass the upstream's stream through, every other cell translates it (Responses is built from Chat Completions chunks). Every combination first runs ${w.warmupMs / 1000} s unmeasured; then each run measures them all for ${w.phaseMs / 1000} s each, in an order that rotates from run to run. CPU µs/token = Jarvis's CPU (all threads, /proc schedstat) over the phase per token the client received (a content chunk, a \`response.output_text.delta\`, or a \`text_delta\`); RSS is Jarvis's peak in the phase.`,
    '',
    table(['Client → upstream', '', 'CPU µs/token', 'TTFT p50', 'TTFT p99', 'RSS peak', 'tokens/s', 'bad streams'], rows, 'llrrrrrr'),
    '',
    "Ratios of CPU per token, computed within each run, then median and min–max across runs. The goal (issue 26): every translated cell at most 1.3× the chat relay (chat → OpenAI), the costliest one named last; the Messages pass-through no worse than the relay. A translated cell is also held to the other pass-through it shares its client API or its upstream with.",
    '',
    table(['CPU per token', 'Goal', 'Measured', ''], ratios, 'llrl'),
    ...errors,
    ...w.warmupErrors.map((e) => `- warm-up failed: \`${e.slice(0, 300).replace(/`/g, "'")}\``),
  ];
}

/** "59.8 ms (55.1–64.0)": the median and the 25th–75th percentiles. */
function fmtQuartiles(q: Quartiles, unit = ''): string {
  if (!Number.isFinite(q.median)) return '–';
  return fmtSpread({ median: q.median, min: q.p25, max: q.p75, n: q.n }, unit);
}

function rolloutSection(r: BenchResults): string[] {
  const ro = r.rollout;
  if (!ro) return [];
  const f = rolloutFigures(ro);
  const turns = ro.calls + 1;
  const row = (label: string, ws: Quartiles, sse: Quartiles, unit: string, ratio?: Quartiles) => [label, fmtQuartiles(ws, unit), fmtQuartiles(sse, unit), ratio ? fmtQuartiles(ratio, '×') : ''];
  const range = (q: Quartiles, unit: string) => (Number.isFinite(q.median) ? `${fmt(q.min)}–${fmt(q.max)} ${unit}` : '–');
  return [
    '',
    '## 9. A tool-call rollout: the Responses API over a WebSocket against HTTP SSE (Jarvis only)',
    '',
    `A rollout is ${turns} turns: the question, then ${ro.calls} turns that each send only the last function call's output (${ro.outputChars} characters), the last answered in text (${ro.tokens} tokens). The upstream (bench/tool-loop-mock.ts, a process of its own on the load CPU) answers with a function call while the conversation holds fewer than ${ro.calls} tool results${ro.delayMs > 0 ? `, one frame every ${ro.delayMs} ms` : ', each answer in one write'}; the client checks every turn's call id, which names how many results the upstream saw. **WebSocket**: one socket per rollout (\`GET /v1/responses\`, opened inside the rollout's time), a \`response.create\` message a turn with \`store: false\` and \`previous_response_id\` from the connection's memory. **HTTP SSE**: \`POST /v1/responses\` with \`stream: true\`, \`store: true\` and \`previous_response_id\` from Jarvis's store, over one keep-alive connection. Before the first run, ${ro.warmupConcurrency} concurrent loops of unmeasured rollouts warm Jarvis for ${fmt(ro.warmupMs / 1000)} s. Each run is a fresh client process on the load CPU: ${ro.warmup} unmeasured pairs, then ${ro.rollouts} pairs, a rollout of each transport back to back, the order alternating. Figures are the median (p25–p75) over every rollout (or every turn) of every run; a ratio is taken per pair (WS / SSE of the two rollouts back to back), then its median (p25–p75) over the pairs. First token: the turn's request (or message) sent → its first \`response.output_text.delta\` or \`response.function_call_arguments.delta\`. Jarvis's CPU: /proc schedstat of its pid, read before a rollout and ${ro.settleMs} ms after its last turn (its batched log writes and the socket's close included), divided by the ${turns} turns.`,
    '',
    table(
      ['', 'WebSocket', 'HTTP SSE', 'WS / SSE (per pair)'],
      [
        row(`Rollout, end to end (${turns} turns)`, f.ws.e2eMs, f.sse.e2eMs, 'ms', f.ratios.e2e),
        row('First token of a turn', f.ws.ttftMs, f.sse.ttftMs, 'ms', f.ratios.ttft),
        row('Turn: sent → response.completed', f.ws.turnMs, f.sse.turnMs, 'ms'),
        row('Jarvis CPU per turn', f.ws.cpuUsPerTurn, f.sse.cpuUsPerTurn, 'µs', f.ratios.cpu),
        row('The client\'s own CPU per turn (not Jarvis)', f.ws.clientCpuUsPerTurn, f.sse.clientCpuUsPerTurn, 'µs'),
        ['Opening the socket (in the rollout\'s time)', fmtQuartiles(f.ws.connectMs, 'ms'), '–', ''],
        ['Rollouts measured (pairs)', String(f.ws.rollouts), String(f.sse.rollouts), String(f.pairs)],
      ],
      'lrrr',
    ),
    '',
    `- Min–max: end to end WebSocket ${range(f.ws.e2eMs, 'ms')}, HTTP SSE ${range(f.sse.e2eMs, 'ms')}; CPU per turn WebSocket ${range(f.ws.cpuUsPerTurn, 'µs')}, HTTP SSE ${range(f.sse.cpuUsPerTurn, 'µs')}.`,
    `- Jarvis idle (read over 1 s in each run, inside every rollout's CPU window as well): ${fmtSpread(f.idleCpuMsPerSec, 'ms')} of CPU a second. Rollouts in the warm-up before the first run: ${ro.runs.map((run) => run.result?.warmupRollouts ?? 0).reduce((a, b) => a + b, 0)}.`,
    `- Upstream answers per turn sent: ${fmt(f.upstreamPerTurn)} (1: no turn was retried or lost).`,
    ...f.errors.slice(0, 10).map((e) => `- Failed: \`${e.slice(0, 300).replace(/`/g, "'")}\``),
  ];
}

/**
 * The deltas a per-delta table shows (1-based): the first two, a few along the way, the last; unpaced, also the last
 * of the fake's first write burst (32 words, 64 deltas) and the first of its second.
 */
export function shownDeltas(count: number, bursts: boolean): number[] {
  const picks = [1, 2, 10, Math.round(count / 4), Math.round(count / 2), ...(bursts ? [64, 65] : []), Math.round((3 * count) / 4), count];
  return [...new Set(picks.filter((i) => i >= 1 && i <= count))].sort((a, b) => a - b);
}

function realtimeSection(r: BenchResults): string[] {
  const rt = r.realtime;
  if (!rt) return [];
  const f = realtimeFigures(rt);
  const t = f.text;
  const range = (q: Quartiles, unit: string) => (Number.isFinite(q.median) ? `${fmt(q.min)}–${fmt(q.max)} ${unit}` : '–');
  const textRow = (label: string, ws: Quartiles, http: Quartiles, unit: string, ratio?: Quartiles) => [label, fmtQuartiles(ws, unit), fmtQuartiles(http, unit), ratio ? fmtQuartiles(ratio, '×') : ''];
  const relayRow = (label: string, d: Quartiles, j: Quartiles, added?: Quartiles, ratio?: Quartiles) => [label, fmtQuartiles(d, 'ms'), fmtQuartiles(j, 'ms'), added ? fmtQuartiles(added, 'ms') : '', ratio ? fmtQuartiles(ratio, '×') : ''];
  const pacing = (v: { words: number; delayMs: number }) => `${v.words} words ${v.delayMs > 0 ? `${v.delayMs} ms apart` : 'unpaced'}`;
  const relay = f.relay.flatMap((y) => {
    const perDelta = shownDeltas(y.perDelta.length, y.delayMs === 0).map((i) => {
      const q = y.perDelta[i - 1]!;
      return [`${i}${i === y.perDelta.length ? ' (last)' : ''}`, i % 2 === 1 ? 'transcript' : 'audio', fmtQuartiles(q.directMs, 'ms'), fmtQuartiles(q.jarvisMs, 'ms'), fmtQuartiles(q.addedMs, 'ms')];
    });
    return [
      '',
      `**Relay, ${pacing(y)}** (\`${relayQuestion(y.words, y.delayMs)}\`: ${2 * y.words} deltas, ${y.delayMs > 0 ? `a word every ${y.delayMs} ms, so each frame comes on its own` : 'unpaced: the fake writes 32 words, then the next 32 once the socket has taken them'}):`,
      '',
      table(
        ['response.create sent →', 'Direct', 'Through Jarvis', 'Jarvis − direct (per pair)', 'Jarvis / direct (per pair)'],
        [
          relayRow('response.created', y.direct.createdMs, y.jarvis.createdMs, y.addedCreatedMs, y.ratios.created),
          relayRow('First delta', y.direct.firstMs, y.jarvis.firstMs, y.addedFirstMs, y.ratios.first),
          relayRow('Last delta', y.direct.lastMs, y.jarvis.lastMs, y.addedLastMs, y.ratios.last),
          relayRow('response.done', y.direct.doneMs, y.jarvis.doneMs, y.addedDoneMs, y.ratios.done),
          ['Every delta, pooled', '', '', fmtQuartiles(y.addedAllDeltasMs, 'ms'), ''],
          ['Responses measured (sets; pairs of responses)', `${y.direct.responses} (${y.direct.sets})`, `${y.jarvis.responses} (${y.jarvis.sets})`, String(y.pairs), ''],
        ],
        'lrrrr',
      ),
      '',
      table(['Delta (1-based; odd: transcript, even: audio)', '', 'Direct', 'Through Jarvis', 'Jarvis − direct (per pair)'], perDelta, 'llrrr'),
    ];
  });
  const cpuRow = (label: string, pick: (y: (typeof f.relay)[number]) => string) => [label, ...f.relay.map(pick)];
  return [
    '',
    '## 10. The Realtime API: text mode against chat completions, and what the relay adds per frame (Jarvis only)',
    '',
    `One Jarvis in front of two upstreams, each a process of its own on the load CPU: the OpenAI mock (its default upstream, ${rt.tokens} tokens at once, in one write) and the Realtime fake (bench/realtime-mock.ts, fakes/realtime; an upstream with \`realtime: native\` for \`${rt.relayModel}\`). Each run is a fresh client process on the load CPU. Turns come in sets, back to back on one path inside one CPU window: ${rt.turnsPerSet} text turns, or ${rt.responsesPerSet} relay responses (a turn after an idle spell costs any process on this host several times its CPU, so a set is what scenario 9's rollout is). Over a socket each turn of a set has a socket of its own, open for the whole run, and every conversation is emptied between sets (outside the windows), so every response reads one user message. Before the first run, ${rt.warmupConcurrency} loops of unmeasured sets warm Jarvis: text sets for ${fmt(rt.warmupMs / 1000)} s, then relay sets for ${fmt(rt.relayWarmupMs / 1000)} s; each run then has ${rt.warmup} unmeasured pairs of sets of each kind, and measures ${rt.textPairs} text pairs and ${rt.relay.map((v) => `${v.pairs} relay pairs of ${pacing(v)}`).join(' and ')}, the two sets of a pair back to back, the order alternating. Figures are the median (p25–p75) over every turn (or set, for CPU) of every run; a ratio or difference is taken per pair, then its median (p25–p75) over the pairs. Jarvis's CPU: /proc schedstat of its pid over the set (from the first user message) and ${rt.settleMs} ms after it, divided by its turns or frames.`,
    '',
    `**Text mode** (\`GET /v1/realtime?model=mock-model\`, a model that does not speak the Realtime API, served over the same core as chat completions): \`conversation.item.create\` (its \`conversation.item.done\` awaited), then \`response.create\`; first token = \`response.create\` sent → the first \`response.output_text.delta\`. **Chat completions**: \`POST /v1/chat/completions\` with \`stream: true\` and the same question over one keep-alive connection; first token = the request handed to undici → the first content chunk.`,
    '',
    table(
      ['', 'Realtime socket (text mode)', 'Chat completions (HTTP SSE)', 'socket / HTTP (per pair of sets)'],
      [
        textRow('First token', t.ws.ttftMs, t.http.ttftMs, 'ms', t.ratios.ttft),
        textRow('Whole answer (response.done / end of body)', t.ws.totalMs, t.http.totalMs, 'ms', t.ratios.total),
        textRow('Jarvis CPU per turn (sets)', t.ws.cpuUsPerTurn, t.http.cpuUsPerTurn, 'µs', t.ratios.cpu),
        textRow("The client's own CPU per turn (not Jarvis)", t.ws.clientCpuUsPerTurn, t.http.clientCpuUsPerTurn, 'µs'),
        ['Turns measured (sets; pairs of sets)', `${t.ws.turns} (${t.ws.sets})`, `${t.http.turns} (${t.http.sets})`, String(t.pairs)],
      ],
      'lrrr',
    ),
    '',
    `- Socket minus HTTP, the sets' median first tokens, per pair: ${fmtQuartiles(t.ttftDiffMs, 'ms')}. First token min–max: socket ${range(t.ws.ttftMs, 'ms')}, HTTP ${range(t.http.ttftMs, 'ms')}.`,
    '',
    `**Relay** (\`GET /v1/realtime?model=${rt.relayModel}\`): the same client code over sockets to the fake itself (direct) and over sockets through Jarvis, which relays every frame unchanged. Each word of the fake's answer is a \`response.output_audio_transcript.delta\` and a \`response.output_audio.delta\` (100 ms of 24 kHz PCM, 6.4 kB of base64). When the fake sent a frame cannot be seen from another process, so what is measured is \`response.create\` sent → each frame received, on each path; the relay's added latency for a frame is the relayed response's time minus the direct one's in the same pair (the k-th response of each set of a pair of sets). The client and the fake share the load CPU: a burst the fake writes keeps the client off that CPU until it is written, on both paths.`,
    ...relay,
    '',
    table(
      ["Jarvis's CPU, relay", ...f.relay.map(pacing)],
      [
        cpuRow("Per relayed response (a set's window over its responses)", (y) => fmtQuartiles(y.jarvis.jarvisCpuUs, 'µs')),
        cpuRow('Per direct response (Jarvis relays nothing: its idle over as long)', (y) => fmtQuartiles(y.direct.jarvisCpuUs, 'µs')),
        cpuRow('**Per frame relayed**', (y) => `**${fmtQuartiles(y.cpuUsPerFrame, 'µs')}**`),
        cpuRow("Per frame relayed, less the paired direct set's window", (y) => fmtQuartiles(y.cpuUsPerFrameNet, 'µs')),
        cpuRow("The client's own CPU per response, direct / through Jarvis", (y) => `${fmtQuartiles(y.direct.clientCpuUs, 'µs')} / ${fmtQuartiles(y.jarvis.clientCpuUs, 'µs')}`),
        cpuRow('Frames both ways per response; KiB received', (y) => `${fmt(y.jarvis.frames.median)}; ${fmt(y.jarvis.bytes.median / 1024)} KiB`),
        cpuRow("Reads of the client's socket per response, direct / through Jarvis", (y) => `${fmtQuartiles(y.direct.reads)} / ${fmtQuartiles(y.jarvis.reads)}`),
      ],
    ),
    '',
    "- Frames per response: the user's message and its two events, `response.create`, the response's events and `rate_limits.updated`.",
    `- Jarvis idle (read over 0.5 s in each run): ${fmtSpread(f.idleCpuMsPerSec, 'ms')} of CPU a second. In the warm-up before the first run: ${f.warmup.text} text turns, ${f.warmup.relay} relay responses.`,
    ...f.errors.slice(0, 10).map((e) => `- Failed: \`${e.slice(0, 300).replace(/`/g, "'")}\``),
  ];
}

/** "+12.3 µs (−1.0 to +20.1)": a difference's median and min–max across rounds, signed. */
function fmtSigned(s: Spread, unit = ''): string {
  if (!Number.isFinite(s.median)) return '–';
  const sign = (n: number) => `${n > 0 ? '+' : n < 0 ? '−' : ''}${fmt(Math.abs(n))}`;
  const u = unit ? ` ${unit}` : '';
  return s.n > 1 && s.min !== s.max ? `${sign(s.median)}${u} (${sign(s.min)} to ${sign(s.max)})` : `${sign(s.median)}${u}`;
}

function ledgerSection(r: BenchResults): string[] {
  const l = r.ledger;
  if (!l) return [];
  const f = ledgerFigures(l);
  const name = (c: LedgerConfig) => `${LEDGER_CONFIG_INFO[c].tag} ${c === 'before' && l.before ? `the build before the change (\`${l.before.ref}\`, ${l.before.commit})` : LEDGER_CONFIG_INFO[c].label}`;
  const band = f.vsOff.again?.cpuUsPerRequest;
  const rounds = l.driver?.rounds.length ?? 0;
  const rows = l.measured.map((c) => {
    const x = f.per[c]!;
    const g = x.figures;
    return [
      name(c),
      fmtSpread(g.requestsPerSec),
      fmtSpread(g.cpuUsPerRequest, 'µs'),
      fmtSpread(g.cpuUsPerToken, 'µs'),
      fmtSpread(g.ttftP50, 'ms'),
      fmtSpread(g.busy),
      fmt(x.idleCpuMsPerSec),
      c === 'embedded' || c === 'postgres' || c === 'traced' ? fmt(x.linesPerRequest) : '–',
      c === 'traced' ? fmt(x.spansPerRequest) : '–',
      c === 'postgres' ? fmtSpread(g.serverCpuUsPerRequest, 'µs') : '–',
      x.failed + x.short === 0 ? `0/${x.requests.toLocaleString('en-US')}` : `**${x.failed + x.short}/${x.requests.toLocaleString('en-US')}**`,
    ];
  });
  const verdict = (d: Difference) => `${d.above}/${d.rounds} rounds above${measurable(d, band) ? ': **measurable**' : ': within the noise'}`;
  const diffRow = (label: string, d: Differences) => [label, fmtSigned(d.cpuUsPerRequest.spread, 'µs'), fmtSigned(d.cpuUsPerToken.spread, 'µs'), fmtSpread(d.throughput.spread, '×'), fmtSigned(d.ttftP50.spread, 'ms'), verdict(d.cpuUsPerRequest)];
  const diffRows = l.measured.filter((c) => c !== 'off' && f.vsOff[c]).map((c) => diffRow(`${LEDGER_CONFIG_INFO[c].tag} − (a)`, f.vsOff[c]!));
  if (f.tracingOn) diffRows.push(diffRow('(d) − (b): tracing turned on', f.tracingOn));
  if (f.beforeVsOff) diffRows.push(diffRow('(a) − (e): the change with both off, against the build before it', f.beforeVsOff));
  const t = l.traces;
  const kinds: Record<string, string> = { '1': 'internal', '2': 'server', '3': 'client' };
  const store = l.store?.stores ?? [];
  const quote = (e: string) => `\`${e.slice(0, 300).replace(/`/g, "'")}\``;
  return [
    '',
    '## 11. The usage ledger and traces: what each costs a request (Jarvis only)',
    '',
    `One mock upstream (${l.tokens} tokens an answer, ${l.delayMs > 0 ? `${l.delayMs} ms apart` : 'unpaced'}) and one Jarvis per configuration, all started together and pinned to the gateway CPU: ${l.measured.map(name).join('; ')}. ${l.measured.includes('traced') ? 'Traces go over OTLP/HTTP JSON to bench/otlp-receiver.ts, a process of its own on the load CPU that answers 200 and counts the spans of every export. ' : ''}${l.measured.includes('postgres') ? "PostgreSQL is the machine's server (not pinned), with a database of the bench's own, dropped after. " : ''}The load is one driver process on the load CPU (bench/ledger-driver.ts) with ${l.streams} connections to each Jarvis: ${fmt(l.warmupMs / 1000)} s of warm-up each, ${fmt(l.idleMs / 1000)} s all idle (each one's idle CPU), then ${rounds} rounds of ${l.cyclesPerRound ?? '?'} cycles, a cycle giving each configuration in turn a ${fmt(l.sliceMs)} ms slice of ${l.streams} closed-loop streams while the others idle, in the orders of a Williams design (each configuration comes right after every other equally often, so what one leaves behind for the next slice, a batch of lines or spans, falls on all alike). Ledger flush interval ${l.flushMs === null ? "Jarvis's default, 1 s" : `${l.flushMs} ms (\`JARVIS_LEDGER_FLUSH_MS\`)`}, the span exporter's timer (\`OTEL_BSP_SCHEDULE_DELAY\`) as long. A Jarvis's CPU (all threads, the ledger's worker included; /proc schedstat) over a round, less its idle rate over the round's time outside its slices, is what its requests cost it, the batches written off the request path included wherever in the round they fell (the last round ends ${fmt(l.settleMs)} ms after its last slice); per request and per token the client received. Figures are medians (min–max) across rounds; differences and ratios are taken within a round, then summarised. "Busy" is that CPU over the configuration's slices' wall time.`,
    '',
    table(['Configuration', 'requests/s', 'CPU µs/request', 'CPU µs/token', 'TTFT p50', 'busy', 'idle CPU ms/s', 'ledger lines/request', 'spans/request', 'PostgreSQL backend CPU µs/request', 'bad streams'], rows, 'lrrrrrrrrrr'),
    '',
    `Against (a), per round ("above": rounds where the configuration cost more CPU per request). A difference is called measurable when every round is on the same side${band ? `, and its median is further from 0 than ± ${fmt(noiseBand(band))} µs, the largest difference in any round between two identical processes ((a') and (a)), either way` : ''}.`,
    '',
    table(['', 'CPU µs/request', 'CPU µs/token', 'requests/s ×', 'TTFT p50', 'CPU per request'], diffRows, 'lrrrrl'),
    '',
    ...(t
      ? [`- Traces: the receiver got **${t.spans.toLocaleString('en-US')} spans** (${Object.entries(t.byKind).map(([k, n]) => `${n.toLocaleString('en-US')} ${kinds[k] ?? `of kind ${k}`}`).join(', ')}) in ${t.posts.toLocaleString('en-US')} exports (${fmt(t.bytes / 1024 / 1024)} MiB${t.refused ? `; ${t.refused} refused` : ''}) for the ${(l.driver?.totalRequests.traced ?? NaN).toLocaleString('en-US')} requests the traced Jarvis served (warm-up included), counted after its shutdown exported the last.`]
      : []),
    `- Ledger lines written over the run per request served: ${l.measured.filter((c) => l.linesWritten[c] !== undefined).map((c) => `${LEDGER_CONFIG_INFO[c].tag} ${fmt(f.per[c]!.linesPerRequest)} (${(l.linesWritten[c] ?? NaN).toLocaleString('en-US')} lines)`).join(', ') || '–'}.`,
    `- The machine over the rounds: ${fmtSpread(f.host.busyCores)} cores busy of ${r.machine.cores}; of them, other processes than the bench's ${fmtSpread(f.host.otherCores)}; stolen by the hypervisor ${fmtSpread(f.host.stealCores)}.`,
    ...(store.length > 0
      ? [
          '',
          `**The stores alone** (bench/ledger-store-cost.ts, a process of its own pinned as Jarvis is, after every Jarvis stopped: ${fmt(store[0]!.lines)} lines written in batches of 1,000, one transaction each, back to back, with Jarvis's store classes). In Jarvis this work is off the request path: a request queues its line, and the queue is written every flush interval, the embedded store's SQLite in its worker thread.`,
          '',
          table(
            ['Store', 'lines/s', 'CPU µs/line, writer (all threads)', 'CPU µs/line, PostgreSQL backend', 'a batch of 1,000: median / max'],
            store.map((s) => {
              const ms = [...s.batchMs].sort((a, b) => a - b);
              return [s.store === 'embedded' ? 'embedded (SQLite in a worker thread)' : 'PostgreSQL', fmt(s.linesPerSec), fmt(s.cpuUsPerLine), Number.isFinite(s.serverCpuUsPerLine) ? fmt(s.serverCpuUsPerLine) : '–', `${fmt(ms[ms.length >> 1] ?? NaN)} / ${fmt(ms[ms.length - 1] ?? NaN)} ms`];
            }),
          ),
        ]
      : []),
    ...Object.entries(l.skipped).map(([c, why]) => `- Not measured, ${LEDGER_CONFIG_INFO[c as LedgerConfig].tag}: ${quote(why)}`),
    ...(l.driverError ? [`- The driver failed: ${quote(l.driverError)}`] : []),
    ...l.measured.flatMap((c) => f.per[c]!.errors.slice(0, 3).map((e) => `- Failed streams, ${LEDGER_CONFIG_INFO[c].tag}: ${quote(e)}`)),
    ...(l.driver?.warmupErrors ?? []).map((e) => `- Warm-up: ${quote(e)}`),
    ...(l.store?.errors ?? []).map((e) => `- Store write cost failed: ${quote(e)}`),
    ...(l.storeError ? [`- Store write cost failed: ${quote(l.storeError)}`] : []),
  ];
}

function workersSection(r: BenchResults): string[] {
  const w = r.workers;
  if (!w) return [];
  const f = workersFigures(w);
  const rounds = new Set((w.driver?.slices ?? []).map((s) => s.round)).size;
  const quote = (e: string) => `\`${e.slice(0, 300).replace(/`/g, "'")}\``;
  const label = (c: (typeof w.measured)[number]) => configLabel(c, w.workers);
  const rows = f.levels.flatMap((l) =>
    w.measured.map((c) => {
      const x = l.per[c]!;
      const g = x.figures;
      return [
        String(l.level),
        label(c),
        fmtSpread(g.streamsPerSec),
        fmtSpread(g.chunksPerSec),
        fmtSpread(g.cpuUsPerChunk, 'µs'),
        c === 'workers' ? fmtSpread(g.primaryUsPerChunk, 'µs') : '–',
        fmtSpread(g.gatewayCores),
        fmtSpread(g.loadCores),
        fmtSpread(g.redisUsPerChunk, 'µs'),
        fmtSpread(g.ttftP50, 'ms'),
        c === 'workers' ? fmtSpread(g.busiestWorkerShare) : '–',
        x.connections.join(' / ') || '–',
        x.bad === 0 ? `0/${x.requests.toLocaleString('en-US')}` : `**${x.bad}/${x.requests.toLocaleString('en-US')}**`,
      ];
    }),
  );
  const ratioCell = (d: WorkersRatio | undefined) => (d ? `${fmtSpread(d.spread, '×')}, ${d.above}/${d.rounds} above 1` : '–');
  const ratioRows = f.levels.filter((l) => l.chunksPerSec).map((l) => [String(l.level), ratioCell(l.chunksPerSec), ratioCell(l.streamsPerSec), ratioCell(l.cpuUsPerChunk), ratioCell(l.ttftP50)]);
  const all = f.levels.flatMap((l) => w.measured.map((c) => l.per[c]!));
  return [
    '',
    `## 12. Every core: JARVIS_WORKERS=${w.workers} against one process (Jarvis only)`,
    '',
    `One mock upstream (${w.tokens} tokens an answer, unpaced) and one Redis (${w.redis ? (w.redis.private ? `a redis-server of the bench's own${w.redis.version ? ` (${w.redis.version})` : ''} on a free loopback port, no persistence` : `REDIS_URL, ${w.redis.url}`) : '–'}; each Jarvis under a prefix of its own); two Jarvis started together: ${w.measured.map(label).join(' and ')} (a node:cluster primary and its workers on one port), both with \`REDIS_URL\`${w.ledger ? '' : ' and `JARVIS_LEDGER=0` (the ledger writes its batches a second later, into the next slice; its cost is scenario 11\'s)'}. **Neither Jarvis is pinned** (the workers inherit the primary's CPUs), nor is Redis; the driver and the mock ${w.loadPinned ? `are pinned to CPU ${LOAD_CPU} as in every scenario, so beyond one core a configuration gets only what they leave of that CPU` : 'are not pinned either (no taskset, or --no-pin)'}. The load is one driver process (bench/workers-driver.ts) with a pool of keep-alive connections per level to each Jarvis, all opened before anything is measured (a connection stays on the worker that accepted it): ${fmt(w.warmupMs / 1000)} s of warm-up each at the largest level, in alternating slices; ${fmt(w.idleMs / 1000)} s all idle; then ${rounds} round${rounds === 1 ? '' : 's'}, a round giving each level a ${fmt(w.sliceMs)} ms slice of closed-loop streams per configuration, the two back to back in an order that alternates from round to round. A slice's CPU is the sum over every process of the configuration (the primary and each worker, all threads; /proc schedstat) from its first request to ${fmt(w.settleMs)} ms after its last stream, less its idle rate over those ${fmt(w.settleMs)} ms; per chunk the client received. "Cores" is that CPU over the slice's wall time; "load side" the driver's and the mock's CPU over it (near 1: they were the limit). Figures are medians (min–max) across rounds; ratios are taken within a round, then summarised.`,
    '',
    table(['Streams', 'Configuration', 'streams/s', 'chunks/s', 'CPU µs/chunk (all processes)', 'of it the primary', 'cores', 'load side cores', 'Redis CPU µs/chunk', 'TTFT p50', 'busiest worker\'s share of CPU', 'the level\'s connections per worker', 'bad streams'], rows, 'llrrrrrrrrrrr'),
    '',
    ...(ratioRows.length > 0 ? [`JARVIS_WORKERS=${w.workers} / one process, per round:`, '', table(['Streams', 'chunks/s', 'streams/s', 'CPU per chunk', 'TTFT p50'], ratioRows), ''] : []),
    `- Idle CPU (all processes): ${w.measured.map((c) => `${label(c)} ${fmt(f.idleCpuMsPerSec[c] ?? NaN)} ms a second (${f.processes[c] ?? '?'} process${f.processes[c] === 1 ? '' : 'es'})`).join(', ')}.`,
    `- The machine over the slices: other processes than the bench's ${fmtSpread(spread(all.map((x) => x.figures.otherCores.median)))} cores (medians per level and configuration), stolen by the hypervisor ${fmtSpread(spread(all.map((x) => x.figures.stealCores.median)))}.`,
    ...all.filter((x) => x.changed > 0).map((x) => `- ${x.changed} slice(s) saw a worker die or be forked: their CPU is left out.`),
    ...Object.entries(w.skipped).map(([c, why]) => `- Not measured, ${c}: ${quote(why)}`),
    ...(w.driverError ? [`- The driver failed: ${quote(w.driverError)}`] : []),
    ...f.levels.flatMap((l) => w.measured.flatMap((c) => l.per[c]!.errors.slice(0, 3).map((e) => `- Failed streams, ${l.level} streams, ${label(c)}: ${quote(e)}`))),
    ...(w.driver?.warmupErrors ?? []).map((e) => `- Warm-up: ${quote(e)}`),
  ];
}

function bargeInClusterSection(r: BenchResults): string[] {
  const b = r.bargeInCluster;
  if (!b) return [];
  const rates = clusterFigures(b);
  const rounds = new Set(b.storms.filter((s) => s.result).map((s) => s.round)).size;
  const quote = (e: string) => `\`${e.slice(0, 300).replace(/`/g, "'")}\``;
  const list = (m: Record<string, number>) => Object.entries(m).map(([k, v]) => `${k}: ${v}`).join(', ');
  const ROWS: [keyof ClusterStormFigures, string, string][] = [
    ['closeP50', 'New request sent → old upstream closed, p50', 'ms'],
    ['closeP99', 'New request sent → old upstream closed, p99', 'ms'],
    ['handoffP50', 'Old upstream closed → new request at the upstream (hand-over), p50', 'ms'],
    ['handoffP99', 'Hand-over, p99', 'ms'],
    ['newTtftP50', "Every superseding request's TTFT, p50", 'ms'],
    ['newTtftP99', "Every superseding request's TTFT, p99", 'ms'],
    ['finalTtftP50', "Each session's last request's TTFT, p50", 'ms'],
    ['finalTtftP99', "Each session's last request's TTFT, p99", 'ms'],
    ['requestsPerSec', 'Requests a second over the storm (open loop: the schedule unless it fell behind)', ''],
    ['jarvisUsPerRequest', 'Jarvis CPU per request (both instances)', 'µs'],
    ['jarvisCores', 'Jarvis cores (both instances)', ''],
    ['redisUsPerRequest', 'Redis CPU per request (every redis-server)', 'µs'],
    ['redisCores', 'Redis cores', ''],
    ['loopP99Ms', "Instance 1's event-loop p99, worst 500 ms scrape", 'ms'],
  ];
  const ratioCell = (d: ClusterRatio | undefined) => (d && d.rounds > 0 ? `${fmtSpread(d.spread, '×')}, ${d.above}/${d.rounds} above 1` : '–');
  const out = [
    '',
    '## 13. Barge-in storm on a Redis Cluster against a single Redis (two Jarvis instances)',
    '',
    `Scenario 3's two-instance storm: ${b.sessions} sessions, each sending ${b.requestsPerSession} streaming requests ${b.gapMs} ms apart with the same \`X-Session-Id\`, request k of a session to instance k mod 2 (every barge-in crosses instances, through Redis); the mock streams ${b.tokens} tokens ${b.delayMs} ms apart; the sessions start over ${b.rampsMs.map((x) => `${fmt(x / 1000)} s`).join(' and ')}. The pair runs on **(a) a single Redis**, a redis-server of the bench's own${b.redis.version ? ` (${b.redis.version})` : ''} on a free loopback port, and on **(b) a Redis Cluster** of the bench's own, ${b.redis.cluster?.servers ?? 6} redis-servers (three masters, three replicas, \`redis-cli --cluster create\`, cluster-node-timeout 1 s) with \`REDIS_CLUSTER_NODES\`; no persistence, each pair under a prefix of its own, every redis-server killed with the bench. Both pairs and both Redis run throughout, ${b.pinned ? `each instance pinned to CPU ${GATEWAY_CPU} and the driver (mock and client on one clock) to CPU ${LOAD_CPU}; Redis is not pinned` : 'nothing pinned'}. Each configuration first gets an unmeasured storm of ${b.warmupSessions} sessions over ${fmt(b.warmupRampMs / 1000)} s, then ${fmt(b.idleMs / 1000)} s all idle; then ${rounds} round${rounds === 1 ? '' : 's'}, each giving every rate one storm per configuration, the two back to back in an order that alternates from rate to rate and round to round. Jarvis's CPU is both instances', Redis's every redis-server's of the configuration (/proc schedstat), over the storm (warm-up of its connections excluded). Figures are medians (min–max) over the rounds; cluster ÷ single is taken within a round, then summarised.`,
  ];
  for (const f of rates) {
    const present = b.measured.filter((c) => f.per[c]);
    if (present.length === 0) continue;
    out.push(
      '',
      `### ${clusterRateLabel(b, f.rampMs)}`,
      '',
      table(
        ['', ...present.map((c) => REDIS_CONFIG_LABEL[c]), 'cluster ÷ single, per round'],
        ROWS.map(([k, name, unit]) => [name, ...present.map((c) => fmtSpread(f.per[c]!.figures[k], unit)), (CLUSTER_RATIOS as string[]).includes(k) ? ratioCell(f.ratios[k]) : '–']),
        'l' + 'r'.repeat(present.length + 1),
      ),
      '',
      ...present.map((c) => {
        const n = f.per[c]!.counts;
        const oldOther = list(n.oldOther);
        const finalOther = list(n.finalOther);
        return `- ${REDIS_CONFIG_LABEL[c]} (${n.storms} storm${n.storms === 1 ? '' : 's'}, ${n.requests.toLocaleString('en-US')} requests): old streams that ended \`cancelled\` **${n.oldCancelled}/${n.oldStreams}**${oldOther ? ` (other endings: ${oldOther})` : ''}; final streams complete ${n.finalComplete}/${n.finalStreams}${finalOther ? ` (other endings: ${finalOther})` : ''}; sessions whose older request won **${n.olderWon}/${n.evaluated}**; sessions the client wrote out of order (left out) ${n.reordered}; upstream connections never closed ${n.unclosed}.`;
      }),
      `- The machine over the storms: other processes than the bench's ${present.map((c) => `${fmtSpread(f.per[c]!.figures.otherCores)} (${c})`).join(', ')} cores, stolen by the hypervisor ${present.map((c) => `${fmtSpread(f.per[c]!.figures.stealCores)} (${c})`).join(', ')}.`,
    );
  }
  const idle = b.measured.filter((c) => b.idle[c]);
  if (idle.length > 0) out.push(`- All idle: ${idle.map((c) => `${REDIS_CONFIG_LABEL[c]}: the pair ${fmt(b.idle[c]!.jarvisMsPerSec)} ms of CPU a second, Redis ${fmt(b.idle[c]!.redisMsPerSec)} ms`).join('; ')}.`);
  for (const c of b.measured) {
    const after = b.redisStateAfter[c];
    if (after && after.some((s) => s !== 'up')) out.push(`- **${REDIS_CONFIG_LABEL[c]}: Redis was not up on every instance after the rounds** (${after.join(', ')}).`);
  }
  out.push(
    ...Object.entries(b.skipped).map(([c, why]) => `- Not measured, ${c}: ${quote(why)}`),
    ...b.warmupErrors.map((e) => `- Warm-up: ${quote(e)}`),
    ...(b.error ? [`- The rounds stopped early: ${quote(b.error)}`] : []),
  );
  return out;
}

function footer(r: BenchResults): string[] {
  const failed = Object.entries(r.failures);
  return [
    ...(failed.length > 0 ? ['', '## Scenarios that did not run', '', ...failed.map(([k, v]) => `- ${k}: \`${v.slice(0, 600).replace(/`/g, "'")}\``)] : []),
    '',
    '## How to read this',
    '',
    `- A shared 2-core machine is noisy: look at the (min–max) spread before reading much into a difference. The direct path is measured in the same run as the gateways, so ratios cancel part of the noise; absolute tokens/s do not.`,
    `- "direct" has no gateway: its client and the mock share CPU ${r.pinning.startsWith('taskset') ? '0' : '(unpinned)'}, while a gateway gets a core of its own. A ratio near or above 1 means the gateway keeps up with what this client and mock can produce, not that it is free.`,
    `- bench/results/latest.json has every run's raw figures; bench/README.md explains each scenario.`,
    '',
  ];
}

export function renderMarkdown(r: BenchResults): string {
  return [...header(r), ...headline(r), ...againstFloor(r), ...relaySection(r), ...latencySection(r), ...bargeInSection(r), ...capacitySection(r), ...fanoutSection(r), ...tailSection(r), ...voiceSection(r), ...wireSection(r), ...rolloutSection(r), ...realtimeSection(r), ...ledgerSection(r), ...workersSection(r), ...bargeInClusterSection(r), ...footer(r)].join('\n');
}

export function writeReport(r: BenchResults, outDir: string): { md: string; svg: string; json: string } {
  mkdirSync(outDir, { recursive: true });
  const paths = { md: join(outDir, 'latest.md'), svg: join(outDir, 'latest.svg'), json: join(outDir, 'latest.json') };
  writeFileSync(paths.md, renderMarkdown(r));
  writeFileSync(paths.svg, renderChart(r));
  // NaN is not JSON: it is written as null (and read back as NaN by parseResultLine's reviver).
  writeFileSync(paths.json, `${JSON.stringify(r, null, 1)}\n`);
  return paths;
}
