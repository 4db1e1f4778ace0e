import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const SRC = new URL('..', import.meta.url).pathname;
const LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal']);
/** A logger, as src/ names them: `log`, `ctx.log`, `this.#log`, `claim.log`, `logger`, `childLog`... (not `catalog`). */
const LOGGER = /(?:^|[.#])(?:log|logger|\w*Log|\w*Logger)$/;

/**
 * Log calls whose message is chosen by an expression that is not made of string literals (a variable, a call):
 * `file:expression` → every message it can give, so each is held to the log reference like a literal one. A new
 * such call fails the test until it is listed here.
 */
const CHOSEN: Record<string, string[]> = {};

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [p] : [];
  });
}

/** The string literals an expression made only of literals can give (`'a'`, `c ? 'a' : ('b')`...), or undefined. */
function literalsOf(e: ts.Expression): string[] | undefined {
  if (ts.isStringLiteral(e) || ts.isNoSubstitutionTemplateLiteral(e)) return [e.text];
  if (ts.isParenthesizedExpression(e) || ts.isAsExpression(e) || ts.isSatisfiesExpression(e)) return literalsOf(e.expression);
  if (ts.isConditionalExpression(e)) {
    const [a, b] = [literalsOf(e.whenTrue), literalsOf(e.whenFalse)];
    return a && b ? [...a, ...b] : undefined;
  }
  return undefined;
}

interface LogCalls {
  /** Every message the log calls can give. */
  names: Set<string>;
  /** Log calls whose message is neither a literal, nor chosen among literals, nor listed in `chosen`: `file:line expression`. */
  unresolved: string[];
}

/**
 * Every log call of `text` (pino's `log.info({ ... }, 'stream_end')`, `log.warn('msg')`, at any layout, its
 * level named or computed) and the message it gives: a string literal, the literals of an expression that picks
 * one, or what `chosen` lists for it.
 */
function logCalls(file: string, text: string, chosen: Record<string, string[]> = CHOSEN): LogCalls {
  const names = new Set<string>();
  const unresolved: string[] = [];
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const where = (n: ts.Node) => `${file}:${sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1}`;
  const visit = (n: ts.Node): void => {
    if (ts.isCallExpression(n)) {
      const callee = n.expression;
      const isLog =
        (ts.isPropertyAccessExpression(callee) && LEVELS.has(callee.name.text) && LOGGER.test(callee.expression.getText(sf))) ||
        (ts.isElementAccessExpression(callee) && LOGGER.test(callee.expression.getText(sf)));
      if (isLog) {
        // pino: (message, ...) or (object, message, ...).
        const [first, second] = n.arguments;
        const message = first && (literalsOf(first) || second === undefined) ? first : second;
        const given = message === undefined || ts.isObjectLiteralExpression(message) ? undefined : (literalsOf(message) ?? chosen[`${file}:${message.getText(sf)}`]);
        if (given) for (const name of given) names.add(name);
        else unresolved.push(`${where(n)} ${n.getText(sf).replace(/\s+/g, ' ')}`);
      }
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return { names, unresolved };
}

/** Every log call in src/. */
function loggedEvents(): LogCalls {
  const all: LogCalls = { names: new Set(), unresolved: [] };
  for (const file of sources(SRC)) {
    const { names, unresolved } = logCalls(relative(SRC, file), readFileSync(file, 'utf8'));
    for (const name of names) all.names.add(name);
    all.unresolved.push(...unresolved);
  }
  return all;
}

describe('finding log messages', () => {
  it('finds a message however the call is written, and flags one it cannot tell', () => {
    const text = [
      `log.info({ a: 1 }, 'plain_one');`,
      `this.#opts.log\n  .warn(\n    { b: 2 },\n    hedge ? 'chosen_a' : ('chosen_b'),\n  );`,
      'ctx.log.error(`template_one`);',
      `logger[level]({ c: 3 }, 'computed_level');`,
      `claim.log.debug({ d: 4 }, retry ? (late ? 'nested_a' : 'nested_b') : 'nested_c');`,
      `log.info({ e: 5 }, message);`,
      'log.warn({ f: 6 }, `made_${kind}`);',
      `log.info({ g: 7 });`,
      `map.get('x'); list.error; reply.info({ h: 8 }, 'not_a_log'); catalog.info({}, 'nor_this');`,
    ].join('\n');
    const { names, unresolved } = logCalls('x.ts', text);
    expect([...names].sort()).toEqual(['chosen_a', 'chosen_b', 'computed_level', 'nested_a', 'nested_b', 'nested_c', 'plain_one', 'template_one']);
    expect(unresolved).toEqual(['x.ts:10 log.info({ e: 5 }, message)', 'x.ts:11 log.warn({ f: 6 }, `made_${kind}`)', 'x.ts:12 log.info({ g: 7 })']);
    // Listed with the messages it can give, a chosen message is found.
    const listed = logCalls('x.ts', text, { 'x.ts:message': ['listed_a'], 'x.ts:`made_${kind}`': ['made_b'] });
    expect(listed.names).toContain('listed_a');
    expect(listed.names).toContain('made_b');
    expect(listed.unresolved).toEqual(['x.ts:12 log.info({ g: 7 })']);
  });
});

describe('log vocabulary', () => {
  const doc = readFileSync(new URL('../../docs/streaming.md', import.meta.url), 'utf8');
  const found = loggedEvents();
  const names = [...found.names];

  it('finds the stream lifecycle events in the source', () => {
    for (const core of ['stream_start', 'stream_end', 'stream_cancelled', 'flush_scheduled', 'flush_done', 'cleanup_buffer', 'prev_stream_finished_cleanly', 'attempt_start', 'hedge_start']) {
      expect(names).toContain(core);
    }
  });

  it('knows the message of every log call: a literal, chosen among literals, or listed in CHOSEN', () => {
    expect(found.unresolved).toEqual([]);
  });

  it.each(names)('%s is in the log reference of docs/streaming.md', (name) => {
    expect(doc).toContain(`\`${name}\``);
  });
});
