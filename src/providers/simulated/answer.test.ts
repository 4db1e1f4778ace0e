import { describe, expect, it } from 'vitest';
import { simulatedAnswer } from './answer.js';

describe('simulatedAnswer', () => {
  it('is deterministic: the same prompt always gives the same tokens', () => {
    expect(simulatedAnswer('Tell me about tides')).toEqual(simulatedAnswer('Tell me about tides'));
    expect(simulatedAnswer('Tell me about tides')).not.toEqual(simulatedAnswer('Tell me about winds'));
  });

  it('tokenizes as words, each after the first carrying its leading space', () => {
    const tokens = simulatedAnswer('Why is the sky blue?');
    expect(tokens[0]).not.toMatch(/^\s/);
    for (const t of tokens.slice(1)) expect(t).toMatch(/^ \S+$/);
  });

  it.each(['Long essay', 'Write a story about a fox', 'Explain in detail how compilers work', 'Describe the ocean'])('answers %j with hundreds of tokens', (prompt) => {
    expect(simulatedAnswer(prompt).length).toBeGreaterThanOrEqual(400);
  });

  it.each(['2+2?', 'Hi', 'What time is it?', 'Capital of France?'])('answers %j in a sentence or a few', (prompt) => {
    const n = simulatedAnswer(prompt).length;
    expect(n).toBeGreaterThanOrEqual(12);
    expect(n).toBeLessThan(100);
  });

  it.each([
    ['2+2?', '2 + 2 = 4.'],
    ['7 * 6', '7 * 6 = 42.'],
    ['3 x 4 =', '3 x 4 = 12.'],
    ['10 / 4', '10 / 4 = 2.5.'],
    ['1/3', '1 / 3 = 0.333333.'],
    ['-5 - -3?', '-5 - -3 = -2.'],
    ['1 / 0', '1 / 0 has no finite answer.'],
  ])('opens %j with the arithmetic answer', (prompt, opening) => {
    expect(simulatedAnswer(prompt).join('').startsWith(opening)).toBe(true);
  });

  it('does not treat words around numbers as arithmetic', () => {
    expect(simulatedAnswer('is 2+2 really 4?').join('')).not.toMatch(/=/);
  });
});
