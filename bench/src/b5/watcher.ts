// B5's baseline: a minimal watcher. newHeads over ws → eth_getBlockByNumber(n, true) → Set lookup
// (native `to`, or an ERC-20 transfer(to, amount) to the token) → one UPDATE, which NOTIFYs at
// commit (the observer in the bench process times it like ours).
import postgres from "postgres";
import WebSocket from "ws";

const [ws, http, dbUrl, token] = process.argv.slice(2) as [string, string, string, string];
const sql = postgres(dbUrl, { max: 1, onnotice: () => {} });
const watched = new Set((await sql<{ address: string }[]>`SELECT address FROM bench_b5_watch`).map((r) => r.address));
let id = 1;

const socket = new WebSocket(ws);
socket.on("open", () => socket.send(JSON.stringify({ jsonrpc: "2.0", id: 0, method: "eth_subscribe", params: ["newHeads"] })));
socket.on("message", (data) => {
  const m = JSON.parse(String(data)) as { id?: number; params?: { result: { number: string } } };
  if (m.id === 0) return void process.stdout.write("Watcher ready\n");
  if (m.params) void onHead(m.params.result.number);
});

async function onHead(number: string): Promise<void> {
  const res = await fetch(http, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: id++, method: "eth_getBlockByNumber", params: [number, true] }),
  });
  const block = ((await res.json()) as { result: { transactions: { to: string | null; input: string }[] } | null }).result;
  if (!block) return;
  const hits: string[] = [];
  for (const tx of block.transactions) {
    const to = tx.to?.toLowerCase();
    if (!to) continue;
    if (watched.has(to)) hits.push(to);
    else if (to === token && tx.input.startsWith("0xa9059cbb")) {
      const r = `0x${tx.input.slice(34, 74)}`;
      if (watched.has(r)) hits.push(r);
    }
  }
  if (hits.length === 0) return;
  await sql`WITH u AS (UPDATE bench_b5_watch SET detected_at = clock_timestamp() WHERE address = ANY(${hits}) AND detected_at IS NULL RETURNING address)
            SELECT pg_notify('bench_b5', string_agg(address, ',')) FROM u`;
}
process.on("SIGTERM", () => {
  socket.close();
  void sql.end().then(() => process.exit(0));
});
