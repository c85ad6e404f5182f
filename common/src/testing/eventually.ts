import { setTimeout as wait } from "node:timers/promises";

/**
 * Polls fn until it returns without throwing (and, when it returns a boolean, returns true).
 * The last error is rethrown at the deadline, so a failing assertion says what was wrong.
 */
export async function eventually<T>(
  fn: () => Promise<T> | T,
  opts: { timeout?: number; interval?: number; message?: string } = {},
): Promise<T> {
  const deadline = Date.now() + (opts.timeout ?? 10_000);
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== false) return v;
      last = new Error(opts.message ?? "condition still false");
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      if (last instanceof Error && opts.message) last.message = `${opts.message}: ${last.message}`;
      throw last;
    }
    await wait(opts.interval ?? 50);
  }
}
