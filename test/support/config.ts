import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../src/config.js';

/** A temporary folder for config files; `remove` it in afterAll. */
export function configFiles(prefix: string): { file(name: string, text: string): string; path(name: string): string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return {
    file(name, text) {
      const path = join(dir, name);
      writeFileSync(path, text);
      return path;
    },
    /** Where `name` would be, without writing it: a file that does not exist. */
    path: (name) => join(dir, name),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** The ConfigError loadConfig throws for `env`; fails the test when it does not throw one. */
export function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error(`no ConfigError for ${JSON.stringify(env)}`);
}
