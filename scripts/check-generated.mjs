// Fails when proto/src/gen differs from what `npm run generate` makes of the .proto files.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";

const root = new URL("../proto/", import.meta.url).pathname;
const out = mkdtempSync(join(tmpdir(), "ponte-gen-"));
const list = (dir) =>
  readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? list(join(dir, n)) : [join(dir, n)]));
try {
  execFileSync(join(root, "../node_modules/.bin/buf"), ["generate", "--output", out], { cwd: root, stdio: "inherit" });
  const fresh = list(join(out, "src/gen")).map((f) => relative(join(out, "src/gen"), f)).sort();
  const committed = list(join(root, "src/gen")).map((f) => relative(join(root, "src/gen"), f)).sort();
  const drift = [...new Set([...fresh, ...committed])].filter((f) => {
    try {
      return readFileSync(join(out, "src/gen", f), "utf8") !== readFileSync(join(root, "src/gen", f), "utf8");
    } catch {
      return true; // present on one side only
    }
  });
  if (drift.length > 0) {
    console.error(`Generated code is out of date; run \`npm run generate\` and commit:\n  ${drift.join("\n  ")}`);
    process.exit(1);
  }
  console.log(`proto/src/gen matches the .proto files (${fresh.length} files)`);
} finally {
  rmSync(out, { recursive: true, force: true });
}
