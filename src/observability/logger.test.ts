import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from './logger.js';

describe('createLogger', () => {
  let dir = '';
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function logger() {
    dir = await mkdtemp(join(tmpdir(), 'jarvis-logger-'));
    const file = join(dir, 'system.log');
    return { file, ...createLogger({ level: 'info', format: 'logfmt', file, stdout: false }) };
  }

  it('writes lines in order, in logfmt, with the key redacted, once flushed() resolves', async () => {
    const { logger: log, flushed, close, file } = await logger();
    await flushed(); // nothing logged yet: resolves at once
    for (let i = 0; i < 500; i++) log.info({ request_id: `req_${i}`, key: 'sk-secret' }, 'flush_done');
    await flushed();
    const lines = (await readFile(file, 'utf8')).trim().split('\n');
    expect(lines).toHaveLength(500);
    expect(lines[0]).toMatch(/^\S+Z info flush_done request_id=req_0 key="\[redacted\]"$/);
    expect(lines.map((l) => /request_id=req_(\d+)/.exec(l)?.[1])).toEqual(Array.from({ length: 500 }, (_, i) => String(i)));
    await close();
  });

  it('redacts keys and upstream keys wherever Jarvis could log them', async () => {
    const { logger: log, flushed, close, file } = await logger();
    log.info({ apiKey: 'sk-a', apiKeys: ['sk-b'], api_key: 'sk-c', authorization: 'Bearer sk-d', headers: { authorization: 'Bearer sk-e' } }, 'one');
    log.info({ upstream: { name: 'cloud', apiKey: 'sk-f' }, upstreams: [{ name: 'a', apiKey: 'sk-g' }, { name: 'b', apiKey: 'sk-h' }] }, 'two');
    await flushed();
    const text = await readFile(file, 'utf8');
    expect(text).not.toMatch(/sk-/);
    expect(text).toContain('cloud');
    expect(text.match(/\[redacted\]/g)).toHaveLength(8);
    await close();
  });

  it('close() writes what is still waiting', async () => {
    const { logger: log, close, file } = await logger();
    log.info({ signal: 'SIGTERM' }, 'signal_received');
    await close();
    expect(await readFile(file, 'utf8')).toMatch(/signal_received signal=SIGTERM\n$/);
  });
});
