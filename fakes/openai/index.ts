// The OpenAI wire's fake upstreams, real HTTP servers for tests, benchmarks and the soak script:
//
//  - faithful.ts (startOpenAIUpstream): answers as OpenAI does, every answer written out by hand both as the chunks
//    it streams and as the chat.completion it returns, for tests that hold Jarvis to being a faithful gateway;
//  - mock.ts (startMockUpstream): a fast, scriptable stream of `tok0 `, `tok1 `... with failure modes (a dropped
//    connection, a stall, an error event, malformed SSE, a status), for the gateway's own behaviour and for load;
//    mock-cli.ts runs it as a process of its own.
//
// Both are steered the same way, by knobs in the text of the last message (knobs.ts).
export * from './faithful.js';
export * from './mock.js';
export { flag, isKnobWord, knob, knobText, lastMessage, mockKnobsIn, scenarioIn } from './knobs.js';
