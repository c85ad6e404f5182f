import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import { serve } from "@hono/node-server";
import type { App } from "./routes/common.js";

export interface RunningServer {
  /** The bound port (the kernel's pick when asked for port 0). */
  port: number;
  /** Stops accepting, answers what is in flight, then resolves. */
  close(): Promise<void>;
}

/** Serves the app over HTTP/1.1; resolves once listening. main.ts and end-to-end tests use it. */
export function serveApp(app: App, opts: { port: number; host: string }): Promise<RunningServer> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: app.fetch, port: opts.port, hostname: opts.host }, (info: AddressInfo) => {
      server.off("error", reject);
      resolve({
        port: info.port,
        close: () =>
          new Promise<void>((done, fail) => {
            server.close((err) => (err ? fail(err) : done()));
            // Idle keep-alive sockets would otherwise hold close() open until they time out.
            server.closeIdleConnections();
          }),
      });
    }) as Server;
    server.once("error", reject);
  });
}
