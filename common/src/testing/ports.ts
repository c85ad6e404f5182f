import { createServer, Socket, type Server } from "node:net";

// Ports this process has handed out. A port is free again for the kernel once freePort releases
// it, and the kernel offers a released port again often (2–10 repeats in 300 calls here), so two
// services of one test could be given the same port before either binds it.
const handedOut = new Set<number>();

function listenAnyPort(): Promise<Server> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => resolve(s));
  });
}

/** A port that was free a moment ago (the kernel picks it), never one this process had before. */
export async function freePort(): Promise<number> {
  const repeats: Server[] = [];
  try {
    for (;;) {
      const s = await listenAnyPort();
      const addr = s.address();
      if (typeof addr !== "object" || !addr) throw new Error("no port");
      if (!handedOut.has(addr.port)) {
        handedOut.add(addr.port);
        await new Promise<void>((resolve) => s.close(() => resolve()));
        return addr.port;
      }
      repeats.push(s); // held until a new one is found, so the kernel offers another
    }
  } finally {
    await Promise.all(repeats.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

/** True when something accepts TCP connections at host:port within timeoutMs. */
export function canConnect(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = new Socket();
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once("error", () => done(false));
    sock.connect(port, host, () => done(true));
  });
}
