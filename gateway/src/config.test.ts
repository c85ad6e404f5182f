import { ConfigError } from "@ponte/common";
import { describe, expect, it } from "vitest";
import { loadConfig } from "./config.js";

const SECRET = "s".repeat(32);

describe("loadConfig", () => {
  it("applies the defaults", () => {
    const c = loadConfig({ JWT_SECRET: SECRET });
    expect(c).toMatchObject({
      PORT: 8080,
      HOST: "0.0.0.0",
      COORDINATOR_GRPC_URL: "127.0.0.1:50051",
      COORDINATOR_DEADLINE_MS: 5000,
      LOG_LEVEL: "info",
      BODY_LIMIT_BYTES: 16384,
    });
    expect(c.JWT_PUBLIC_KEY).toBeUndefined();
  });

  it("has no default secret: neither JWT_SECRET nor JWT_PUBLIC_KEY is an error", () => {
    expect(() => loadConfig({})).toThrow(ConfigError);
    expect(() => loadConfig({ JWT_SECRET: "" })).toThrow(/JWT_SECRET/);
  });

  it("refuses a short secret, a key that is not an RSA PEM, and bad numbers", () => {
    expect(() => loadConfig({ JWT_SECRET: "short" })).toThrow(/JWT_SECRET/);
    expect(() => loadConfig({ JWT_PUBLIC_KEY: "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----" })).toThrow(/JWT_PUBLIC_KEY/);
    expect(() => loadConfig({ JWT_SECRET: SECRET, PORT: "http" })).toThrow(/PORT/);
    expect(() => loadConfig({ JWT_SECRET: SECRET, PORT: "70000" })).toThrow(/PORT/);
    expect(() => loadConfig({ JWT_SECRET: SECRET, BODY_LIMIT_BYTES: "0" })).toThrow(/BODY_LIMIT_BYTES/);
    expect(() => loadConfig({ JWT_SECRET: SECRET, LOG_LEVEL: "loud" })).toThrow(/LOG_LEVEL/);
  });
});
