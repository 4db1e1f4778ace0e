/**
 * Deterministic, readable answers for the simulator: the same prompt always yields the same text, long prompts
 * ("Long essay", "explain in detail") yield hundreds of tokens, short questions a sentence or two.
 */

const OPENERS = [
  'Here is a careful answer about {topic}.',
  'Let us look at {topic} step by step.',
  'Good question about {topic}.',
  'There are a few things worth saying about {topic}.',
];

const SENTENCES = [
  'The first thing to notice is that small details shape the whole picture.',
  'Most people meet this idea long before they have a name for it.',
  'A useful way to think about it is as a conversation between constraints.',
  'History offers several examples, and each one teaches something different.',
  'In practice the simplest explanation usually holds up best.',
  'It helps to separate what we know from what we merely assume.',
  'Careful measurement often changes the question we thought we were asking.',
  'The trade-offs are real, but they are rarely as stark as they first appear.',
  'A good model is one that makes clear predictions and admits its limits.',
  'Over time the details settle into a pattern that is easy to recognise.',
  'Experts disagree on the margins while agreeing on the core.',
  'Every design choice here buys one property at the price of another.',
  'The interesting part is what happens at the edges, under load and surprise.',
  'Seen from a distance, the structure is simpler than it looks up close.',
  'One honest test is to explain it to a friend in a single breath.',
  'The evidence points in one direction, though not without exceptions.',
  'What looks like noise is often a signal measured at the wrong scale.',
  'Patience matters, because the first answer is rarely the final one.',
];

const CLOSERS = ['In short, {topic} rewards a closer look.', 'That is the heart of {topic}.', 'I hope that helps.'];

const LONG_PROMPT = /\b(essay|story|article|explain|detail|detailed|long|describe|elaborate|write)\b/i;
const ARITHMETIC = /^\s*(-?\d+(?:\.\d+)?)\s*([-+*/x×])\s*(-?\d+(?:\.\d+)?)\s*[=?]*\s*$/;

function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** mulberry32: tiny seeded PRNG so answers are reproducible. */
export function seededRandom(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function topicOf(prompt: string): string {
  const words = prompt.replace(/[^\p{L}\p{N}\s'-]/gu, ' ').split(/\s+/).filter((w) => w.length > 2);
  const topic = words.slice(0, 4).join(' ').toLowerCase();
  return topic || 'this';
}

function arithmetic(prompt: string): string | undefined {
  const m = ARITHMETIC.exec(prompt);
  if (!m) return undefined;
  const a = Number(m[1]);
  const b = Number(m[3]);
  const op = m[2];
  const value = op === '+' ? a + b : op === '-' ? a - b : op === '/' ? (b === 0 ? NaN : a / b) : a * b;
  if (!Number.isFinite(value)) return `${m[1]} ${op} ${m[3]} has no finite answer.`;
  return `${m[1]} ${op} ${m[3]} = ${Number(value.toFixed(6))}.`;
}

/** The answer as tokens: words, each after the first carrying its leading space, as real tokenizers do. */
export function simulatedAnswer(prompt: string): string[] {
  const random = seededRandom(hash(prompt));
  const topic = topicOf(prompt);
  const target = LONG_PROMPT.test(prompt) ? 400 + Math.floor(random() * 200) : 12 + Math.floor(random() * 30);
  const pick = (list: readonly string[]) => list[Math.floor(random() * list.length)]!.replaceAll('{topic}', topic);

  const sentences = [arithmetic(prompt) ?? pick(OPENERS)];
  let words = sentences[0]!.split(' ').length;
  while (words < target) {
    const s = pick(SENTENCES);
    sentences.push(s);
    words += s.split(' ').length;
  }
  sentences.push(pick(CLOSERS));
  return sentences.join(' ').split(' ').map((w, i) => (i === 0 ? w : ' ' + w));
}
