import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, JarvisError } from './errors.js';

/** One row of docs/errors.md's table: | `JARVIS_ERR_...` | Status | `type` | `code` | When |. */
interface DocRow {
  line: number;
  jarvisCode: string;
  status: string;
  type: string;
  code: string;
  when: string;
}

const CODES = /JARVIS_ERR_[A-Z0-9_]+/g;
/** Errors that pass an upstream's through: the table says what the upstream decides instead of a status, type, code. */
const UPSTREAM_DECIDED = new Set(['JARVIS_ERR_UPSTREAM_STATUS', 'JARVIS_ERR_UPSTREAM_REPORTED']);

/** The table rows of an errors page, and every Jarvis code the page names anywhere. */
function parseErrorsDoc(doc: string): { rows: DocRow[]; named: Set<string>; malformed: string[] } {
  const rows: DocRow[] = [];
  const malformed: string[] = [];
  doc.split('\n').forEach((text, i) => {
    if (!text.startsWith('|')) return;
    const cells = text.split('|').slice(1, -1).map((c) => c.trim());
    if (!cells[0]?.includes('JARVIS_ERR_')) return; // the header and its separator
    const m = /^`(JARVIS_ERR_[A-Z0-9_]+)`$/.exec(cells[0]!);
    if (!m || cells.length < 5 || cells.slice(1, 5).some((c) => c === '')) {
      malformed.push(`line ${i + 1}: ${text}`);
      return;
    }
    rows.push({ line: i + 1, jarvisCode: m[1]!, status: cells[1]!, type: cells[2]!, code: cells[3]!, when: cells.slice(4).join('|') });
  });
  return { rows, named: new Set(doc.match(CODES) ?? []), malformed };
}

/** Where the doc's entry for a code disagrees with it, is missing or duplicated, or names a code that does not exist. */
function docProblems(doc: string, codes: Record<string, { status: number; type: string; code: string }>): string[] {
  const { rows, named, malformed } = parseErrorsDoc(doc);
  const problems = [...malformed.map((m) => `malformed row, ${m}`)];
  const byCode = new Map<string, DocRow[]>();
  for (const r of rows) byCode.set(r.jarvisCode, [...(byCode.get(r.jarvisCode) ?? []), r]);
  for (const [jarvisCode, def] of Object.entries(codes)) {
    const entries = byCode.get(jarvisCode) ?? [];
    if (entries.length === 0) {
      problems.push(`${jarvisCode} has no row in the table${named.has(jarvisCode) ? ' (it is only mentioned)' : ''}`);
      continue;
    }
    if (entries.length > 1) problems.push(`${jarvisCode} has ${entries.length} rows (lines ${entries.map((r) => r.line).join(', ')})`);
    const row = entries[0]!;
    if (row.when.trim() === '') problems.push(`${jarvisCode}: no "When"`);
    if (UPSTREAM_DECIDED.has(jarvisCode)) continue;
    // The status cell starts with the code's status ("502 (in-stream)").
    if (!new RegExp(`^${def.status}\\b`).test(row.status)) problems.push(`${jarvisCode}: the table says status ${row.status}, src/errors.ts ${def.status}`);
    if (row.type !== def.type) problems.push(`${jarvisCode}: the table says type ${row.type}, src/errors.ts ${def.type}`);
    if (row.code !== def.code) problems.push(`${jarvisCode}: the table says code ${row.code}, src/errors.ts ${def.code}`);
  }
  for (const jarvisCode of new Set([...named, ...byCode.keys()])) {
    if (!Object.hasOwn(codes, jarvisCode)) problems.push(`${jarvisCode} is documented but is not in src/errors.ts`);
  }
  return problems;
}

describe('error codes', () => {
  const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');

  it('each code has its own row in docs/errors.md, agreeing with src/errors.ts, and each documented code exists', () => {
    expect(docProblems(doc, ERROR_CODES)).toEqual([]);
  });

  it('the check is not satisfied by a mention: a code must have its row, and a row its code', () => {
    const codes = {
      JARVIS_ERR_A: { status: 400, type: 'invalid_request_error', code: 'a' },
      JARVIS_ERR_B: { status: 502, type: 'api_error', code: 'b' },
      JARVIS_ERR_C: { status: 500, type: 'api_error', code: 'c' },
    };
    const page = [
      'Prose naming `JARVIS_ERR_B` and `JARVIS_ERR_GONE`.',
      '',
      '| Jarvis code | Status | `type` | `code` | When |',
      '|---|---|---|---|---|',
      '| `JARVIS_ERR_A` | 400 | invalid_request_error | a | Bad |',
      '| `JARVIS_ERR_C` | 503 | api_error | c | Wrong status |',
      '| `JARVIS_ERR_C` | 500 | api_error | c | Twice |',
      '| `JARVIS_ERR_OLD` | 500 | api_error | old | Removed from the code |',
      '| JARVIS_ERR_A | 400 | | a | Not in the table\'s form |',
    ].join('\n');
    expect(docProblems(page, codes)).toEqual([
      "malformed row, line 9: | JARVIS_ERR_A | 400 | | a | Not in the table's form |",
      'JARVIS_ERR_B has no row in the table (it is only mentioned)',
      'JARVIS_ERR_C has 2 rows (lines 6, 7)',
      'JARVIS_ERR_C: the table says status 503, src/errors.ts 500',
      'JARVIS_ERR_GONE is documented but is not in src/errors.ts',
      'JARVIS_ERR_OLD is documented but is not in src/errors.ts',
    ]);
  });

  it('serialises in the OpenAI error shape', () => {
    const err = new JarvisError('JARVIS_ERR_INVALID_REQUEST', 'bad', { param: 'messages' });
    expect(err.toJSON()).toEqual({ error: { message: 'bad', type: 'invalid_request_error', param: 'messages', code: 'invalid_value' } });
    expect(err.status).toBe(400);
  });
});
