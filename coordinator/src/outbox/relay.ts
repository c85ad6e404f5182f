import { createWakeup, delay, type Logger } from "@ponte/common";
import { connect, nanos, type JetStreamClient, type NatsConnection } from "nats";
import type { Sql } from "../db/index.js";
import type { CoordinatorMetrics } from "../metrics.js";

export interface OutboxRelayOptions {
  natsUrl: string;
  stream: string;
  subjectPrefix: string;
  duplicateWindowMs: number;
  batchSize: number;
  pollMs: number;
}

export interface OutboxRelay {
  start(): void;
  stop(): Promise<void>;
  readonly connected: boolean;
}

// One relay publishes at a time across replicas (a transaction-scoped advisory lock), so the
// stream receives events in outbox order. A batch is published, then marked sent in the same
// transaction; if anything fails the batch is published again and JetStream drops the repeats
// by Nats-Msg-Id within its duplicate window.
const RELAY_LOCK = 7_404_656_102;

export function createOutboxRelay(common: {
  sql: Sql;
  logger: Logger;
  metrics: CoordinatorMetrics;
  options: OutboxRelayOptions;
}): OutboxRelay {
  const { sql, metrics, options: o } = common;
  const logger = common.logger.child({ component: "outbox" });
  const ac = new AbortController();
  let nc: NatsConnection | undefined;
  let js: JetStreamClient | undefined;
  let streamReady = false;
  // A NOTIFY that lands while a batch is published ends the next wait at once (it was slept
  // through until the next poll); so does LISTEN coming back after its connection dropped.
  const news = createWakeup();
  let loop: Promise<void> | undefined;
  let unlisten: (() => Promise<void>) | undefined;

  async function ensureConnection(): Promise<JetStreamClient> {
    if (!nc || nc.isClosed()) {
      nc = await connect({
        servers: o.natsUrl,
        name: "ponte-coordinator-outbox",
        reconnect: true,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 500,
        timeout: 2_000,
        // A JetStream publish is a request; by default nats.js builds two Errors per request to
        // keep the caller's stack for a timeout that almost never comes: ~100 µs of the relay's
        // CPU per event (bench/README.md, B4). A failed publish still says what failed.
        noAsyncTraces: true,
      });
      js = nc.jetstream();
      streamReady = false;
      logger.info("Connected to NATS");
      void (async () => {
        for await (const s of nc!.status()) {
          if (s.type === "disconnect") logger.warn("NATS disconnected; events wait in the outbox");
          if (s.type === "reconnect") {
            streamReady = false;
            logger.info("NATS reconnected");
          }
        }
      })();
    }
    if (!streamReady) {
      const jsm = await nc.jetstreamManager({ timeout: 2_000 });
      const config = {
        name: o.stream,
        subjects: [`${o.subjectPrefix}.>`],
        duplicate_window: nanos(o.duplicateWindowMs),
      };
      try {
        await jsm.streams.info(o.stream);
        await jsm.streams.update(o.stream, { subjects: config.subjects, duplicate_window: config.duplicate_window });
      } catch (err) {
        if (!isStreamNotFound(err)) throw err;
        await jsm.streams.add(config);
        logger.info({ stream: o.stream }, "Created JetStream stream");
      }
      streamReady = true;
    }
    return js!;
  }

  async function publishBatch(): Promise<number> {
    const client = await ensureConnection();
    return sql.begin(async (tx) => {
      const [lock] = await tx<{ ok: boolean }[]>`SELECT pg_try_advisory_xact_lock(${RELAY_LOCK}) AS ok`;
      if (!lock!.ok) return 0;
      const rows = await tx<{ seq: bigint; event_id: string; subject: string; payload: Buffer }[]>`
        SELECT seq, event_id, subject, payload FROM outbox WHERE sent_at IS NULL ORDER BY seq LIMIT ${o.batchSize}`;
      if (rows.length === 0) return 0;
      await Promise.all(
        rows.map((r) => client.publish(r.subject, r.payload, { msgID: r.event_id, timeout: 5_000 })),
      );
      await tx`UPDATE outbox SET sent_at = now() WHERE seq = ANY(${rows.map((r) => r.seq.toString())}::bigint[])`;
      metrics.outboxPublished.inc(rows.length);
      return rows.length;
    });
  }

  async function run(): Promise<void> {
    let failures = 0;
    while (!ac.signal.aborted) {
      try {
        const n = await publishBatch();
        failures = 0;
        if (n < o.batchSize) {
          await news.wait(o.pollMs, ac.signal);
        }
      } catch (err) {
        failures++;
        streamReady = false;
        metrics.outboxErrors.inc();
        const wait = Math.min(5_000, 100 * 2 ** Math.min(failures, 6));
        if (failures === 1 || failures % 20 === 0) logger.warn({ err, failures, wait_ms: wait }, "Outbox publish failed; retrying");
        await delay(wait, ac.signal);
      }
    }
  }

  return {
    get connected() {
      return !!nc && !nc.isClosed() && streamReady;
    },
    start() {
      void sql
        .listen("ponte_outbox", news.notify, news.notify)
        .then((l) => {
          unlisten = l.unlisten;
        })
        .catch((err: unknown) => logger.warn({ err }, "LISTEN ponte_outbox failed; polling only"));
      loop = run();
    },
    async stop() {
      ac.abort();
      await loop;
      await unlisten?.().catch(() => undefined);
      if (nc && !nc.isClosed()) await nc.drain().catch(() => nc?.close());
    },
  };
}

const isStreamNotFound = (err: unknown): boolean => {
  const e = err as { api_error?: { err_code?: number }; code?: string };
  return e.api_error?.err_code === 10059 || e.code === "404";
};
