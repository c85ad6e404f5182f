// B1's baseline: bare Hono on @hono/node-server. GET answers hello-world; POST …/quote does the
// same single INSERT INTO quotes the coordinator does, with the `postgres` client and the same
// pool size, and nothing else (no JWT, no validation, no gRPC hop, no limits query).
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { randomBytes } from "node:crypto";
import postgres from "postgres";

const port = Number(process.argv[2]);
const dbUrl = process.argv[3];
const sql = dbUrl ? postgres(dbUrl, { max: 10, onnotice: () => {} }) : undefined;

const app = new Hono();
app.get("/api/v1/instant-trade/assets", (c) => c.text("Hello, World!"));
app.post("/api/v1/instant-trade/quote", async (c) => {
  const body = (await c.req.json()) as { symbol: string; network: string; crypto_amount: string };
  const id = `qte_${randomBytes(13).toString("hex").slice(0, 26)}`;
  const [row] = await sql!`
    INSERT INTO quotes (id, user_id, network, symbol, decimals, crypto_amount, fiat_amount_centavos, price,
                        spread_bps, network_fee_bps, spread_centavos, network_fee_centavos, expires_at)
    VALUES (${id}, 'bench-user', ${body.network}, ${body.symbol}, 18, 10000000000000000, 14512, 15000, 300, 25, 450, 37,
            now() + make_interval(secs => 60))
    RETURNING expires_at`;
  return c.json({ id, expires_at: row!.expires_at });
});
serve({ fetch: app.fetch, port, hostname: "127.0.0.1" }, () => process.stdout.write("Baseline listening\n"));
process.on("SIGTERM", () => process.exit(0));
