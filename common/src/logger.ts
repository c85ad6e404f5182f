import { pino, type DestinationStream, type Logger } from "pino";

export type { Logger };

// Paths that must never reach a log line, whatever the caller passes.
const REDACT = [
  "seed", "*.seed", "privateKey", "*.privateKey", "password", "*.password", "token", "*.token",
  "authorization", "*.authorization", "headers.authorization", "jwt", "*.jwt", "secret", "*.secret",
  "pix_key", "*.pix_key", "raw_tx", "*.raw_tx",
];

/** A JSON logger to stdout (or `destination`), with the paths above censored in every line. */
export function createLogger(opts: { name: string; level?: string; destination?: DestinationStream }): Logger {
  const options = {
    name: opts.name,
    level: opts.level ?? process.env.LOG_LEVEL ?? "info",
    // pino's redaction (@pinojs/redact) is patched to parse these paths once rather than on every
    // line (patches/@pinojs+redact+0.4.0.patch; 22 → 13 µs per line).
    redact: { paths: REDACT, censor: "[redacted]" },
    base: { service: opts.name },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return opts.destination ? pino(options, opts.destination) : pino(options);
}

/**
 * A child logger that binds only what its ancestors do not already carry with the same value.
 * pino writes every binding of every level, so a key bound by the agent and again by its modules
 * appeared two or three times in one JSON line, which log pipelines reject or resolve arbitrarily.
 */
export function childLogger(parent: Logger, bindings: Record<string, unknown>): Logger {
  const bound = parent.bindings();
  const fresh = Object.fromEntries(Object.entries(bindings).filter(([k, v]) => bound[k] !== v));
  return parent.child(fresh);
}

/** Strips credentials and query strings from a URL before it is logged. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = "";
    u.password = "";
    u.search = "";
    return u.toString();
  } catch {
    return "[unparseable url]";
  }
}

/** Shows the last characters only (PIX keys, documents). */
export function mask(s: string, visible = 4): string {
  return s.length <= visible ? "*".repeat(s.length) : `${"*".repeat(s.length - visible)}${s.slice(-visible)}`;
}
