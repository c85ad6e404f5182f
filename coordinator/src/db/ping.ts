import postgres from "postgres";

export interface DatabasePing {
  /** true when the database answered `SELECT 1` within the timeout; never throws. */
  ping(): Promise<boolean>;
  end(): Promise<void>;
}

/**
 * Readiness's own connection. The pool's reconnect backoff grows with every failed attempt
 * (postgres.js shares it across the pool), so during an outage a ping queued there waits for
 * seconds and the gateway's probe times out as "coordinator unavailable" instead of hearing
 * "database down". One connection that retries at once, one ping in flight, bounded by a timeout.
 */
export function createDatabasePing(url: string, opts: { timeoutMs: number; onError?: (err: unknown) => void }): DatabasePing {
  const sql = postgres(url, {
    max: 1,
    backoff: () => 0,
    connect_timeout: Math.max(1, Math.ceil(opts.timeoutMs / 1000)),
    onnotice: () => {},
    connection: { application_name: "ponte-coordinator-ping" },
  });
  let inFlight: Promise<boolean> | undefined;

  const attempt = async (): Promise<boolean> => {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), opts.timeoutMs);
    });
    const answered = sql`SELECT 1`.execute().then(
      () => true,
      (err: unknown) => {
        opts.onError?.(err);
        return false;
      },
    );
    try {
      return await Promise.race([answered, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  };

  return {
    ping() {
      inFlight ??= attempt().finally(() => {
        inFlight = undefined;
      });
      return inFlight;
    },
    end: () => sql.end({ timeout: 1 }),
  };
}
