/**
 * Splits an SSE body into its blocks (the text between blank lines) as bytes arrive. `onText` sees each decoded
 * piece after its complete blocks were handed out, for callers that also keep the raw text or wake waiters.
 */
export async function forEachSseBlock(
  body: AsyncIterable<Uint8Array>,
  onBlock: (block: string) => void,
  onText?: (text: string) => void,
): Promise<void> {
  const decoder = new TextDecoder();
  let buf = '';
  for await (const chunk of body) {
    const text = decoder.decode(chunk, { stream: true });
    buf += text;
    for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
      onBlock(buf.slice(0, i));
      buf = buf.slice(i + 2);
    }
    onText?.(text);
  }
  buf += decoder.decode();
  if (buf.trim()) onBlock(buf);
}
