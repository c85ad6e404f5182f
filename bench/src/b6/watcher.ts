// B6's baseline: B5's minimal watcher plus one raw POST to the provider. newHeads over ws →
// eth_getBlockByNumber(n, true) → Set lookup (native `to`, or an ERC-20 transfer(to, amount) to the
// token) → one UPDATE when a deposit is seen; when a later head gives it the confirmations, one
// signed POST /v2/transfer per deposit (at most 4 in flight, like the coordinator's payout
// concurrency). Heads are handled in order, so a deposit is known before the head that finalizes it.
import { createPrivateKey, sign } from "node:crypto";
import postgres from "postgres";
import WebSocket from "ws";

const env = (k: string) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is required`);
  return v;
};
const [ws, http, dbUrl, token, provider, accessId] = ["B6_WS", "B6_HTTP", "B6_DB", "B6_TOKEN", "B6_PROVIDER", "B6_ACCESS_ID"].map(env) as [string, string, string, string, string, string];
const key = createPrivateKey(env("B6_KEY"));
const confirmations = BigInt(env("B6_CONFIRMATIONS"));
const sql = postgres(dbUrl, { max: 2, onnotice: () => {} });
const watched = new Set((await sql<{ address: string }[]>`SELECT address FROM bench_b6_watch`).map((r) => r.address));
const seen: { address: string; block: bigint }[] = [];
let id = 1;
let inFlight = 0;
const queue: (() => void)[] = [];

async function pay(address: string): Promise<void> {
  if (inFlight >= 4) await new Promise<void>((r) => queue.push(r));
  inFlight++;
  try {
    const body = JSON.stringify({
      transfers: [{
        amount: 14512, name: "Bench Seller", taxId: env("B6_TAX_ID"), bankCode: "18236120", branchCode: "0001",
        accountNumber: "123456-7", accountType: "payment", externalId: `base-${address.slice(2)}`, tags: [address], description: "baseline",
      }],
    });
    const accessTime = String(Math.floor(Date.now() / 1000));
    const signature = sign("sha256", Buffer.from(`${accessId}:${accessTime}:${body}`), { key, dsaEncoding: "der" }).toString("base64");
    const res = await fetch(`${provider}/v2/transfer`, {
      method: "POST",
      headers: { "content-type": "application/json", "Access-Id": accessId, "Access-Time": accessTime, "Access-Signature": signature },
      body,
    });
    if (!res.ok) process.stderr.write(`transfer for ${address}: HTTP ${res.status} ${await res.text()}\n`);
    else await res.arrayBuffer();
  } finally {
    inFlight--;
    queue.shift()?.();
  }
}

let chain = Promise.resolve();
const socket = new WebSocket(ws);
socket.on("open", () => socket.send(JSON.stringify({ jsonrpc: "2.0", id: 0, method: "eth_subscribe", params: ["newHeads"] })));
socket.on("message", (data) => {
  const m = JSON.parse(String(data)) as { id?: number; params?: { result: { number: string } } };
  if (m.id === 0) return void process.stdout.write("Watcher ready\n");
  if (m.params) {
    const n = m.params.result.number;
    chain = chain.then(() => onHead(n)).catch((err: unknown) => void process.stderr.write(`head ${n}: ${String(err)}\n`));
  }
});

async function onHead(number: string): Promise<void> {
  const res = await fetch(http, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: id++, method: "eth_getBlockByNumber", params: [number, true] }),
  });
  const block = ((await res.json()) as { result: { transactions: { to: string | null; input: string }[] } | null }).result;
  if (!block) return;
  const height = BigInt(number);
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
  for (const a of hits) seen.push({ address: a, block: height });
  if (hits.length > 0) await sql`UPDATE bench_b6_watch SET detected_at = clock_timestamp() WHERE address = ANY(${hits}) AND detected_at IS NULL`;
  const final = seen.filter((s) => height - s.block + 1n >= confirmations);
  if (final.length === 0) return;
  for (const f of final) seen.splice(seen.indexOf(f), 1);
  // Paid without waiting: the next head is not held up by the provider.
  for (const f of final) void pay(f.address).catch((err: unknown) => void process.stderr.write(`pay ${f.address}: ${String(err)}\n`));
}
process.on("SIGTERM", () => {
  socket.close();
  void sql.end().then(() => process.exit(0));
});
