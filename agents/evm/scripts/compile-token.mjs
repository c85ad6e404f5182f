#!/usr/bin/env node
// Compiles the test contracts in ../test-contracts with the solc npm package (wasm, pinned by the
// root lockfile) and writes <Name>.json (abi, bytecode, compiler) beside each source. The
// artifacts are committed so tests need no compiler; run this after editing a .sol file.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const solc = require("solc");
const dir = join(dirname(fileURLToPath(import.meta.url)), "..", "test-contracts");
const sources = Object.fromEntries(
  readdirSync(dir)
    .filter((f) => f.endsWith(".sol"))
    .sort()
    .map((f) => [f, { content: readFileSync(join(dir, f), "utf8") }]),
);
const input = {
  language: "Solidity",
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    // paris: no PUSH0, so the bytecode also runs on chains that lag behind Shanghai.
    evmVersion: "paris",
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
  },
};
const output = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (output.errors ?? []).filter((e) => e.severity === "error");
for (const e of output.errors ?? []) process.stderr.write(`${e.formattedMessage}\n`);
if (errors.length) process.exit(1);
for (const [file, contracts] of Object.entries(output.contracts)) {
  for (const [name, c] of Object.entries(contracts)) {
    const artifact = { contractName: name, source: file, compiler: `solc ${solc.version()}`, abi: c.abi, bytecode: `0x${c.evm.bytecode.object}` };
    writeFileSync(join(dir, `${name}.json`), `${JSON.stringify(artifact, null, 2)}\n`);
    process.stdout.write(`wrote test-contracts/${name}.json\n`);
  }
}
