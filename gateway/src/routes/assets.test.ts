import { OpenAPIHono } from "@hono/zod-openapi";
import { createLogger } from "@ponte/common";
import { requestId } from "hono/request-id";
import { describe, expect, it } from "vitest";
import { createAuthenticator } from "../auth/index.js";
import type { Coordinator } from "../coordinator/index.js";
import { testConfig } from "../_test/auth.js";
import type { AssetJson } from "../schemas.js";
import { registerAssetRoutes } from "./assets.js";
import type { AppEnv } from "./common.js";

const asset = (price: string): AssetJson => ({
  symbol: "ETH", network: "anvil", name: "Ether", decimals: 18, contract: null, min_amount: "0.0001", max_amount: "1000",
  confirmations: 2, enabled: true, spread_percent: "3", network_fee_percent: "0.25", price,
});

/** The route alone, over a coordinator that counts its calls and answers with `current`. */
function setup(ttlMs: number) {
  let clock = 1_000_000;
  const state = { calls: 0, current: [asset("15000.00")], fail: false };
  const coordinator = {
    async listAssets() {
      state.calls++;
      if (state.fail) throw new Error("coordinator down");
      return state.current;
    },
  } as unknown as Coordinator;
  const app = new OpenAPIHono<AppEnv>();
  app.use(requestId());
  const config = testConfig();
  registerAssetRoutes(app, { coordinator, auth: createAuthenticator(config), logger: createLogger({ name: "t", level: "silent" }) }, {
    ttlMs,
    now: () => clock,
  });
  const get = async () => {
    const res = await app.request("/api/v1/instant-trade/assets");
    if (res.status === 200) expect(res.headers.get("content-type")).toBe("application/json");
    return { status: res.status, body: res.status === 200 ? ((await res.json()) as { assets: AssetJson[] }) : undefined };
  };
  return { state, get, advance: (ms: number) => void (clock += ms) };
}

describe("GET /api/v1/instant-trade/assets cache", () => {
  it("answers from its copy within the TTL and shows a change once the TTL has passed", async () => {
    const t = setup(1_000);
    expect((await t.get()).body).toEqual({ assets: [asset("15000.00")] });
    t.state.current = [asset("16000.00")];
    t.advance(999);
    expect((await t.get()).body?.assets[0]?.price).toBe("15000.00");
    expect(t.state.calls).toBe(1);
    t.advance(1);
    expect((await t.get()).body?.assets[0]?.price).toBe("16000.00");
    expect(t.state.calls).toBe(2);
  });

  it("shares one call among concurrent requests", async () => {
    const t = setup(1_000);
    const all = await Promise.all([t.get(), t.get(), t.get()]);
    expect(all.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(t.state.calls).toBe(1);
  });

  it("does not keep a failure: the next request asks the coordinator again", async () => {
    const t = setup(1_000);
    t.state.fail = true;
    expect((await t.get()).status).toBe(500);
    t.state.fail = false;
    expect((await t.get()).status).toBe(200);
    expect(t.state.calls).toBe(2);
  });
});
