// The upstream of scenario 10's relay half, a process of its own like the other bench upstreams:
//   node --import tsx bench/realtime-mock.ts
// The Realtime fake (fakes/realtime: OpenAI's Realtime API in GA events over ws://, on 127.0.0.1 and a free port),
// answering `response.create` with audio and its transcript (`tokens:<n>` in the user's text: n words, each a
// transcript delta and an audio delta of 100 ms, 6.4 kB of base64; unpaced, 32 words a write burst). It keeps no
// copy of the frames it sends (`recordSent: false`), so a long run does not grow it. Prints one line,
// `REALTIME_MOCK_READY <baseURL>` (http://127.0.0.1:PORT/v1: an upstream's baseUrl; its socket is ws://.../v1/realtime).
import { startRealtimeUpstream } from '../fakes/realtime/index.js';

const fake = await startRealtimeUpstream({ recordSent: false });
process.stdout.write(`REALTIME_MOCK_READY ${fake.baseURL}\n`);

let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  // Every connection is cut, so no client holds the process up; exit within a second whatever happens.
  fake.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
  setTimeout(() => process.exit(0), 1000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
