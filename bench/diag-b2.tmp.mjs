// One-off: the B2 agent catch-up (last 200 blocks of the cached chain) behind a JSON-RPC proxy that
// sums anvil time per method, plus the coordinator's ReportBlocks time from the agent's side.
import http from "node:http";
import { readdirSync, readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { provisionNats, provisionPostgres } from "@ponte/common/testing";
import { AGENT_MNEMONIC } from "@ponte/agent-evm/testing";
import { startAnvilNode } from "/work/main/bench/dist/infra/anvil.js";
import { startCoordinator } from "/work/main/bench/dist/infra/ponte.js";
import { connect, freshDatabase } from "/work/main/bench/dist/infra/postgres.js";
import { insertTrades, stockPool } from "/work/main/bench/dist/infra/fixtures.js";
import { startChild } from "/work/main/bench/dist/core/proc.js";
import { EVM_AGENT_MAIN } from "/work/main/bench/dist/infra/paths.js";
import { watchedAddress, NATIVE_DEPOSIT } from "/work/main/bench/dist/b2/chain.js";
await provisionPostgres(); const nats = await provisionNats();
const dir = "/work/main/bench/.cache/b2/";
const metaFile = readdirSync(dir).filter((f) => f.endsWith(".meta.json")).map((f) => JSON.parse(readFileSync(dir + f, "utf8"))).find((m) => m.params.blocks === 2000);
const anvil = await startAnvilNode({ args: ["--no-mining", "--load-state", metaFile.stateFile], logDir: "/tmp/bx/logs", startTimeoutMs: 300000 });
const stats = new Map();
const proxy = http.createServer((req, res) => {
  let body = ""; req.on("data", (c) => (body += c)); req.on("end", async () => {
    const j = JSON.parse(body); const calls = Array.isArray(j) ? j : [j];
    const key = `${calls[0].method}${calls.length > 1 ? ` x${calls.length}` : ""}`;
    const t = performance.now();
    const r = await fetch(anvil.http, { method: "POST", headers: { "content-type": "application/json" }, body });
    const text = await r.text(); const ms = performance.now() - t;
    const s = stats.get(key) ?? { n: 0, ms: 0 }; s.n++; s.ms += ms; stats.set(key, s);
    res.writeHead(200, { "content-type": "application/json" }); res.end(text);
  });
});
await new Promise((r) => proxy.listen(0, "127.0.0.1", r));
const purl = `http://127.0.0.1:${proxy.address().port}`;
const db = await freshDatabase(); const sql = connect(db.url, 2);
const WINDOW = Number(process.env.WINDOW ?? 200); const head = metaFile.head; const from = head - WINDOW + 1;
const paid = new Map(metaFile.deposits.map((d) => [d.index, d]));
const trades = []; for (let i = 0; i < 100000; i++) { const d = paid.get(i); trades.push(d ? { address: watchedAddress(i), symbol: d.symbol, decimals: d.contract ? 6 : 18, contract: d.contract, amount: BigInt(d.amount) } : { address: watchedAddress(i), symbol: "ETH", decimals: 18, contract: "", amount: NATIVE_DEPOSIT }); }
await insertTrades(sql, { network: "anvil", tag: "b2b2", trades }); await stockPool(sql, { network: "anvil", count: 250, firstIndex: 100001, tag: "b2" });
const assets = "/work/main/bench/.cache/b2/b2-assets.json";
const c = await startCoordinator({ dbUrl: db.url, natsUrl: nats.url, logDir: "/tmp/bx/logs", env: { ASSETS_FILE: assets } });
const cfg = JSON.parse(readFileSync("/work/main/bench/.cache/b2/b2-agent.json", "utf8")); cfg.rpc = [{ http: purl, ws: anvil.ws }]; cfg.start_height = from;
(await import("node:fs")).writeFileSync("/tmp/bx/diag-agent.json", JSON.stringify(cfg));
const agent = await startChild({ name: "diag-agent", args: [EVM_AGENT_MAIN], logDir: "/tmp/bx/logs", env: { EVM_CONFIG: "/tmp/bx/diag-agent.json", SEED_SOURCE: "env", EVM_SEED_MNEMONIC: AGENT_MNEMONIC, SEED_MNEMONIC: AGENT_MNEMONIC, COORDINATOR_ADDR: c.grpcTarget, METRICS_PORT: "0", LOG_LEVEL: "info" } });
await agent.waitFor("Starting the follower", { timeoutMs: 300000 }); stats.clear();
const t0 = performance.now();
for (;;) { const [r] = await sql`SELECT height FROM chain_cursors WHERE network = 'anvil'`; if (r && Number(r.height) >= head) break; await sleep(10); }
const total = performance.now() - t0;
console.log(`caught up ${WINDOW} blocks in ${(total / 1000).toFixed(1)} s = ${(WINDOW / (total / 1000)).toFixed(1)} blocks/s`);
for (const [k, v] of [...stats].sort((a, b) => b[1].ms - a[1].ms)) console.log(`${k.padEnd(36)} n=${String(v.n).padStart(5)}  sum ${(v.ms / 1000).toFixed(1)} s  (${(100 * v.ms / total).toFixed(0)}% of wall)  avg ${(v.ms / v.n).toFixed(0)} ms`);
await agent.kill("SIGTERM"); await c.stop(); await anvil.stop(); proxy.close(); await sql.end(); await db.drop(); await nats.stop();
