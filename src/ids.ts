import { randomFillSync } from 'node:crypto';

/**
 * Random hex ids (request ids, trace ids) cut from a pool of random bytes refilled 4 KiB at a time: every stream
 * needs two, and a call into the CSPRNG for each was a percent of a flood's CPU. One pool per Jarvis instance.
 */
export class RandomIds {
  readonly #pool = Buffer.allocUnsafe(4096);
  #offset = this.#pool.length;

  hex(bytes: number): string {
    if (this.#offset + bytes > this.#pool.length) {
      randomFillSync(this.#pool);
      this.#offset = 0;
    }
    const out = this.#pool.toString('hex', this.#offset, this.#offset + bytes);
    this.#offset += bytes;
    return out;
  }
}
