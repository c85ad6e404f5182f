import { Counter, createRegistry, Gauge, Histogram, LATENCY_BUCKETS, type Registry } from "@ponte/common";
import type { Sql } from "./db/index.js";

export type CoordinatorMetrics = ReturnType<typeof createCoordinatorMetrics>;

export function createCoordinatorMetrics(registry: Registry = createRegistry("coordinator")) {
  const registers = [registry];
  return {
    registry,
    grpcRequests: new Counter({
      name: "ponte_coordinator_grpc_requests_total",
      help: "gRPC calls handled, by method and result code",
      labelNames: ["method", "code"],
      registers,
    }),
    grpcLatency: new Histogram({
      name: "ponte_coordinator_grpc_latency_seconds",
      help: "gRPC handling latency by method",
      labelNames: ["method"],
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    transitions: new Counter({
      name: "ponte_coordinator_transitions_total",
      help: "Trade state transitions, by from and to state",
      labelNames: ["from", "to", "actor"],
      registers,
    }),
    quotes: new Counter({
      name: "ponte_coordinator_quotes_total",
      help: "Quotes issued, by network and asset",
      labelNames: ["network", "asset"],
      registers,
    }),
    noDepositAddress: new Counter({
      name: "ponte_coordinator_no_deposit_address_total",
      help: "Trade creations refused because the network's address pool was empty",
      labelNames: ["network"],
      registers,
    }),
    outboxPublished: new Counter({
      name: "ponte_coordinator_outbox_published_total",
      help: "Events published to JetStream",
      registers,
    }),
    outboxErrors: new Counter({
      name: "ponte_coordinator_outbox_errors_total",
      help: "Failed outbox publish batches",
      registers,
    }),
    lateDeposits: new Counter({
      name: "ponte_coordinator_late_deposits_total",
      help: "Deposits to trades that no longer take them (expired, cancelled, already confirmed)",
      labelNames: ["network"],
      registers,
    }),
    payouts: new Counter({
      name: "ponte_payout_status_changes_total",
      help: "Payouts entering each status",
      labelNames: ["status"],
      registers,
    }),
    payoutLatency: new Histogram({
      name: "ponte_payout_latency_seconds",
      help: "From the trade's PAYMENT_CONFIRMED to the provider's settlement of its payout",
      buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800, 3600],
      registers,
    }),
    payoutReviews: new Counter({
      name: "ponte_payout_reviews_total",
      help: "Trades sent to manual review by a payout check",
      labelNames: ["reason"],
      registers,
    }),
    payoutsReturned: new Counter({
      name: "ponte_payout_returned_total",
      help: "Settled payouts later returned (MED, chargeback): page someone",
      registers,
    }),
    webhookRejected: new Counter({
      name: "ponte_payout_webhook_rejected_total",
      help: "Provider webhooks refused (bad signature, stale)",
      labelNames: ["reason"],
      registers,
    }),
    webhookDuplicates: new Counter({
      name: "ponte_payout_webhook_duplicates_total",
      help: "Provider webhooks already seen (same event id)",
      registers,
    }),
    reconciliationMismatches: new Counter({
      name: "ponte_payout_reconciliation_mismatches_total",
      help: "Differences between the provider's payouts and ours",
      labelNames: ["kind"],
      registers,
    }),
    transfers: new Counter({
      name: "ponte_transfer_status_changes_total",
      help: "Transfer orders entering each status, by kind",
      labelNames: ["kind", "status"],
      registers,
    }),
    workerRuns: new Counter({
      name: "ponte_coordinator_worker_runs_total",
      help: "Background worker passes, by worker and result",
      labelNames: ["worker", "result"],
      registers,
    }),
    workerItems: new Counter({
      name: "ponte_coordinator_worker_items_total",
      help: "Items handled by background workers",
      labelNames: ["worker"],
      registers,
    }),
  };
}

/** Gauges read from the database at scrape time (bounded labels: state). */
export function registerDatabaseGauges(registry: Registry, sql: Sql): void {
  new Gauge({
    name: "ponte_coordinator_trades",
    help: "Trades by state",
    labelNames: ["state"],
    registers: [registry],
    async collect() {
      const rows = await sql<{ status: string; n: bigint }[]>`SELECT status, count(*) AS n FROM instant_trades GROUP BY status`;
      this.reset();
      for (const r of rows) this.set({ state: r.status }, Number(r.n));
    },
  });
  new Gauge({
    name: "ponte_coordinator_outbox_backlog",
    help: "Events written but not yet published",
    registers: [registry],
    async collect() {
      const [r] = await sql<{ n: bigint }[]>`SELECT count(*) AS n FROM outbox WHERE sent_at IS NULL`;
      this.set(Number(r!.n));
    },
  });
  new Gauge({
    name: "ponte_coordinator_outbox_oldest_age_seconds",
    help: "Age of the oldest unpublished event (0 when none)",
    registers: [registry],
    async collect() {
      const [r] = await sql<{ age: number | null }[]>`
        SELECT EXTRACT(EPOCH FROM now() - min(created_at))::float8 AS age FROM outbox WHERE sent_at IS NULL`;
      this.set(r?.age ?? 0);
    },
  });
  new Gauge({
    name: "ponte_payout_oldest_unsettled_age_seconds",
    help: "Age of the oldest payout not yet settled or failed (0 when none)",
    registers: [registry],
    async collect() {
      const [r] = await sql<{ age: number | null }[]>`
        SELECT EXTRACT(EPOCH FROM now() - min(created_at))::float8 AS age FROM payouts WHERE status IN ('PENDING','UNKNOWN','PROCESSING')`;
      this.set(r?.age ?? 0);
    },
  });
  new Gauge({
    name: "ponte_coordinator_deposit_addresses_available",
    help: "Unused deposit addresses per network",
    labelNames: ["network"],
    registers: [registry],
    async collect() {
      const rows = await sql<{ network: string; n: bigint }[]>`
        SELECT network, count(*) AS n FROM deposit_addresses WHERE status = 'AVAILABLE' GROUP BY network`;
      this.reset();
      for (const r of rows) this.set({ network: r.network }, Number(r.n));
    },
  });
}
