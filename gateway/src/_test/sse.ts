// Reads a text/event-stream body frame by frame, for the gateway's unit tests.

export interface SseFrame {
  event?: string;
  data?: string;
  id?: string;
  /** Text of a comment line (": keep-alive" → "keep-alive"). */
  comment?: string;
}

export interface SseReader {
  /** The next frame, or null once the server has ended the stream. */
  next(): Promise<SseFrame | null>;
  /** Every frame until the end (the server must end it). */
  rest(): Promise<SseFrame[]>;
  cancel(): Promise<void>;
}

function parseFrame(block: string): SseFrame {
  const f: SseFrame = {};
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) f.comment = line.slice(1).trim();
    else {
      const i = line.indexOf(":");
      const key = i < 0 ? line : line.slice(0, i);
      const value = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
      if (key === "data") f.data = f.data === undefined ? value : `${f.data}\n${value}`;
      else if (key === "event" || key === "id") f[key] = value;
    }
  }
  return f;
}

export function readSse(res: Response): SseReader {
  if (!res.body) throw new Error("the response has no body");
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  const self: SseReader = {
    async next() {
      for (;;) {
        const end = buf.indexOf("\n\n");
        if (end >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          return parseFrame(block);
        }
        const { done, value } = await reader.read();
        if (done) return null;
        buf += value;
      }
    },
    async rest() {
      const out: SseFrame[] = [];
      for (let f = await self.next(); f; f = await self.next()) out.push(f);
      return out;
    },
    cancel: () => reader.cancel(),
  };
  return self;
}
