// Follows a text/event-stream response frame by frame (the gateway's live trade status).

export interface SseFrame {
  event?: string;
  data?: string;
  id?: string;
  /** Text of a comment line (": keep-alive" → "keep-alive"). */
  comment?: string;
}

export interface SseStream {
  /** The next frame; null once the server has ended the stream; throws after timeoutMs. */
  next(timeoutMs?: number): Promise<SseFrame | null>;
  /** The next `event: <name>` frame, skipping comments. */
  nextEvent(timeoutMs?: number): Promise<SseFrame | null>;
  /** Frames until the server ends the stream. */
  rest(timeoutMs?: number): Promise<SseFrame[]>;
  close(): Promise<void>;
}

function parseFrame(block: string): SseFrame {
  const f: SseFrame = {};
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) {
      f.comment = line.slice(1).trim();
      continue;
    }
    const i = line.indexOf(":");
    const key = i < 0 ? line : line.slice(0, i);
    const value = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
    if (key === "data") f.data = f.data === undefined ? value : `${f.data}\n${value}`;
    else if (key === "event" || key === "id") f[key] = value;
  }
  return f;
}

/** Opens the stream with fetch; the caller checks the status before reading. */
export async function openSse(url: string, headers: Record<string, string> = {}): Promise<{ res: Response; stream: SseStream }> {
  const res = await fetch(url, { headers: { accept: "text/event-stream", ...headers } });
  let reader: ReadableStreamDefaultReader<string> | undefined;
  let buf = "";
  const read = async (timeoutMs: number) => {
    reader ??= res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no event within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      return await Promise.race([reader.read(), timeout]);
    } finally {
      clearTimeout(timer);
    }
  };
  const stream: SseStream = {
    async next(timeoutMs = 10_000) {
      for (;;) {
        const end = buf.indexOf("\n\n");
        if (end >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          return parseFrame(block);
        }
        const { done, value } = await read(timeoutMs);
        if (done) return null;
        buf += value;
      }
    },
    async nextEvent(timeoutMs = 10_000) {
      for (;;) {
        const f = await stream.next(timeoutMs);
        if (f === null || f.event !== undefined) return f;
      }
    },
    async rest(timeoutMs = 10_000) {
      const out: SseFrame[] = [];
      for (let f = await stream.next(timeoutMs); f; f = await stream.next(timeoutMs)) out.push(f);
      return out;
    },
    async close() {
      // Cancelling the body is what a client going away looks like to the server.
      if (reader) await reader.cancel();
      else await res.body?.cancel();
    },
  };
  return { res, stream };
}
