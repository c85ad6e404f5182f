import { createServer, type Server } from "node:net";
import { StartError } from "./errors.js";

/** One port the stack listens on, and how a user moves it. */
export interface PortClaim {
  port: number;
  host: string;
  /** e.g. "the gateway" */
  what: string;
  /** The variable that sets it, e.g. "PORT". */
  setting: string;
}

export class PortInUseError extends StartError {
  constructor(readonly claim: PortClaim) {
    super(
      `Port ${claim.port} (${claim.what}, on ${claim.host}) is already in use. ` +
        `Stop whatever listens there, or pick another port: ${claim.setting}=<port> npm start`,
    );
  }
}

function listen(host: string, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen({ host, port, exclusive: true }, () => {
      s.off("error", reject);
      resolve(s);
    });
  });
}

const close = (s: Server) => new Promise<void>((r) => s.close(() => r()));

/** Throws PortInUseError for the first claim something else already listens on. */
export async function assertPortsFree(claims: PortClaim[]): Promise<void> {
  const seen = new Map<number, PortClaim>();
  for (const c of claims) {
    const twin = seen.get(c.port);
    if (twin) throw new StartError(`${c.setting} and ${twin.setting} are both ${c.port}: each service needs its own port`);
    seen.set(c.port, c);
  }
  for (const c of claims) {
    let s: Server;
    try {
      s = await listen(c.host, c.port);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EADDRINUSE") throw new PortInUseError(c);
      if (code === "EACCES") throw new StartError(`Port ${c.port} (${c.what}) needs privileges this user lacks: set ${c.setting} to a port above 1023`);
      throw err;
    }
    await close(s);
  }
}

/**
 * n distinct ports that were free a moment ago (all held open while picking, so no repeats), none
 * of them one of `taken`: ports claimed by the caller's own settings that nothing listens on yet
 * (the gateway's PORT) are held too, or the kernel could hand one of them out again.
 */
export async function freePorts(n: number, host = "127.0.0.1", taken: readonly number[] = []): Promise<number[]> {
  const held: Server[] = [];
  const servers: Server[] = [];
  try {
    for (const port of taken) {
      // One in use already (by anything) is not handed out by the kernel either.
      const s = await listen(host, port).catch(() => undefined);
      if (s) held.push(s);
    }
    for (let i = 0; i < n; i++) servers.push(await listen(host, 0));
    return servers.map((s) => {
      const a = s.address();
      if (!a || typeof a !== "object") throw new Error("no port");
      return a.port;
    });
  } finally {
    await Promise.all([...held, ...servers].map(close));
  }
}
