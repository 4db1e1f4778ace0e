import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = new URL('..', import.meta.url).pathname;

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [p] : [];
  });
}

/** Every event name a log call in src/ uses, e.g. `log.info({ ... }, 'stream_end')`. */
function loggedEvents(): Set<string> {
  const names = new Set<string>();
  for (const file of sources(SRC)) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/\.(?:trace|debug|info|warn|error|fatal)\(\s*(?:\{[^;]*?\}|[\w.]+)\s*,\s*'([a-z_]+)'\s*,?\s*\)/gs)) names.add(m[1]!);
  }
  return names;
}

describe('log vocabulary', () => {
  const doc = readFileSync(new URL('../../docs/streaming.md', import.meta.url), 'utf8');
  const names = [...loggedEvents()];

  it('finds the stream lifecycle events in the source', () => {
    for (const core of ['stream_start', 'stream_end', 'stream_cancelled', 'flush_scheduled', 'flush_done', 'cleanup_buffer', 'prev_stream_finished_cleanly']) {
      expect(names).toContain(core);
    }
  });

  it.each(names)('%s is in the log reference of docs/streaming.md', (name) => {
    expect(doc).toContain(`\`${name}\``);
  });
});
