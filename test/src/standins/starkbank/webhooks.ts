// Webhook delivery as Stark Bank does it: POST {"event": …} to the registered URL with the body's
// ECDSA signature in Digital-Signature, retried with backoff until a 2xx. Delivery faults
// (duplicates, holds for out-of-order arrival, drops) are applied per event.
import type { Logger } from "@ponte/common";
import type { EventRecord } from "./model.js";

export interface DeliveryPlan {
  copies: number;
  drop: boolean;
  /** Hold until the next event of the same transfer was delivered, or at most this long. */
  holdMaxMs?: number;
}

/** Read live (functions), so tests can change them while the stand-in runs. */
export interface DispatcherOptions {
  url: () => string | undefined;
  sign: (body: string) => string;
  attempts: () => number;
  retryBaseMs: () => number;
  timeoutMs: number;
  logger: Logger;
}

export class WebhookDispatcher {
  readonly events: EventRecord[] = [];
  /** Held events per transfer, with their place in emission order. */
  private readonly held = new Map<string, { seq: number; release: () => void }[]>();
  private readonly seqOf = new WeakMap<EventRecord, number>();
  private emitted = 0;
  private readonly ac = new AbortController();
  private readonly inflight = new Set<Promise<void>>();
  private readonly chains = new Map<string, Promise<void>>();

  constructor(private readonly o: DispatcherOptions) {}

  /**
   * Records the event and starts its delivery; the promise ends when delivery is over either way.
   * Events of one transfer go out one after the other, in order (a held event steps out of line).
   */
  emit(rec: EventRecord, plan: DeliveryPlan): Promise<void> {
    this.events.push(rec);
    this.seqOf.set(rec, this.emitted++);
    const prev = plan.holdMaxMs === undefined ? (this.chains.get(rec.transferId) ?? Promise.resolve()) : Promise.resolve();
    const p = prev.then(() => this.run(rec, plan)).finally(() => {
      this.inflight.delete(p);
      if (this.chains.get(rec.transferId) === p) this.chains.delete(rec.transferId);
    });
    if (plan.holdMaxMs === undefined) this.chains.set(rec.transferId, p);
    this.inflight.add(p);
    return p;
  }

  clear(): void {
    this.events.length = 0;
    this.chains.clear();
    for (const list of this.held.values()) for (const h of list) h.release();
    this.held.clear();
  }

  async close(): Promise<void> {
    this.ac.abort();
    for (const list of this.held.values()) for (const h of list) h.release();
    await Promise.allSettled([...this.inflight]);
  }

  private async run(rec: EventRecord, plan: DeliveryPlan): Promise<void> {
    if (plan.drop) {
      rec.state = "dropped";
      return;
    }
    if (plan.holdMaxMs !== undefined) {
      rec.state = "held";
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, plan.holdMaxMs);
        function done() {
          clearTimeout(t);
          resolve();
        }
        const list = this.held.get(rec.transferId) ?? [];
        list.push({ seq: this.seqOf.get(rec)!, release: done });
        this.held.set(rec.transferId, list);
      });
      rec.state = "pending";
    }
    for (let copy = 0; copy < plan.copies; copy++) {
      const ok = await this.deliver(rec);
      if (!ok) break;
    }
    if (plan.holdMaxMs === undefined) this.releaseHeld(rec.transferId, rec);
  }

  /**
   * Releases the transfer's events held before `after` was emitted: a held event goes out after
   * the next one. (An earlier event delivered late, e.g. "created" while "processing" was
   * already held, used to release it too, so it went out in order.)
   */
  private releaseHeld(transferId: string, after: EventRecord): void {
    if (after.state !== "delivered") return;
    const list = this.held.get(transferId);
    if (!list || list.length === 0) return;
    const at = this.seqOf.get(after)!;
    const keep = list.filter((h) => h.seq > at);
    if (keep.length > 0) this.held.set(transferId, keep);
    else this.held.delete(transferId);
    for (const h of list) if (h.seq < at) h.release();
  }

  private async deliver(rec: EventRecord): Promise<boolean> {
    const url = this.o.url();
    if (!url) {
      rec.state = "no_url";
      return false;
    }
    const attempts = this.o.attempts();
    for (let attempt = 1; attempt <= attempts && !this.ac.signal.aborted; attempt++) {
      rec.attempts++;
      // Signed at send time with the current key, so a rotation shows on the next attempt.
      rec.signature = this.o.sign(rec.body);
      try {
        const res = await fetch(url, {
          method: "POST",
          headers: { "Content-Type": "application/json", "Digital-Signature": rec.signature },
          body: rec.body,
          signal: AbortSignal.any([AbortSignal.timeout(this.o.timeoutMs), this.ac.signal]),
        });
        await res.arrayBuffer();
        if (res.ok) {
          rec.deliveries++;
          rec.state = "delivered";
          return true;
        }
        rec.lastError = `HTTP ${res.status}`;
      } catch (err) {
        rec.lastError = err instanceof Error ? err.message : String(err);
      }
      this.o.logger.debug({ event_id: rec.id, attempt, error: rec.lastError }, "Webhook delivery failed");
      if (attempt < attempts) await sleep(this.o.retryBaseMs() * 2 ** (attempt - 1), this.ac.signal);
    }
    rec.state = rec.deliveries > 0 ? "delivered" : "failed";
    return false;
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
