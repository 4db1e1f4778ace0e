// The answer to one GenerateContentRequest, chosen by the last user turn as the other fakes choose theirs:
// `scenario:<name>` picks one (text when none), `tokens:<n>` sets a length, `cached:<n>` reports that many prompt
// tokens as cached, `delay:<ms>` paces the chunks (read by the server). A request with function declarations gets
// a function call (unless toolConfig's mode is NONE); one whose last user turn holds function responses gets an
// answer quoting them.
//
// An answer is the parts of each streamed chunk. Gemini streams whole parts, not deltas of one: each text chunk is
// a part of its own, a function call arrives whole with its args as an object (and no id). The GenerateContentResponse
// that generateContent returns is the same parts joined as the API joins them (consecutive text parts of the same
// kind become one), so streamed and unary answers agree by construction.
//
// Thinking: Gemini 3 always thinks, earlier models in the `thinking` scenarios. Thoughts are counted
// (thoughtsTokenCount) whether or not they are shown; shown, with includeThoughts, as parts `{text, thought: true}`
// before the answer. Thought signatures, as Gemini 3 places them: on the first function call part of a call turn,
// and after a text answer on an empty text part in the last chunk (`{"text": "", "thoughtSignature": …}`).
import { knob, scenarioIn } from '../knobs.js';
import { conversationKey, includeThoughts, inputTokensOf, isGemini3, lastUser } from './request.js';
import { STREAM_ERROR, responseIdOf, signatureOf, usageOf, type Json } from './wire.js';

export type FinishReason = 'STOP' | 'MAX_TOKENS' | 'SAFETY' | 'RECITATION' | 'MALFORMED_FUNCTION_CALL';

export interface Answer {
  scenario: string;
  /** The parts of each streamed chunk, in order. */
  chunks: Json[][];
  finishReason: FinishReason;
  /** The finish comes in a chunk of its own without content (a candidate blocked or failed), with these fields. */
  bareFinish?: { finishMessage?: string; safetyRatings?: Json[]; citationMetadata?: Json };
  /** Tokens spent thinking, reported whether or not the thoughts are shown. */
  thoughtsTokens: number;
  /** Overrides the count of generated parts (max-tokens reports the whole budget spent). */
  candidatesTokens?: number;
  /** Prompt tokens reported as cached (`cached:<n>`). */
  cachedTokens: number;
  /** Whether the chunks carry usageMetadata (not in scenario `no-usage`). */
  usage: boolean;
  /** The stream fails with STREAM_ERROR after this many chunks (scenario `error-mid`). */
  errorAfterChunks?: number;
  /** The connection is cut after this many chunks (scenario `cut`). */
  cutAfterChunks?: number;
}

/** The words of the default answer. */
export const TEXT = ['The answer', ' is', ' 42', '.'];
/** The thought summaries of a thinking answer, and of one that calls a function. */
export const THINKING = ['The user', ' asks for', ' the answer;', ' it is 42.'];
export const THINKING_TOOL = ['The user', ' wants the weather.', ' I should call', ' the tool.'];
/** The arguments the function calls are given, in order: objects, as Gemini sends them. */
export const TOOL_ARGS: Json[] = [{ location: 'Paris' }, { location: 'Tokyo', unit: 'c' }];
/** What the scenarios that stop early say first. */
export const SAFETY_TEXT = ['Here is', ' how'];
export const RECITATION_TEXT = ['It was the best', ' of times'];
export const ERROR_MID_TEXT = ['Hello', ' there', ' and', ' more'];
/** The ratings a candidate stopped for SAFETY carries: one category blocked. */
export const SAFETY_RATINGS: Json[] = [
  { category: 'HARM_CATEGORY_SEXUALLY_EXPLICIT', probability: 'NEGLIGIBLE' },
  { category: 'HARM_CATEGORY_HATE_SPEECH', probability: 'NEGLIGIBLE' },
  { category: 'HARM_CATEGORY_HARASSMENT', probability: 'NEGLIGIBLE' },
  { category: 'HARM_CATEGORY_DANGEROUS_CONTENT', probability: 'HIGH', blocked: true },
];
export const CITATION_METADATA: Json = { citationSources: [{ startIndex: 0, endIndex: 25, uri: 'https://example.com/a-tale-of-two-cities' }] };
export const MALFORMED_MESSAGE = "Malformed function call: print(default_api.get_weather(location='Paris'";

