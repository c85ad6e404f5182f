import { Server, ServerCredentials } from "@grpc/grpc-js";
import { createShutdown, PonteError, serveMetrics, type Logger, type Shutdown } from "@ponte/common";
import { agentv1, tradev1 } from "@ponte/proto";
import type { Server as HttpServer } from "node:http";
import type { CoordinatorConfig } from "./config.js";
import { createDatabasePing, createSql, migrate, type Sql } from "./db/index.js";
import { createExpiryWorker } from "./expiry/worker.js";
import { evaluateTrade, type EvaluateContext } from "./deposit/evaluate.js";
import { createDepositReporting } from "./deposit/report.js";
import { systemActor } from "./trade/actor.js";
import { agentReportHandlers } from "./grpc/agent-reports.js";
import { agentTransferHandlers } from "./grpc/agent-transfers.js";
import { createTransfers } from "./transfer/index.js";
import { agentServiceHandlers } from "./grpc/agent-service.js";
import { adapt } from "./grpc/handlers.js";
import { tradeServiceHandlers, type PayoutView } from "./grpc/trade-service.js";
import { createPixProvider } from "./payout/provider/index.js";
import { createPayouts } from "./payout/workflow.js";
import type { Trade } from "./trade/model.js";
import { createCoordinatorMetrics, registerDatabaseGauges } from "./metrics.js";
import { createOutboxRelay } from "./outbox/relay.js";
import { createOutboxRetention } from "./outbox/retention.js";
import { createPriceSource } from "./quote/from-config.js";
import { applyContractOverrides, loadAssetRegistry } from "./quote/registry.js";
import { createTradeService } from "./trade/service.js";
import type { TransitionContext } from "./trade/transition.js";

export interface Coordinator {
  readonly grpcPort: number;
  readonly metricsPort: number;
  readonly sql: Sql;
  readonly shutdown: Shutdown;
  stop(): Promise<void>;
}

