import { startCoordinator } from "/work/main/bench/dist/infra/ponte.js";
import { freshDatabase } from "/work/main/bench/dist/infra/postgres.js";
import { provisionNats, provisionPostgres } from "@ponte/common/testing";
import { tradev1 } from "@ponte/proto";
import { credentials, Metadata } from "@grpc/grpc-js";
await provisionPostgres(); const nats = await provisionNats();
const db = await freshDatabase();
const c = await startCoordinator({ dbUrl: db.url, natsUrl: nats.url, logDir: "/tmp/bx/logs" });
const cl = new tradev1.TradeServiceClient(c.grpcTarget, credentials.createInsecure());
for (let i = 0; i < 8; i++) { const t = performance.now(); await new Promise((res, rej) => cl.listAssets({}, new Metadata(), {}, (e, r) => e ? rej(e) : res(r))); console.log("listAssets", (performance.now() - t).toFixed(1), "ms"); }
for (let i = 0; i < 4; i++) { const t = performance.now(); await new Promise((res, rej) => cl.ping({}, new Metadata(), {}, (e, r) => e ? rej(e) : res(r))); console.log("ping", (performance.now() - t).toFixed(1), "ms"); }
cl.close(); await c.stop(); await db.drop(); await nats.stop();
