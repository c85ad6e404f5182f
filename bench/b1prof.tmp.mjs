import { startCoordinator, startGateway, JWT_SECRET } from "/work/main/bench/dist/infra/ponte.js";
import { freshDatabase } from "/work/main/bench/dist/infra/postgres.js";
import { provisionNats, provisionPostgres } from "@ponte/common/testing";
import { signJwt } from "/work/main/bench/dist/infra/jwt.js";
import autocannon from "autocannon";
await provisionPostgres(); const nats = await provisionNats();
const db = await freshDatabase();
const prof = process.env.PROF ? ["--cpu-prof", "--cpu-prof-dir=/tmp/bx/prof"] : [];
const c = await startCoordinator({ dbUrl: db.url, natsUrl: nats.url, logDir: "/tmp/bx/logs" });
const g = await startGateway({ grpcTarget: c.grpcTarget, logDir: "/tmp/bx/logs", env: process.env.GWLOG ? { LOG_LEVEL: process.env.GWLOG } : {} });
const tok = signJwt(JWT_SECRET, { sub: "u1", role: "user" });
for (let i = 0; i < 5; i++) { const t = performance.now(); const r = await fetch(g.url + "/api/v1/instant-trade/assets", { headers: { authorization: `Bearer ${tok}` } }); await r.text(); console.log(r.status, (performance.now() - t).toFixed(1), "ms"); }
const r = await autocannon({ url: g.url + "/api/v1/instant-trade/assets", connections: 10, duration: 3, headers: { authorization: `Bearer ${tok}` } });
console.log("rps", r.requests.average, "p99", r.latency.p99, "non2xx", r.non2xx);
await g.stop(); await c.stop(); await db.drop(); await nats.stop();