/** The scenario a request asks for: named in its prompt, else what its shape implies. */
export function scenarioOf(req: Json): string {
  const { prompt, responses } = lastUser(req);
  const named = scenarioIn(prompt);
  if (named) return named;
  if (responses.length > 0) return 'tool-result';
  const mode = ((req.toolConfig as Json | undefined)?.functionCallingConfig as Json | undefined)?.mode;
  if (declaredNames(req).length > 0 && mode !== 'NONE') return 'tool';
  return 'text';
}

function declaredNames(req: Json): string[] {
  const tools = Array.isArray(req.tools) ? (req.tools as Json[]) : [];
  return tools.flatMap((t) => (Array.isArray(t.functionDeclarations) ? (t.functionDeclarations as Json[]) : [])).flatMap((d) => (typeof d.name === 'string' ? [d.name] : []));
}

/** The functions the answer may call: those toolConfig allows (mode ANY), else those declared. */
function callable(req: Json): string[] {
  const config = (req.toolConfig as Json | undefined)?.functionCallingConfig as Json | undefined;
  const allowed = Array.isArray(config?.allowedFunctionNames) ? (config.allowedFunctionNames as unknown[]).filter((n): n is string => typeof n === 'string') : [];
  return allowed.length > 0 ? allowed : declaredNames(req);
}

const counted = (n: number) => Array.from({ length: n }, (_, i) => `t${i} `);
const one = (pieces: string[]) => pieces.map((text) => [{ text }]);

/** Builds the answer to a (parsed) request for `model`: its chunks and how it stops. */
export function answerFor(req: Json, model: string): Answer {
  const scenario = scenarioOf(req);
  const { prompt, responses } = lastUser(req);
  const seed = `${model}|${conversationKey(req)}|${scenario}`;
  const gemini3 = isGemini3(model);
  const toolLike = scenario === 'tool' || scenario === 'tools-2' || scenario === 'thinking-tool';
  const thinks = gemini3 || scenario === 'thinking' || scenario === 'thinking-tool';
  const words = toolLike ? THINKING_TOOL : THINKING;
  const thoughts = thinks && includeThoughts(req) ? words.map((text) => [{ text, thought: true }]) : [];
  const base = {
    scenario,
    finishReason: 'STOP' as FinishReason,
    thoughtsTokens: thinks ? words.length : 0,
    cachedTokens: Math.min(knob(prompt, 'cached', 0), inputTokensOf(req)),
    usage: true,
  };
  // A text answer that thought ends on an empty text part carrying the signature, in a chunk of its own.
  const signed = gemini3 || scenario === 'thinking';
  const answer = (pieces: string[]): Json[][] => [...thoughts, ...one(pieces), ...(signed ? [[{ text: '', thoughtSignature: signatureOf('', seed) }]] : [])];
  const names = callable(req);
  const call = (i: number): Json => {
    const name = names[i] ?? names[0] ?? 'get_weather';
    // Gemini 3 signs the first call of a turn (parallel calls: only the first); earlier models when thinking.
    const sign = i === 0 && (gemini3 || scenario === 'thinking-tool');
    return { functionCall: { name, args: TOOL_ARGS[i] }, ...(sign ? { thoughtSignature: signatureOf(name, seed) } : {}) };
  };

  switch (scenario) {
    case 'tool-result':
      return { ...base, chunks: answer(['The tool', ' says: ', responses.join(', ') || 'nothing', '.']) };
    case 'tool':
    case 'thinking-tool':
      return { ...base, chunks: [...thoughts, [call(0)]] };
    case 'tools-2':
      return { ...base, chunks: [...thoughts, [call(0), call(1)]] };
    case 'max-tokens': {
      const budget = (req.generationConfig as Json | undefined)?.maxOutputTokens;
      const limit = typeof budget === 'number' && budget > 0 ? budget : 8;
      return { ...base, finishReason: 'MAX_TOKENS', candidatesTokens: limit, chunks: [...thoughts, ...one(counted(Math.min(8, limit)))] };
    }
    case 'safety':
      return { ...base, finishReason: 'SAFETY', bareFinish: { safetyRatings: SAFETY_RATINGS }, chunks: [...thoughts, ...one(SAFETY_TEXT)] };
    case 'recitation':
      return { ...base, finishReason: 'RECITATION', bareFinish: { citationMetadata: CITATION_METADATA }, chunks: [...thoughts, ...one(RECITATION_TEXT)] };
    case 'malformed-call':
      return { ...base, finishReason: 'MALFORMED_FUNCTION_CALL', bareFinish: { finishMessage: MALFORMED_MESSAGE }, chunks: [] };
    case 'error-mid':
      return { ...base, errorAfterChunks: thoughts.length + 3, chunks: answer(ERROR_MID_TEXT) };
    case 'cut':
      return { ...base, cutAfterChunks: thoughts.length + 2, chunks: answer(ERROR_MID_TEXT) };
    case 'no-usage':
      return { ...base, usage: false, chunks: answer(TEXT) };
    case 'long':
      return { ...base, chunks: answer(counted(knob(prompt, 'tokens', 40))) };
    default:
      return { ...base, chunks: answer(knob(prompt, 'tokens') !== undefined ? counted(knob(prompt, 'tokens', 4)) : TEXT) };
  }
}

