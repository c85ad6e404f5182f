import { env, parseConfig, percentToBps, parseBrl, z } from "@ponte/common";
import { fileURLToPath } from "node:url";
import { starkbankOptionsFromEnv, type StarkbankProviderOptions } from "./payout/provider/index.js";

const defaultAssets = fileURLToPath(new URL("../assets/mainnet.json", import.meta.url));

const jsonOf = <T extends z.ZodType>(schema: T) =>
  z.string().transform((s, ctx) => {
    try {
      return JSON.parse(s) as unknown;
    } catch {
      ctx.addIssue({ code: "custom", message: "must be valid JSON" });
      return z.NEVER;
    }
  }).pipe(schema);

const brl = (def: string) =>
  z.string().default(def).transform((s, ctx) => {
    try {
      return parseBrl(s);
    } catch {
      ctx.addIssue({ code: "custom", message: "must be a BRL amount like 50000.00" });
      return z.NEVER;
    }
  });

const percent = (def: string) =>
  z.string().default(def).transform((s, ctx) => {
    try {
      return percentToBps(s);
    } catch {
      ctx.addIssue({ code: "custom", message: 'must be a percentage like "0.5"' });
      return z.NEVER;
    }
  });

const Env = z.object({
  DATABASE_URL: z.string().url(),
  DATABASE_POOL_SIZE: env.int(10, 1),
  // Below the gateway's READY_DEADLINE_MS (1 s), so /readyz says "database down", not "coordinator unavailable".
  DATABASE_PING_TIMEOUT_MS: env.int(500, 10),
  NATS_URL: z.string().default("nats://127.0.0.1:4222"),
  NATS_STREAM: z.string().regex(/^[A-Za-z0-9_-]+$/).default("PONTE_TRADES"),
  NATS_SUBJECT_PREFIX: z.string().regex(/^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/).default("ponte.trade"),
  NATS_DUPLICATE_WINDOW_MS: env.int(120_000, 1_000),
  // Events published (and their acks awaited) per relay transaction: a batched report makes 200.
  OUTBOX_BATCH_SIZE: env.int(1_000, 1),
  OUTBOX_POLL_MS: env.int(1_000, 10),
  // Published events are kept this long, then deleted (the trade history is the audit trail).
  OUTBOX_RETENTION_HOURS: env.int(168, 1),
  OUTBOX_RETENTION_INTERVAL_MS: env.int(3_600_000, 10),
  GRPC_HOST: z.string().default("0.0.0.0"),
  GRPC_PORT: env.port(50051),
  METRICS_HOST: z.string().default("0.0.0.0"),
  METRICS_PORT: env.port(9464),
  ASSETS_FILE: z.string().default(defaultAssets),
  ASSET_CONTRACT_OVERRIDES: jsonOf(z.record(z.string(), z.string())).optional(),
  PRICE_SOURCE: z.enum(["static", "http"]).default("http"),
  STATIC_PRICES: jsonOf(z.record(z.string(), z.string())).optional(),
  PRICE_TICKERS: jsonOf(z.array(z.unknown())).optional(),
  PRICE_MAX_AGE_MS: env.int(60_000, 5_001), // above the tickers' 5 s cache
  PRICE_MAX_DEVIATION_PERCENT: z.string().default("2"),
  PRICE_MIN_SOURCES: env.int(2, 1),
  QUOTE_TTL_SECONDS: env.int(60, 1),
  TRADE_TTL_SECONDS: env.int(1_800, 1),
  MONITORING_GRACE_SECONDS: env.int(86_400, 0),
  DAILY_LIMIT_BRL: brl("50000.00"),
  TRADE_MAX_BRL: brl("20000.00"),
  TOLERANCE_UNDER_PERCENT: percent("0.5"),
  TOLERANCE_OVER_PERCENT: percent("0.5"),
  EXPIRY_INTERVAL_MS: env.int(5_000, 10),
  LEASE_TTL_MS: env.int(10_000, 500),
  ADDRESS_POOL_LOW_WATER: env.int(50, 0),
  ADDRESS_POOL_TARGET: env.int(200, 1),
  WATCH_POLL_MS: env.int(5_000, 10),
  SWEEP_MAX_FEE_PERCENT: percent("5"),
  TRANSFER_INTERVAL_MS: env.int(2_000, 10),
  // A hot wallet holding more than its ceiling plus this share of it moves the excess to cold.
  REBALANCE_MARGIN_PERCENT: percent("10"),
  PIX_PROVIDER: z.enum(["starkbank", "none"]).default("starkbank"),
  PAYOUT_MAX_BRL: brl("20000.00"),
  PAYOUT_DAILY_MAX_BRL: brl("50000.00"),
  PAYOUT_NIGHT_MAX_BRL: brl("1000.00"),
  PAYOUT_NIGHT_HOURS: z.string().regex(/^\d{1,2}-\d{1,2}$/).default("20-6"),
  PAYOUT_TIME_ZONE: z.string().default("America/Sao_Paulo"),
  PAYOUT_FAILURE_POLICY: z.enum(["refund", "manual_review"]).default("manual_review"),
  PAYOUT_CHECK_SCHEDULE_MS: z.string().regex(/^\d+(,\d+)*$/).default("30000,120000,600000,1800000,3600000")
    .transform((s) => s.split(",").map(Number)),
  PAYOUT_REVIEW_AFTER_MS: env.int(6 * 3_600_000, 1_000),
  PAYOUT_INTERVAL_MS: env.int(1_000, 10),
  PAYOUT_CONCURRENCY: env.int(4, 1),
  RECONCILE_HOUR_UTC: env.int(4, 0),
  LOG_LEVEL: z.string().default("info"),
}).superRefine((c, ctx) => {
  if (c.PRICE_SOURCE === "static" && !c.STATIC_PRICES) {
    ctx.addIssue({ code: "custom", path: ["STATIC_PRICES"], message: "required when PRICE_SOURCE=static" });
  }
  if (c.PRICE_SOURCE === "http" && !c.PRICE_TICKERS) {
    ctx.addIssue({ code: "custom", path: ["PRICE_TICKERS"], message: "required when PRICE_SOURCE=http" });
  }
  if (c.ADDRESS_POOL_TARGET < c.ADDRESS_POOL_LOW_WATER) {
    ctx.addIssue({ code: "custom", path: ["ADDRESS_POOL_TARGET"], message: "must be at least ADDRESS_POOL_LOW_WATER" });
  }
});

export type CoordinatorConfig = z.output<typeof Env> & { starkbank?: StarkbankProviderOptions };

export function loadConfig(input: NodeJS.ProcessEnv = process.env): CoordinatorConfig {
  const config = parseConfig(Env, input);
  // The provider's credentials are required only when it is the one configured.
  return config.PIX_PROVIDER === "starkbank" ? { ...config, starkbank: starkbankOptionsFromEnv(input) } : config;
}
