import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Logger } from "@ponte/common";
import { errorBody } from "../errors.js";
import type { App } from "./common.js";

/** Next to the compiled routes in dist/ (the build copies it) and in src/ alike. */
export const WEB_PAGE_FILE = fileURLToPath(new URL("../web/index.html", import.meta.url));

export interface WebPage {
  html: string;
  csp: string;
}

const sha256 = (s: string) => `'sha256-${createHash("sha256").update(s, "utf8").digest("base64")}'`;
const inline = (html: string, tag: "script" | "style") =>
  [...html.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, "g"))].map((m) => m[1]!);

/**
 * The page and a CSP that allows exactly its own inline script and style (by hash) and requests to
 * this origin: nothing else runs, loads or frames it, even if an API string slipped into the DOM.
 */
export function loadWebPage(file = WEB_PAGE_FILE): WebPage {
  const html = readFileSync(file, "utf8");
  const scripts = inline(html, "script").map(sha256);
  const styles = inline(html, "style").map(sha256);
  const csp = [
    "default-src 'none'",
    `script-src ${scripts.join(" ") || "'none'"}`,
    `style-src ${styles.join(" ") || "'none'"}`,
    "connect-src 'self'",
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
  return { html, csp };
}

/**
 * GET / and /index.html: the development page (sign in with a JWT, trades with live status, one
 * trade's audit log). Not in the OpenAPI document: it is a page, not API.
 */
export function registerWebRoutes(app: App, deps: { logger: Logger; page?: WebPage }): void {
  let page = deps.page;
  if (!page) {
    try {
      page = loadWebPage();
    } catch (err) {
      // The API matters more than the page: a build without it still serves every route.
      deps.logger.warn({ err, file: WEB_PAGE_FILE }, "Web page missing from the build; / answers 404 (run npm run build)");
    }
  }
  const serve = page;
  for (const path of ["/", "/index.html"]) {
    app.get(path, (c) => {
      if (!serve) return c.json(errorBody("NOT_FOUND", "the web page is not in this build"), 404);
      c.header("Content-Security-Policy", serve.csp);
      c.header("X-Content-Type-Options", "nosniff");
      // The page puts the token in the stream's URL: no Referer may carry a URL of ours anywhere.
      c.header("Referrer-Policy", "no-referrer");
      c.header("Cache-Control", "no-cache");
      return c.html(serve.html);
    });
  }
}