/** Whether a part counts as generated output (not a thought, not the empty part a signature rides on). */
const output = (p: Json) => p.thought !== true && !(p.text === '' && p.functionCall === undefined);

/** The parts of the chunks joined as generateContent returns them: consecutive text parts of the same kind become one. */
export function joined(chunks: Json[][]): Json[] {
  const out: Json[] = [];
  for (const p of chunks.flat()) {
    const prev = out.at(-1);
    if (typeof p.text === 'string' && prev && typeof prev.text === 'string' && prev.thought === p.thought && prev.thoughtSignature === undefined) {
      out[out.length - 1] = { ...prev, text: prev.text + p.text, ...(p.thoughtSignature !== undefined ? { thoughtSignature: p.thoughtSignature } : {}) };
    } else out.push({ ...p });
  }
  return out;
}

/**
 * The answer as Gemini sends it: the GenerateContentResponse generateContent returns, the chunks
 * streamGenerateContent streams (the error object last when it fails mid-stream), and how the stream ends.
 */
export function render(req: Json, answer: Answer, model: string): { response: Json; chunks: Json[]; end: 'complete' | 'error' | 'cut' } {
  const prompt = inputTokensOf(req);
  const head = { modelVersion: model, responseId: responseIdOf(`${model}|${conversationKey(req)}`) };
  const usage = (candidates: number) => (answer.usage ? { usageMetadata: usageOf(prompt, candidates, answer.thoughtsTokens, answer.cachedTokens) } : {});
  const generated = answer.chunks.flat().filter(output).length;
  const total = answer.candidatesTokens ?? generated;
  const finish = { finishReason: answer.finishReason, index: 0, ...answer.bareFinish };

  const chunks: Json[] = [];
  let sofar = 0;
  let end: 'complete' | 'error' | 'cut' = 'complete';
  for (const [k, parts] of answer.chunks.entries()) {
    if (k === answer.errorAfterChunks) {
      chunks.push(STREAM_ERROR);
      end = 'error';
      break;
    }
    if (k === answer.cutAfterChunks) {
      end = 'cut';
      break;
    }
    sofar += parts.filter(output).length;
    const last = k === answer.chunks.length - 1 && answer.bareFinish === undefined;
    const content = { parts, role: 'model' };
    chunks.push({ candidates: [last ? { content, ...finish } : { content, index: 0 }], ...usage(last ? total : sofar), ...head });
  }
  if (end === 'complete' && (answer.bareFinish !== undefined || answer.chunks.length === 0)) chunks.push({ candidates: [finish], ...usage(total), ...head });

  const parts = joined(answer.chunks);
  const candidate = parts.length > 0 ? { content: { parts, role: 'model' }, ...finish } : finish;
  return { response: { candidates: [candidate], ...usage(total), ...head }, chunks, end };
}

