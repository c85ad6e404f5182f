import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { childLogger, createLogger } from "./logger.js";

function capture() {
  const lines: Record<string, unknown>[] = [];
  const raw: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split("\n")) {
        if (!l) continue;
        raw.push(l);
        lines.push(JSON.parse(l) as Record<string, unknown>);
      }
      done();
    },
  });
  return { lines, raw, logger: createLogger({ name: "test", destination }) };
}

describe("createLogger", () => {
  it("censors secrets at the top level and one level down, on every line, and keeps the rest", () => {
    const { lines, logger } = capture();
    const child = logger.child({ network: "anvil" });
    for (let i = 0; i < 3; i++) {
      child.info(
        { seed: "abandon abandon", token: "eyJ", trade_id: `trd_${i}`, payout: { pix_key: "+5511999999999", amount: "100" }, headers: { authorization: "Bearer x" } },
        "line",
      );
    }
    expect(lines).toHaveLength(3);
    lines.forEach((l, i) => {
      expect(l).toMatchObject({
        seed: "[redacted]", token: "[redacted]", trade_id: `trd_${i}`, network: "anvil",
        payout: { pix_key: "[redacted]", amount: "100" }, headers: { authorization: "[redacted]" }, msg: "line",
      });
    });
    expect(JSON.stringify(lines)).not.toMatch(/abandon|eyJ|5511999|Bearer/);
  });

  it("leaves the caller's object as it was", () => {
    const { logger } = capture();
    const obj = { secret: "s3cr3t", nested: { password: "hunter2" } };
    logger.info(obj, "line");
    expect(obj).toEqual({ secret: "s3cr3t", nested: { password: "hunter2" } });
  });

  it("childLogger binds a key once however many levels bind it, and still adds what is new", () => {
    const { lines, raw, logger } = capture();
    const agent = childLogger(logger, { network: "anvil" });
    const module = childLogger(childLogger(agent, { network: "anvil" }), { network: "anvil", component: "transfers" });
    module.info({ trade_id: "trd_1" }, "line");
    expect(raw[0]!.match(/"network"/g)).toHaveLength(1);
    expect(raw[0]!.match(/"component"/g)).toHaveLength(1);
    expect(lines[0]).toMatchObject({ network: "anvil", component: "transfers", trade_id: "trd_1" });
    // The plain child, for contrast: pino repeats the key.
    logger.child({ network: "anvil" }).child({ network: "anvil" }).info("line");
    expect(raw[1]!.match(/"network"/g)).toHaveLength(2);
  });
});