/** Wires every subsystem and starts serving. Each piece registers its own cleanup. */
export async function startCoordinator(config: CoordinatorConfig, logger: Logger): Promise<Coordinator> {
  const shutdown = createShutdown(logger);
  await migrate(config.DATABASE_URL, (msg, fields) => logger.info(fields ?? {}, msg));
  const sql = createSql(config.DATABASE_URL, { max: config.DATABASE_POOL_SIZE });
  shutdown.onShutdown("postgres", () => sql.end({ timeout: 5 }));

  const metrics = createCoordinatorMetrics();
  registerDatabaseGauges(metrics.registry, sql);
  let registry = loadAssetRegistry(config.ASSETS_FILE);
  if (config.ASSET_CONTRACT_OVERRIDES) registry = applyContractOverrides(registry, config.ASSET_CONTRACT_OVERRIDES);
  const prices = createPriceSource(config, logger, shutdown.signal);
  shutdown.onShutdown("prices", () => prices.close?.());

  const transitions: TransitionContext = {
    subjectPrefix: config.NATS_SUBJECT_PREFIX,
    onTransition: (from, to, actor) => metrics.transitions.inc({ from: from ?? "", to, actor: actor.kind }),
  };
  const trades = createTradeService({
    sql,
    logger,
    metrics,
    registry,
    prices,
    transitions,
    options: {
      quoteTtlSeconds: config.QUOTE_TTL_SECONDS,
      tradeTtlSeconds: config.TRADE_TTL_SECONDS,
      monitoringGraceSeconds: config.MONITORING_GRACE_SECONDS,
      dailyLimitCentavos: config.DAILY_LIMIT_BRL,
      tradeMaxCentavos: config.TRADE_MAX_BRL,
    },
  });
  // Readiness: false (not an error) when the database does not answer in time, so callers can tell.
  const databasePing = createDatabasePing(config.DATABASE_URL, {
    timeoutMs: config.DATABASE_PING_TIMEOUT_MS,
    onError: (err) => logger.warn({ err }, "Database ping failed"),
  });
  shutdown.onShutdown("postgres ping", () => databasePing.end());
  const ping = () => databasePing.ping();

  const depositCtx: EvaluateContext = {
    registry,
    transitions,
    tolerance: { underBps: config.TOLERANCE_UNDER_PERCENT, overBps: config.TOLERANCE_OVER_PERCENT },
    logger,
    onLateDeposit: (network) => metrics.lateDeposits.inc({ network }),
  };
  const reporting = createDepositReporting({ sql, ctx: depositCtx });

  const tolerance = { underBps: config.TOLERANCE_UNDER_PERCENT, overBps: config.TOLERANCE_OVER_PERCENT };
  const payouts = config.starkbank ? createPayouts({
    sql,
    logger,
    metrics,
    transitions,
    tolerance,
    provider: createPixProvider({ logger, shutdown }, { name: "starkbank", ...config.starkbank }),
    options: {
      maxCentavos: config.PAYOUT_MAX_BRL,
      dailyMaxCentavos: config.PAYOUT_DAILY_MAX_BRL,
      nightMaxCentavos: config.PAYOUT_NIGHT_MAX_BRL,
      nightStartHour: Number(config.PAYOUT_NIGHT_HOURS.split("-")[0]),
      nightEndHour: Number(config.PAYOUT_NIGHT_HOURS.split("-")[1]),
      timeZone: config.PAYOUT_TIME_ZONE,
      failurePolicy: config.PAYOUT_FAILURE_POLICY,
      checkScheduleMs: config.PAYOUT_CHECK_SCHEDULE_MS,
      reviewAfterMs: config.PAYOUT_REVIEW_AFTER_MS,
      intervalMs: config.PAYOUT_INTERVAL_MS,
      batchSize: 50,
      concurrency: config.PAYOUT_CONCURRENCY,
      reconcileHourUtc: config.RECONCILE_HOUR_UTC,
    },
  }) : undefined;
  if (!payouts) logger.warn("PIX_PROVIDER=none: payouts are off; confirmed trades wait in PAYMENT_CONFIRMED");
  const payoutOf = async (t: Trade): Promise<PayoutView | undefined> => {
    const [p] = await sql<{ amount_centavos: bigint; status: string; end_to_end_id: string | null }[]>`
      SELECT amount_centavos, status, end_to_end_id FROM payouts WHERE trade_id = ${t.id} ORDER BY created_at DESC LIMIT 1`;
    return p ? { amountCentavos: p.amount_centavos, status: p.status, endToEndId: p.end_to_end_id } : undefined;
  };
  const ingestWebhook = async (provider: string, rawBody: string, headers: Record<string, string>) => {
    if (!payouts || provider !== "starkbank") throw new PonteError("NOT_FOUND", "Unknown PIX provider", { provider });
    return payouts.ingestWebhook(rawBody, headers);
  };

  const transfers = createTransfers({
    sql,
    logger,
    metrics,
    registry,
    prices,
    transitions,
    options: {
      sweepMaxFeeBps: config.SWEEP_MAX_FEE_PERCENT,
      maxSweepOrders: 3,
      rebalanceMarginBps: config.REBALANCE_MARGIN_PERCENT,
      intervalMs: config.TRANSFER_INTERVAL_MS,
      batchSize: 50,
    },
  });

  const server = new Server({ "grpc.keepalive_permit_without_calls": 1 });
  server.addService(
    tradev1.TradeServiceService,
    adapt(tradev1.TradeServiceService, tradeServiceHandlers({ svc: trades, ping, payoutOf, ingestWebhook, transfersOf: (id) => transfers.ordersOfTrade(id) }), { logger, metrics }),
  );
  server.addService(
    agentv1.AgentServiceService,
    adapt(
      agentv1.AgentServiceService,
      agentServiceHandlers({
        sql,
        logger,
        signal: shutdown.signal,
        reports: {
          ...agentReportHandlers(reporting),
          ...agentTransferHandlers({ sql, transfers, logger, signal: shutdown.signal, pollMs: config.WATCH_POLL_MS }),
        },
        registerWallets: (network, wallets) =>
          transfers.registerWallets(
            network,
            wallets.flatMap((w) => {
              if ((w.kind !== "hot" && w.kind !== "cold") || !w.address) return [];
              if (w.ceiling && !/^\d{1,78}$/.test(w.ceiling)) throw new PonteError("VALIDATION_ERROR", "ceiling must be base units", {});
              return [{ kind: w.kind, address: w.address, derivationPath: w.derivationPath, keyRef: w.keyRef, ceiling: w.ceiling ? BigInt(w.ceiling) : null }];
            }),
          ),
        options: {
          leaseTtlMs: config.LEASE_TTL_MS,
          poolLowWater: config.ADDRESS_POOL_LOW_WATER,
          poolTarget: config.ADDRESS_POOL_TARGET,
          watchPollMs: config.WATCH_POLL_MS,
        },
      }) as never,
      { logger, metrics },
    ),
  );
  const grpcPort = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${config.GRPC_HOST}:${config.GRPC_PORT}`, ServerCredentials.createInsecure(), (err, port) =>
      err ? reject(err) : resolve(port),
    ),
  );
  shutdown.onShutdown("grpc", () => stopGrpc(server));

  const relay = createOutboxRelay({
    sql,
    logger,
    metrics,
    options: {
      natsUrl: config.NATS_URL,
      stream: config.NATS_STREAM,
      subjectPrefix: config.NATS_SUBJECT_PREFIX,
      duplicateWindowMs: config.NATS_DUPLICATE_WINDOW_MS,
      batchSize: config.OUTBOX_BATCH_SIZE,
      pollMs: config.OUTBOX_POLL_MS,
    },
  });
  relay.start();
  shutdown.onShutdown("outbox", () => relay.stop());

  const retention = createOutboxRetention({
    sql,
    logger,
    metrics,
    options: { retentionHours: config.OUTBOX_RETENTION_HOURS, intervalMs: config.OUTBOX_RETENTION_INTERVAL_MS, batchSize: 5_000 },
  });
  retention.start();
  shutdown.onShutdown("outbox_retention", () => retention.stop());

  transfers.start();
  shutdown.onShutdown("transfers", () => transfers.stop());

  if (payouts) {
    payouts.start();
    shutdown.onShutdown("payouts", () => payouts.stop());
  }

  const expiry = createExpiryWorker({
    sql,
    logger,
    metrics,
    transitions,
    intervalMs: config.EXPIRY_INTERVAL_MS,
    batchSize: 100,
    evaluate: async (tx, tradeId) => {
      const [t] = await tx<{ head_height: bigint }[]>`
        SELECT c.head_height FROM chain_cursors c JOIN instant_trades t ON t.network = c.network WHERE t.id = ${tradeId}`;
      await evaluateTrade(tx, depositCtx, tradeId, t?.head_height ?? 0n, systemActor("expiry"));
    },
  });
  expiry.start();
  shutdown.onShutdown("expiry", () => expiry.stop());

  const http: HttpServer = await serveMetrics({
    registry: metrics.registry,
    host: config.METRICS_HOST,
    port: config.METRICS_PORT,
    ready: ping,
  });
  shutdown.onShutdown("metrics", () => new Promise<void>((r) => http.close(() => r())));
  const addr = http.address();
  const metricsPort = typeof addr === "object" && addr ? addr.port : config.METRICS_PORT;

  logger.info({ grpc_port: grpcPort, metrics_port: metricsPort }, "Coordinator ready");
  return { grpcPort, metricsPort, sql, shutdown, stop: () => shutdown.shutdown("stop") };
}

/** Lets in-flight calls finish (streams are ended by the shutdown signal), then forces. */
function stopGrpc(server: Server): Promise<void> {
  return new Promise((resolve) => {
    const force = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, 5_000);
    server.tryShutdown(() => {
      clearTimeout(force);
      resolve();
    });
  });
}
