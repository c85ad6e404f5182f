import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildAppWithoutCoordinator, type TestApp } from "../_test/app.js";
import { loadWebPage } from "./web.js";

let t: TestApp;
beforeAll(async () => {
  t = await buildAppWithoutCoordinator();
});
afterAll(() => t.close());

const hashOf = (s: string) => `'sha256-${createHash("sha256").update(s).digest("base64")}'`;

describe("the web page", () => {
  it("is served at / and /index.html as HTML with a strict CSP, without a token", async () => {
    for (const path of ["/", "/index.html"]) {
      const res = await t.app.request(path);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/^text\/html/);
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      expect(res.headers.get("referrer-policy")).toBe("no-referrer");
      const csp = res.headers.get("content-security-policy") ?? "";
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain("connect-src 'self'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).not.toContain("unsafe-inline");
      const html = await res.text();
      expect(html).toMatch(/^<!doctype html>/i);
      expect(html).toContain('<label for="token">Development JWT</label>');
    }
  });

  it("the CSP allows exactly the page's inline script and style, by hash", async () => {
    const res = await t.app.request("/");
    const csp = res.headers.get("content-security-policy")!;
    const html = await res.text();
    const script = /<script>([\s\S]*?)<\/script>/.exec(html)![1]!;
    const style = /<style>([\s\S]*?)<\/style>/.exec(html)![1]!;
    expect(csp).toContain(`script-src ${hashOf(script)};`);
    expect(csp).toContain(`style-src ${hashOf(style)};`);
    // No other script or style can be allowed: one of each, with no attributes that would escape the hash.
    expect(html.match(/<script/g)).toHaveLength(1);
    expect(html.match(/<style/g)).toHaveLength(1);
    expect(html).not.toMatch(/\sstyle=/);
    expect(html).not.toMatch(/\son[a-z]+=/);
  });

  it("loads nothing from elsewhere and never writes markup from data", async () => {
    const { html } = loadWebPage();
    expect(html).not.toMatch(/(src|href)=["']?(https?:)?\/\//);
    expect(html).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
    expect(html).toContain("?access_token=");
  });

  it("is not part of the API document", async () => {
    const doc = (await (await t.app.request("/openapi.json")).json()) as { paths: Record<string, unknown> };
    expect(doc.paths["/"]).toBeUndefined();
    expect(doc.paths["/index.html"]).toBeUndefined();
  });
});
