// What a translation's refusal says, for the unit tests of every translation: its status, code and the parameter
// it names, or a failure when `translate` did not refuse.
import { JarvisError } from '../../src/errors.js';

export function refusalOf(translate: () => unknown): { status: number; code: string; param: string | null } {
  try {
    translate();
  } catch (err) {
    if (err instanceof JarvisError) return { status: err.status, code: err.code, param: err.param };
    throw err;
  }
  throw new Error('not refused');
}

/** A refusal as the tests expect it: 400 unsupported_value, or 400 invalid_value, naming `param`. */
export const unsupported = (param: string) => ({ status: 400, code: 'unsupported_value', param });
export const invalid = (param: string) => ({ status: 400, code: 'invalid_value', param });
