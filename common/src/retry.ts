import type { Logger } from "./logger.js";
import { delay } from "./shutdown.js";

export interface RetryOptions {
  name: string;
  logger: Logger;
  signal?: AbortSignal;
  /** Attempts in all, the first included. Infinity only for loops that must outlive outages. */
  attempts?: number;
  baseMs?: number;
  maxMs?: number;
  isRetryable?: (err: unknown) => boolean;
  onRetry?: (err: unknown, attempt: number) => void;
}

/** The one retry wrapper: exponential backoff with jitter, bounded, stops on shutdown. */
export async function retry<T>(fn: (attempt: number) => Promise<T>, o: RetryOptions): Promise<T> {
  const attempts = o.attempts ?? 5;
  const base = o.baseMs ?? 200;
  const max = o.maxMs ?? 10_000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      const retryable = o.isRetryable ? o.isRetryable(err) : true;
      if (!retryable || attempt >= attempts || o.signal?.aborted) throw err;
      const wait = Math.min(max, base * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2);
      o.onRetry?.(err, attempt);
      o.logger.warn({ err, attempt, wait_ms: Math.round(wait), op: o.name }, "Retrying after an error");
      await delay(wait, o.signal);
    }
  }
}
