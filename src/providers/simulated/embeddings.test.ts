import { describe, expect, it } from 'vitest';
import { JarvisError } from '../../errors.js';
import { simulatedEmbeddings } from './embeddings.js';

const vectors = (body: Record<string, unknown>) => (simulatedEmbeddings(body, 'jarvis-sim').data as { embedding: number[] | string }[]).map((d) => d.embedding);

describe('simulatedEmbeddings', () => {
  it('is deterministic, normalised, and nearer for texts that share words', () => {
    const [a, b, c, d] = vectors({ input: ['the cat sat on the mat', 'the cat sat on the mat', 'a cat sat', 'quantum chromodynamics'] }) as number[][];
    expect(a).toEqual(b);
    expect(Math.hypot(...a!)).toBeCloseTo(1, 5);
    const dot = (x: number[], y: number[]) => x.reduce((s, v, i) => s + v * y[i]!, 0);
    expect(dot(a!, c!)).toBeGreaterThan(dot(a!, d!));
  });

  it('honours dimensions and base64 (little-endian float32, as OpenAI sends it)', () => {
    const [floats] = vectors({ input: 'hello world', dimensions: 8 }) as number[][];
    const [packed] = vectors({ input: 'hello world', dimensions: 8, encoding_format: 'base64' }) as string[];
    const bytes = Buffer.from(packed!, 'base64');
    const decoded = [...new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4)];
    expect(floats).toHaveLength(8);
    decoded.forEach((v, i) => expect(v).toBeCloseTo(floats![i]!, 5));
  });

  it('reads token arrays, and refuses what is not an input', () => {
    expect(vectors({ input: [[1, 2, 3]] })).toHaveLength(1);
    for (const body of [{ input: [] }, { input: 5 }, { input: [{}] }, { input: 'x', dimensions: 0 }, { input: 'x', encoding_format: 'hex' }]) {
      expect(() => simulatedEmbeddings(body, 'jarvis-sim')).toThrow(JarvisError);
    }
  });
});
