import { expect, it } from 'vitest';
import { histogramQuantile, parseMetrics } from './metrics-scrape.js';

const TEXT = `# HELP x
jarvis_streams_total{outcome="end"} 3
jarvis_streams_total{outcome="cancelled"} 2
d_bucket{le="0.01"} 90
d_bucket{le="0.05"} 99
d_bucket{le="0.1"} 100
d_bucket{le="+Inf"} 100
d_count 100
`;

it('sums a metric over its label sets, but keeps a histogram’s buckets apart', () => {
  expect(parseMetrics(TEXT, ['jarvis_streams_total', 'd_bucket'])).toEqual({
    jarvis_streams_total: 5,
    'd_bucket{le="0.01"}': 90,
    'd_bucket{le="0.05"}': 99,
    'd_bucket{le="0.1"}': 100,
    'd_bucket{le="+Inf"}': 100,
  });
});

it('reads a quantile between two readings of cumulative buckets, as histogram_quantile does', () => {
  const to = parseMetrics(TEXT, ['d_bucket']);
  const none = {};
  expect(histogramQuantile(0.99, none, to)).toBeCloseTo(0.05);
  expect(histogramQuantile(0.5, none, to)).toBeCloseTo((0.01 * 50) / 90);
  // Only what was observed in between counts: 10 more observations, all between 50 and 100 ms.
  const later = { ...to, 'd_bucket{le="0.1"}': 110, 'd_bucket{le="+Inf"}': 110 };
  expect(histogramQuantile(0.5, to, later)).toBeCloseTo(0.075);
  // Past the largest finite bound, that bound; nothing observed, no figure.
  expect(histogramQuantile(0.99, to, { ...to, 'd_bucket{le="+Inf"}': 150 })).toBe(0.1);
  expect(histogramQuantile(0.99, to, to)).toBeNaN();
});
