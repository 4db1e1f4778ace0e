// Small statistics helpers shared by the load client, the drivers and the report.

export interface Dist {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
}

/** Nearest-rank percentile of an already sorted array; NaN when empty. */
export function percentileSorted(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/** p50/p90/p99/max of the samples (sorts a copy as a Float64Array: fast for large sample sets). */
export function distribution(samples: ArrayLike<number>, count = samples.length): Dist {
  const sorted = (samples instanceof Float64Array ? samples.slice(0, count) : Float64Array.from({ length: count }, (_, i) => samples[i]!)).sort();
  return {
    n: count,
    p50: percentileSorted(sorted, 50),
    p90: percentileSorted(sorted, 90),
    p99: percentileSorted(sorted, 99),
    max: count > 0 ? sorted[count - 1]! : NaN,
  };
}

/** Median and min-max of one figure measured once per run; NaN-valued runs are left out. */
export function spread(values: number[]): Spread {
  const ok = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (ok.length === 0) return { median: NaN, min: NaN, max: NaN, n: 0 };
  const mid = ok.length >> 1;
  const median = ok.length % 2 === 1 ? ok[mid]! : (ok[mid - 1]! + ok[mid]!) / 2;
  return { median, min: ok[0]!, max: ok[ok.length - 1]!, n: ok.length };
}

/** Median, the 25th and 75th percentiles (nearest rank) and min–max; NaN-valued samples are left out. */
export interface Quartiles {
  median: number;
  p25: number;
  p75: number;
  min: number;
  max: number;
  n: number;
}

/** The quartiles of samples (e.g. every rollout of every run), not of per-run figures (that is spread). */
export function quartiles(values: readonly number[]): Quartiles {
  const ok = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  const { median, min, max, n } = spread(ok);
  return { median, p25: percentileSorted(ok, 25), p75: percentileSorted(ok, 75), min, max, n };
}

/** a / b, NaN unless both are finite and b is not 0. */
export function ratio(a: number | undefined, b: number | undefined): number {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return NaN;
  return a / b;
}

/** A growable Float64Array with a hard cap, so a long run cannot grow memory without bound. */
export class Samples {
  #data: Float64Array;
  #n = 0;
  dropped = 0;

  constructor(
    initial = 1024,
    readonly cap = 2_000_000,
  ) {
    this.#data = new Float64Array(initial);
  }

  get length(): number {
    return this.#n;
  }

  push(v: number): void {
    if (this.#n >= this.cap) {
      this.dropped++;
      return;
    }
    if (this.#n === this.#data.length) {
      const bigger = new Float64Array(Math.min(this.cap, this.#data.length * 2));
      bigger.set(this.#data);
      this.#data = bigger;
    }
    this.#data[this.#n++] = v;
  }

  dist(): Dist {
    return distribution(this.#data, this.#n);
  }
}
