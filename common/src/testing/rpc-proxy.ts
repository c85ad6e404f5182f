import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface JsonRpcReq {
  id: unknown;
  method: string;
  params: unknown[];
}

/**
 * A tiny JSON-RPC proxy in front of a node (passing basic auth through). intercept() may answer a request itself (an error
 * object, a refusal) or return undefined to forward it; failHttp() makes whole requests fail.
 */
export async function startRpcProxy(
  target: string,
  o: {
    intercept?: (req: JsonRpcReq) => { error: { code: number; message: string } } | undefined;
    failHttp?: (n: number) => number | undefined;
    /** Added to every request (a slow node). */
    delayMs?: number;
  } = {},
): Promise<{ url: string; seen: JsonRpcReq[]; stop(): Promise<void> }> {
  const seen: JsonRpcReq[] = [];
  let count = 0;
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      void (async () => {
        if (o.delayMs) await new Promise((r) => setTimeout(r, o.delayMs));
        const status = o.failHttp?.(++count);
        if (status !== undefined) {
          res.writeHead(status).end("injected failure");
          return;
        }
        const parsed = JSON.parse(body) as JsonRpcReq | JsonRpcReq[];
        const list = Array.isArray(parsed) ? parsed : [parsed];
        seen.push(...list);
        const answers = new Map<unknown, unknown>();
        const forward: JsonRpcReq[] = [];
        for (const r of list) {
          const a = o.intercept?.(r);
          if (a) answers.set(r.id, { jsonrpc: "2.0", id: r.id, ...a });
          else forward.push(r);
        }
        if (forward.length) {
          const up = await fetch(target, { method: "POST", headers: { "content-type": "application/json", ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}) }, body: JSON.stringify(forward) });
          for (const a of (await up.json()) as { id: unknown }[]) answers.set(a.id, a);
        }
        const out = list.map((r) => answers.get(r.id));
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify(Array.isArray(parsed) ? out : out[0]));
      })().catch((err: unknown) => {
        res.writeHead(502).end(String(err));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
