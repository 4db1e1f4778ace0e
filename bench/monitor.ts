// Watches the gateway process during one measured phase: CPU seconds, RSS (start, peak, end) and, when asked,
// a few /metrics values scraped periodically.
import { scrapeMetrics } from './metrics-scrape.js';
import { cpuSeconds, rssKiB } from './proc-stats.js';

export interface MonitorSpec {
  pid?: number | undefined;
  metricsUrl?: string | undefined;
  metrics?: string[] | undefined;
  /** How often RSS is sampled for the peak. */
  rssEveryMs?: number;
  /** How often /metrics is scraped during the phase (0: only at start and end). */
  scrapeEveryMs?: number;
}

export interface MonitorResult {
  cpuSec: number;
  rssStartKiB: number;
  rssPeakKiB: number;
  rssEndKiB: number;
  metricsStart: Record<string, number>;
  metricsEnd: Record<string, number>;
  /** Every periodic scrape's value, per metric. */
  metricSamples: Record<string, number[]>;
}

export class GatewayMonitor {
  readonly #spec: MonitorSpec;
  #cpu0 = NaN;
  #rssStart = NaN;
  #rssPeak = NaN;
  #metricsStart: Record<string, number> = {};
  readonly #samples: Record<string, number[]> = {};
  readonly #timers: NodeJS.Timeout[] = [];
  #scraping = false;

  constructor(spec: MonitorSpec) {
    this.#spec = spec;
  }

  async start(): Promise<void> {
    const { pid, metricsUrl, metrics = [] } = this.#spec;
    if (metricsUrl && metrics.length > 0) this.#metricsStart = await scrapeMetrics(metricsUrl, metrics);
    if (pid !== undefined) {
      this.#cpu0 = cpuSeconds(pid);
      this.#rssStart = this.#rssPeak = rssKiB(pid);
      this.#timers.push(setInterval(() => this.#sampleRss(pid), this.#spec.rssEveryMs ?? 250));
    }
    const every = this.#spec.scrapeEveryMs ?? 0;
    if (metricsUrl && metrics.length > 0 && every > 0) {
      this.#timers.push(setInterval(() => void this.#scrape(metricsUrl, metrics), every));
    }
  }

  #sampleRss(pid: number): void {
    const rss = rssKiB(pid);
    // `!(rss <= peak)` also replaces a NaN peak (nothing read yet).
    if (Number.isFinite(rss) && !(rss <= this.#rssPeak)) this.#rssPeak = rss;
  }

  async #scrape(url: string, names: string[]): Promise<void> {
    // A slow scrape is skipped rather than stacked.
    if (this.#scraping) return;
    this.#scraping = true;
    try {
      const values = await scrapeMetrics(url, names);
      for (const [k, v] of Object.entries(values)) (this.#samples[k] ??= []).push(v);
    } finally {
      this.#scraping = false;
    }
  }

  async stop(): Promise<MonitorResult> {
    for (const t of this.#timers.splice(0)) clearInterval(t);
    const { pid, metricsUrl, metrics = [] } = this.#spec;
    const cpu1 = pid === undefined ? NaN : cpuSeconds(pid);
    if (pid !== undefined) this.#sampleRss(pid);
    const rssEnd = pid === undefined ? NaN : rssKiB(pid);
    const metricsEnd = metricsUrl && metrics.length > 0 ? await scrapeMetrics(metricsUrl, metrics) : {};
    return {
      cpuSec: cpu1 - this.#cpu0,
      rssStartKiB: this.#rssStart,
      rssPeakKiB: this.#rssPeak,
      rssEndKiB: rssEnd,
      metricsStart: this.#metricsStart,
      metricsEnd,
      metricSamples: this.#samples,
    };
  }
}
