import pino from 'pino';
import { afterEach, expect, it } from 'vitest';
import { EventLoopWatchdog } from './event-loop-watchdog.js';

let watchdog: EventLoopWatchdog | undefined;
afterEach(() => watchdog?.close());

function blockLoop(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

/** Resolves after the watchdog has ticked `n` more times. */
function ticks(n: number, seen: { count: number }): Promise<void> {
  const target = seen.count + n;
  return new Promise((resolve) => {
    const poll = setInterval(() => {
      if (seen.count >= target) {
        clearInterval(poll);
        resolve();
      }
    }, 1);
  });
}

it('keeps a stall in view for the window after it, although the ticks after it are on time', async () => {
  const seen = { count: 0 };
  watchdog = new EventLoopWatchdog({ thresholdMs: 1_000, intervalMs: 5, windowMs: 60_000, log: pino({ enabled: false }), onDelay: () => seen.count++ });
  watchdog.start();
  await ticks(2, seen);
  expect(watchdog.recentDelayMs).toBeLessThan(150);
  blockLoop(200);
  await ticks(5, seen);
  expect(watchdog.recentDelayMs).toBeGreaterThanOrEqual(150);
});

it('forgets a stall once the window has passed', async () => {
  const seen = { count: 0 };
  watchdog = new EventLoopWatchdog({ thresholdMs: 1_000, intervalMs: 5, windowMs: 50, log: pino({ enabled: false }), onDelay: () => seen.count++ });
  watchdog.start();
  blockLoop(200);
  await ticks(1, seen);
  const stalledAt = performance.now();
  while (performance.now() - stalledAt < 60) await ticks(1, seen);
  await ticks(2, seen);
  expect(watchdog.recentDelayMs).toBeLessThan(150);
});
