/**
 * A polling loop's sleep that news (a NOTIFY, a LISTEN re-established) cuts short. News that
 * comes while the loop is working, between two waits, ends the next wait at once: a loop that
 * only resolved a waiter slept through it until the next poll.
 */
export interface Wakeup {
  /** There is news: ends the current wait, or the next one at once. */
  notify(): void;
  /** Resolves at news (pending or new), after ms, or when signal aborts; never rejects. */
  wait(ms: number, signal?: AbortSignal): Promise<void>;
}

export function createWakeup(): Wakeup {
  let pending = false;
  let wake: (() => void) | undefined;
  return {
    notify() {
      pending = true;
      wake?.();
    },
    async wait(ms, signal) {
      if (!pending && !signal?.aborted) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(done, ms);
          function done() {
            clearTimeout(t);
            signal?.removeEventListener("abort", done);
            wake = undefined;
            resolve();
          }
          wake = done;
          signal?.addEventListener("abort", done, { once: true });
        });
      }
      // What comes from here on is news for the next wait.
      pending = false;
    },
  };
}
