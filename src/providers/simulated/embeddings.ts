import { JarvisError } from '../../errors.js';

/** The simulator's vectors are small: enough to try a retrieval pipeline end to end, not to rank anything real. */
const DEFAULT_DIMENSIONS = 16;
const MAX_DIMENSIONS = 1024;
const MAX_INPUTS = 2048;

function invalid(param: string, message: string): JarvisError {
  return new JarvisError('JARVIS_ERR_INVALID_REQUEST', message, { param });
}

/** FNV-1a: a stable hash, so the same word lands in the same dimension on every machine and every run. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** A bag of words hashed into `dims` buckets and normalised: texts that share words point the same way. */
function embed(text: string, dims: number): number[] {
  const v = new Array<number>(dims).fill(0);
  for (const word of text.toLowerCase().split(/[^\p{L}\p{N}]+/u)) {
    if (!word) continue;
    const h = fnv1a(word);
    v[h % dims]! += h & 0x100 ? 1 : -1;
  }
  const norm = Math.hypot(...v) || 1;
  return v.map((x) => Math.round((x / norm) * 1e6) / 1e6);
}

function asBase64(v: number[]): string {
  return Buffer.from(new Float32Array(v).buffer).toString('base64');
}

/**
 * POST /v1/embeddings on jarvis-sim: deterministic bag-of-words vectors in OpenAI's response shape, `float` or
 * `base64` as asked (the openai SDK asks for base64 by default).
 */
export function simulatedEmbeddings(body: Record<string, unknown>, model: string): Record<string, unknown> {
  const input = body.input;
  const texts = typeof input === 'string' ? [input] : Array.isArray(input) ? input : undefined;
  if (!texts || texts.length === 0 || texts.length > MAX_INPUTS) {
    throw invalid('input', `'input' must be a string or an array of 1 to ${MAX_INPUTS} strings or token arrays.`);
  }
  const dims = body.dimensions ?? DEFAULT_DIMENSIONS;
  if (typeof dims !== 'number' || !Number.isInteger(dims) || dims < 1 || dims > MAX_DIMENSIONS) {
    throw invalid('dimensions', `'dimensions' must be an integer from 1 to ${MAX_DIMENSIONS}.`);
  }
  const format = body.encoding_format ?? 'float';
  if (format !== 'float' && format !== 'base64') throw invalid('encoding_format', "'encoding_format' must be 'float' or 'base64'.");
  let tokens = 0;
  const data = texts.map((t, index) => {
    // Token arrays (what tiktoken gives) are read as the words they stand for: their numbers.
    const text = typeof t === 'string' ? t : Array.isArray(t) && t.every((x) => typeof x === 'number') ? t.join(' ') : undefined;
    if (text === undefined) throw invalid(`input[${index}]`, `'input[${index}]' must be a string or an array of token ids.`);
    tokens += Math.ceil(text.length / 4);
    const vector = embed(text, dims);
    return { object: 'embedding', index, embedding: format === 'base64' ? asBase64(vector) : vector };
  });
  return { object: 'list', data, model, usage: { prompt_tokens: tokens, total_tokens: tokens } };
}
