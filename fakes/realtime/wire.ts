// What the Realtime fake writes that does not depend on a conversation: ids shaped as OpenAI's, the session a
// connection starts with, the errors it sends (in an `error` event, or as the HTTP answer refusing an upgrade),
// and the audio an answer carries.
import { hash32 } from '../http.js';

export type Json = Record<string, unknown>;

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/**
 * Ids as OpenAI's look (`event_C9G8pqbTEddBSIxqsrwI4`: a prefix, `_`, 21 letters and digits), drawn in order from
 * `seed`: the same seed gives the same ids, and two connections with different seeds do not share any.
 */
export function idSource(seed: string): (prefix: string) => string {
  let state = hash32(seed) || 1;
  // xorshift32: enough to spread 21 characters from one 32-bit state.
  const next = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return state >>> 0;
  };
  return (prefix) => {
    let s = '';
    for (let i = 0; i < 21; i++) s += ALNUM[next() % ALNUM.length];
    return `${prefix}_${s}`;
  };
}

/** The instructions a session starts with (OpenAI's own default is a few sentences of this kind). */
export const DEFAULT_INSTRUCTIONS =
  'You are a helpful, friendly voice assistant. Speak clearly and keep your answers short. Answer in the language the user speaks.';
export const DEFAULT_VOICE = 'marin';

/** The session a connection to `model` starts with, as `session.created` carries it (GA shape). */
export function defaultSession(id: string, model: string, now = Date.now()): Json {
  return {
    type: 'realtime',
    object: 'realtime.session',
    id,
    model,
    output_modalities: ['audio'],
    instructions: DEFAULT_INSTRUCTIONS,
    tools: [],
    tool_choice: 'auto',
    max_output_tokens: 'inf',
    tracing: null,
    truncation: 'auto',
    prompt: null,
    expires_at: Math.floor(now / 1000) + 3600,
    audio: {
      input: {
        format: { type: 'audio/pcm', rate: 24000 },
        transcription: null,
        noise_reduction: null,
        turn_detection: {
          type: 'server_vad',
          threshold: 0.5,
          prefix_padding_ms: 300,
          silence_duration_ms: 200,
          idle_timeout_ms: null,
          create_response: true,
          interrupt_response: true,
        },
      },
      output: { format: { type: 'audio/pcm', rate: 24000 }, voice: DEFAULT_VOICE, speed: 1 },
    },
    include: null,
  };
}

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * `update` applied to `base` as `session.update` applies it: only the fields present change, objects field by
 * field, anything else (arrays, null, scalars) replaced whole.
 */
export function merged(base: Json, update: Json): Json {
  const out: Json = { ...base };
  for (const [k, v] of Object.entries(update)) out[k] = isObject(v) && isObject(out[k]) ? merged(out[k], v) : v;
  return out;
}

/** An `error` event's `error`: OpenAI's fields, `event_id` naming the client event that caused it. */
export interface RealtimeErrorBody {
  type: string;
  code: string | null;
  message: string;
  param: string | null;
  event_id: string | null;
}

export const errorBody = (type: string, code: string | null, message: string, param: string | null = null, eventId: string | null = null): RealtimeErrorBody => ({
  type,
  code,
  message,
  param,
  event_id: eventId,
});

/** The key shown in an error, as OpenAI masks it: never the whole key. */
export const maskedKey = (key: string) => (key.length <= 8 ? '*'.repeat(key.length) : `${key.slice(0, 3)}${'*'.repeat(Math.min(20, key.length - 7))}${key.slice(-4)}`);

/** The JSON body of an HTTP refusal of the upgrade, as OpenAI's API answers any request it refuses. */
export const HTTP_ERRORS = {
  missingKey: () => ({
    status: 401,
    error: {
      message:
        "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
      type: 'invalid_request_error',
      param: null,
      code: null,
    },
  }),
  badKey: (key: string) => ({
    status: 401,
    error: {
      message: `Incorrect API key provided: ${maskedKey(key)}. You can find your API key at https://platform.openai.com/account/api-keys.`,
      type: 'invalid_request_error',
      param: null,
      code: 'invalid_api_key',
    },
  }),
  missingModel: () => ({
    status: 400,
    error: { message: "Missing required parameter: 'model'.", type: 'invalid_request_error', param: 'model', code: 'missing_required_parameter' },
  }),
  notFound: (path: string) => ({
    status: 404,
    error: { message: `Invalid URL (GET ${path})`, type: 'invalid_request_error', param: null, code: null },
  }),
};

/** The close codes a server may send (RFC 6455 7.4: 1000-1003, 1007-1014, 3000-4999). */
export const sendableCloseCode = (code: number) => Number.isInteger(code) && ((code >= 1000 && code <= 1014 && ![1004, 1005, 1006].includes(code)) || (code >= 3000 && code <= 4999));

// ---- Audio -----------------------------------------------------------------------------------------------------

/** How long each audio delta of an answer lasts. OpenAI's deltas are of this order (tens to a few hundred ms). */
export const AUDIO_CHUNK_MS = 100;

/** G.711 μ-law of a 16-bit sample. */
function ulaw(sample: number): number {
  const sign = sample < 0 ? 0x80 : 0;
  let s = Math.min(32635, Math.abs(sample)) + 0x84;
  let exponent = 7;
  for (let mask = 0x4000; (s & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  s = (s >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | s) & 0xff;
}

/** G.711 A-law of a 16-bit sample. */
function alaw(sample: number): number {
  const sign = sample >= 0 ? 0x80 : 0;
  const s = Math.min(32767, Math.abs(sample));
  let exponent = 7;
  for (let mask = 0x4000; (s & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  const mantissa = exponent === 0 ? (s >> 4) & 0x0f : (s >> (exponent + 3)) & 0x0f;
  return ((sign | (exponent << 4) | mantissa) ^ 0x55) & 0xff;
}

const chunks = new Map<string, string>();

/**
 * The `i`-th audio delta of an answer, base64, in `format` (`audio/pcm`: 16-bit little-endian at 24 kHz, 4,800 bytes
 * per 100 ms; `audio/pcmu` and `audio/pcma`: 8-bit at 8 kHz, 800 bytes): a tone whose pitch steps with `i`, each
 * chunk a whole number of periods, so consecutive chunks differ and play as one continuous sound.
 */
export function audioChunk(format: string, i: number): string {
  const key = `${format}:${i % 16}`;
  let b64 = chunks.get(key);
  if (b64 === undefined) {
    const hz = 300 + 20 * (i % 16);
    const pcm = format === 'audio/pcm';
    const rate = pcm ? 24000 : 8000;
    const n = (rate * AUDIO_CHUNK_MS) / 1000;
    const buf = Buffer.alloc(pcm ? n * 2 : n);
    for (let k = 0; k < n; k++) {
      const sample = Math.round(6000 * Math.sin((2 * Math.PI * hz * k) / rate));
      if (pcm) buf.writeInt16LE(sample, k * 2);
      else buf[k] = format === 'audio/pcma' ? alaw(sample) : ulaw(sample);
    }
    chunks.set(key, (b64 = buf.toString('base64')));
  }
  return b64;
}

/** The milliseconds of audio in `bytes` of `format` (input audio, for the usage a response reports). */
export const audioMs = (format: string, bytes: number) => (format === 'audio/pcm' ? bytes / 48 : bytes / 8);
