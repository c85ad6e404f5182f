#!/usr/bin/env node
// npm start: a whole local Ponte (Postgres, NATS, anvil with a demo token, litecoind regtest when
// installed, the PIX and Vault stand-ins, the coordinator, the EVM and LTC agents and the gateway)
// until Ctrl-C or SIGTERM.
import { existsSync, rmSync, writeFileSync } from "node:fs";
import { relative } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { StartError } from "./errors.js";
import { signHs256 } from "./jwt.js";
import { parseStartOptions, PORT_SETTINGS, START_USAGE, UsageError, type InternalPort, type StartOptions } from "./options.js";
import { ENTRIES, REPO_ROOT } from "./paths.js";
import { assertPortsFree, freePorts, type PortClaim } from "./ports.js";
import { anvilBinary, ANVIL_CHAIN_ID, DEMO_TOKEN, prepareChain, startAnvil } from "./services/anvil.js";
import { findNatsServer, startNats } from "./services/nats.js";
import {
  DEMO_LTC_WALLET,
  findLitecoind,
  hasChain,
  LTC_BLOCK_INTERVAL_MS,
  LTC_NETWORK,
  LTC_RPC_USER,
  prepareLitecoin,
  satsToCoins,
  startLitecoinNode,
  startMiner,
} from "./services/litecoin.js";
import { startCoordinator, startEvmAgent, startGateway, startLtcAgent } from "./services/ponte.js";
import { startEmbeddedPostgres } from "./services/postgres.js";
import { DEMO_USER, EVM_SEED_PATH, startStarkbankStandin, startVaultStandin, UTXO_SEED_PATH, type VaultSeed } from "./services/standins.js";
import {
  cmdlineOf,
  loadOrCreateSecrets,
  prepareStateDir,
  processAlive,
  readStackInfo,
  removeStackInfo,
  statePaths,
  writeStackInfo,
  type StackInfo,
  type StatePaths,
} from "./state/index.js";
import { createSupervisor, groupAlive, type LogRecord, type Supervised } from "./supervisor/index.js";
import { style } from "./style.js";

const TOKEN_TTL_S = 7 * 24 * 3600;
const WEBHOOK_PATH = "/api/v1/webhooks/pix/starkbank";

const say = (s = "") => process.stdout.write(`${s}\n`);
const warn = (s: string) => process.stdout.write(`${style.yellow("!")} ${s}\n`);
const t0 = Date.now();
const step = (s: string) => process.stdout.write(`${style.dim("·")} ${s} ${style.dim(`(${((Date.now() - t0) / 1000).toFixed(1)} s)`)}\n`);

/** Stops the processes a crashed earlier run left behind: only pids it recorded, still running the same command. */
async function reapLeftovers(p: StatePaths): Promise<void> {
  const prev = readStackInfo(p.stack);
  if (!prev) return;
  if (prev.pid !== process.pid && processAlive(prev.pid) && (cmdlineOf(prev.pid) ?? []).some((a) => a.endsWith("start.js"))) {
    throw new StartError(
      `A local Ponte is already running from ${p.dir} (npm start, pid ${prev.pid}). ` +
        `Stop it first (Ctrl-C in its terminal, or kill ${prev.pid}), or use another --state-dir.`,
    );
  }
  const left = prev.children.filter((c) => processAlive(c.pid) && JSON.stringify(cmdlineOf(c.pid)) === JSON.stringify(c.cmdline));
  if (left.length > 0) {
    warn(`The previous run (pid ${prev.pid}) did not stop cleanly; stopping what it left: ${left.map((c) => `${c.name} (${c.pid})`).join(", ")}`);
    for (const c of left) {
      try {
        process.kill(-c.pid, c.name === "postgres" ? "SIGINT" : "SIGTERM");
      } catch {
        // already gone
      }
    }
    for (let i = 0; i < 100 && left.some((c) => groupAlive(c.pid)); i++) await sleep(100);
    for (const c of left) {
      try {
        if (groupAlive(c.pid)) process.kill(-c.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }
  rmSync(p.stack, { force: true });
}

function checkBuilt(): void {
  const missing = (["coordinator", "gateway", "starkbank"] as const).filter((k) => !existsSync(ENTRIES[k]));
  if (missing.length > 0) {
    throw new StartError(`${missing.map((k) => relative(REPO_ROOT, ENTRIES[k])).join(", ")} missing: build first (npm run build), or use npm start, which builds.`);
  }
}

async function choosePorts(o: StartOptions, need: InternalPort[]): Promise<Record<InternalPort, number>> {
  const chosen = {} as Record<InternalPort, number>;
  const auto = need.filter((k) => o.ports[k] === undefined);
  const taken = [o.gatewayPort, ...need.flatMap((k) => (o.ports[k] === undefined ? [] : [o.ports[k]]))];
  const picked = o.freePorts ? await freePorts(auto.length, "127.0.0.1", taken) : [];
  for (const k of need) chosen[k] = o.ports[k] ?? (o.freePorts ? picked[auto.indexOf(k)]! : PORT_SETTINGS[k][1]);
  return chosen;
}

const WHAT: Record<InternalPort, string> = {
  grpc: "the coordinator's gRPC",
  coordinatorMetrics: "the coordinator's metrics",
  agentMetrics: "the EVM agent's metrics",
  anvil: "anvil",
  postgres: "the embedded PostgreSQL",
  nats: "nats-server",
  starkbank: "the Stark Bank stand-in",
  vault: "the Vault stand-in",
  litecoin: "litecoind's RPC",
  ltcAgentMetrics: "the LTC agent's metrics",
};

/** What of a child's output reaches the terminal: warnings and errors, or everything with --verbose. */
function echo(verbose: boolean, quiet: () => boolean) {
  return (name: string, line: string, rec: LogRecord | undefined) => {
    // While stopping, children report their own shutdown ("Stopped following…"): not news.
    if (quiet()) return;
    if (verbose) {
      process.stdout.write(`${style.dim(`[${name}]`)} ${line}\n`);
      return;
    }
    if (rec) {
      if (typeof rec.level !== "number" || rec.level < 40) return;
      const err = rec.err && typeof rec.err === "object" ? (rec.err as { message?: unknown }).message : undefined;
      const tag = rec.level >= 50 ? style.red("ERROR") : style.yellow("WARN");
      process.stdout.write(`${style.dim(`[${name}]`)} ${tag} ${rec.msg ?? ""}${typeof err === "string" ? `: ${err}` : ""}\n`);
    } else if (/\b(FATAL|PANIC)\b|\[(ERR|FTL)\]/.test(line)) {
      process.stdout.write(`${style.dim(`[${name}]`)} ${line}\n`);
    }
  };
}

async function main(): Promise<void> {
  let o: StartOptions;
  try {
    o = parseStartOptions(process.argv.slice(2), process.env);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`${err.message}\n\n${START_USAGE}`);
    process.exit(2);
  }
  if (o.help) {
    say(START_USAGE);
    return;
  }
  const p = statePaths(o.stateDir);
  const sup = createSupervisor({
    logDir: p.logs,
    onLine: echo(o.verbose, () => stopping !== undefined && !o.verbose),
    onUnexpectedExit: (child, code, signal) => {
      process.stdout.write(
        `\n${style.red("✖")} ${child.name} exited unexpectedly (${signal ? `signal ${signal}` : `code ${code}`}). ` +
          `Its last lines (all in ${relative(process.cwd(), `${p.logs}/${child.name}.log`) || p.logs}):\n` +
          child.tail.slice(-15).map((l) => `    ${l}`).join("\n") +
          "\n",
      );
      void stop(`${child.name} died`, 1);
    },
  });

  let stopping: Promise<void> | undefined;
  const stop = (reason: string, code: number): Promise<void> => {
    if (stopping) return stopping;
    stopping = (async () => {
      if (sup.children.length > 0) {
        say(`\nStopping (${reason})…`);
        await sup.stopAll((name) => say(`${style.dim("·")} stopping ${name}`));
        say(code === 0 ? `${style.green("✔")} Stopped; nothing left running.` : "Stopped; nothing left running.");
      }
      removeStackInfo(p);
      process.exit(code);
    })();
    return stopping;
  };
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(sig, () => {
      if (stopping) {
        // A second Ctrl-C: the user does not want to wait for clean shutdowns.
        say("Killing everything now.");
        sup.killAll();
        removeStackInfo(p);
        process.exit(130);
      }
      void stop(sig, 0);
    });
  }
  // Started by npm through a shell: if the user kills npm, that shell dies without passing the
  // signal on. A changed parent means nobody waits for us any more: stop rather than linger.
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) void stop("the parent process exited", 0);
  }, 1_000).unref();

  try {
    await bringUp(o, p, sup);
  } catch (err) {
    if (stopping) return; // a signal or a dying child is already stopping everything
    const msg = err instanceof StartError || err instanceof UsageError ? err.message : ((err as Error)?.stack ?? String(err));
    process.stdout.write(`\n${style.red("✖")} Could not start: ${msg}\n`);
    await stop("start-up failed", 1);
  }
}

async function bringUp(o: StartOptions, p: StatePaths, sup: ReturnType<typeof createSupervisor>): Promise<void> {
  // Leftovers of a crashed run first: they may hold the very ports checked next.
  await reapLeftovers(p);
  checkBuilt();
  const userJwtSecret = process.env.JWT_SECRET && process.env.JWT_SECRET !== "" ? process.env.JWT_SECRET : undefined;
  if (userJwtSecret !== undefined && userJwtSecret.length < 32) throw new StartError("JWT_SECRET must be at least 32 characters (the gateway refuses a shorter one)");

  const anvilBin = anvilBinary();
  if (!anvilBin) throw new StartError(`anvil is not installed for ${process.platform}-${process.arch} (npm package @foundry-rs/anvil): run npm ci`);
  const embeddedPg = !process.env.DATABASE_URL;
  const natsBin = process.env.NATS_URL ? undefined : findNatsServer();
  const managedNats = !process.env.NATS_URL && natsBin !== undefined;
  const agentBuilt = existsSync(ENTRIES.agentEvm);
  const vaultBuilt = existsSync(ENTRIES.vault);
  // LTC needs both the node and the UTXO agent; either missing turns it off, the rest runs.
  const litecoind = findLitecoind();
  const ltcAgentBuilt = existsSync(ENTRIES.agentBitcoin);
  const ltcOff = !litecoind
    ? process.env.PONTE_LITECOIND
      ? `PONTE_LITECOIND (${process.env.PONTE_LITECOIND}) does not exist`
      : "litecoind is not installed"
    : !ltcAgentBuilt
      ? "agents/bitcoin is not built"
      : undefined;

  const need: InternalPort[] = ["grpc", "coordinatorMetrics", "anvil", "starkbank"];
  if (agentBuilt) need.push("agentMetrics");
  if (embeddedPg) need.push("postgres");
  if (managedNats) need.push("nats");
  if (vaultBuilt) need.push("vault");
  if (!ltcOff) need.push("litecoin", "ltcAgentMetrics");
  const ports = await choosePorts(o, need);
  const claims: PortClaim[] = [
    { port: o.gatewayPort, host: o.gatewayHost, what: "the gateway", setting: "PORT" },
    ...need.map((k) => ({ port: ports[k], host: "127.0.0.1", what: WHAT[k], setting: PORT_SETTINGS[k][0] })),
  ];
  await assertPortsFree(claims);

  // Only now touch the state folder: a refused start leaves it as it was.
  prepareStateDir(p, o.fresh);
  if (o.fresh) step(`wiped ${p.dir}`);
  const secrets = loadOrCreateSecrets(p);
  const jwtSecret = userJwtSecret ?? secrets.jwtSecret;

  const gatewayUrl = `http://${o.gatewayHost === "0.0.0.0" ? "127.0.0.1" : o.gatewayHost}:${o.gatewayPort}`;
  say(`${style.bold("Starting a local Ponte")} ${style.dim(`(state in ${relative(process.cwd(), p.dir) || "."}/, logs in ${relative(process.cwd(), p.logs)}/)`)}`);

  // Nothing below depends on anything else until the coordinator: start them side by side.
  const [pg, nats, chain, starkbank, vault, ltc] = await Promise.all([
    (async () => {
      if (!embeddedPg) {
        step("PostgreSQL: DATABASE_URL from the environment");
        // Its data outlives the state folder: a cursor of an earlier anvil chain would not match a new one.
        if (o.fresh || !existsSync(p.anvilState)) {
          warn("DATABASE_URL's database is not part of the state folder (--fresh leaves it alone): give npm start a database of its own, empty when the chain is new.");
        }
        return { url: process.env.DATABASE_URL!, embedded: false };
      }
      const r = await startEmbeddedPostgres(sup, { dataDir: p.postgres, port: ports.postgres, password: secrets.postgresPassword });
      step(`PostgreSQL (embedded) on 127.0.0.1:${ports.postgres}`);
      return { url: r.url, embedded: true };
    })(),
    (async () => {
      if (process.env.NATS_URL) {
        step("NATS: NATS_URL from the environment");
        return { url: process.env.NATS_URL, managed: false, off: false };
      }
      if (!natsBin) {
        // The coordinator needs some URL; one where nothing listens keeps events in the outbox.
        const [unused] = await freePorts(1);
        return { url: `nats://127.0.0.1:${unused}`, managed: false, off: true };
      }
      const r = await startNats(sup, { bin: natsBin, port: ports.nats, storeDir: p.nats });
      step(`NATS (JetStream) on 127.0.0.1:${ports.nats}`);
      return { url: r.url, managed: true, off: false };
    })(),
    (async () => {
      if (embeddedPg && existsSync(`${p.postgres}/PG_VERSION`) && !existsSync(p.anvilState)) {
        throw new StartError(
          `The database in ${p.dir} remembers an anvil chain whose state file is gone: run npm start -- --fresh to begin again`,
        );
      }
      const a = await startAnvil(sup, { bin: anvilBin, port: ports.anvil, stateFile: p.anvilState });
      const c = await prepareChain(a.rpcUrl, p.chain, secrets.evmMnemonic);
      step(`anvil on 127.0.0.1:${ports.anvil}, demo USDT at ${c.token}`);
      return { ...a, ...c };
    })(),
    (async () => {
      const r = await startStarkbankStandin(sup, {
        port: ports.starkbank,
        projectId: secrets.starkbank.projectId,
        publicKeyPem: secrets.starkbank.publicKeyPem,
        webhookUrl: `${gatewayUrl}${WEBHOOK_PATH}`,
      });
      step(`Stark Bank stand-in on 127.0.0.1:${ports.starkbank}`);
      return r;
    })(),
    (async () => {
      if (!vaultBuilt) return undefined;
      const r = await startVaultStandin(sup, {
        port: ports.vault,
        rootToken: secrets.vaultRootToken,
        seeds: [
          { policy: "agent-evm", path: EVM_SEED_PATH, mnemonic: secrets.evmMnemonic, token: secrets.vaultAgentToken },
          { policy: "agent-bitcoin", path: UTXO_SEED_PATH, mnemonic: secrets.utxoMnemonic, token: secrets.vaultUtxoAgentToken },
        ] satisfies VaultSeed[],
        seedFile: p.vaultSeed,
      });
      step(`Vault stand-in on 127.0.0.1:${ports.vault}`);
      return r;
    })(),
    (async () => {
      if (ltcOff) return undefined;
      if (existsSync(p.litecoinRecord) && !hasChain(p.litecoin)) {
        throw new StartError(`The database in ${p.dir} remembers a litecoin chain whose datadir (${p.litecoin}) is gone: run npm start -- --fresh to begin again`);
      }
      const node = await startLitecoinNode(sup, { bin: litecoind!, port: ports.litecoin, datadir: p.litecoin, password: secrets.litecoinRpcPassword });
      const w = await prepareLitecoin(node.rpc);
      writeFileSync(p.litecoinRecord, `${JSON.stringify({ network: LTC_NETWORK, wallet: DEMO_LTC_WALLET }, null, 2)}\n`);
      // Regtest mines only when asked: a block a second, so deposits confirm as on anvil.
      startMiner(node.rpc, {
        address: w.minerAddress,
        intervalMs: LTC_BLOCK_INTERVAL_MS,
        stopped: () => sup.stopping,
        onError: (err) => warn(`litecoind did not mine a block: ${(err as Error).message} (retrying every ${LTC_BLOCK_INTERVAL_MS / 1000} s)`),
      });
      step(`litecoind regtest on 127.0.0.1:${ports.litecoin} (height ${w.height}), demo wallet "${DEMO_LTC_WALLET}" with ${satsToCoins(w.spendable)} LTC`);
      return { ...node, ...w };
    })(),
  ]);
  if (nats.off) {
    warn(
      `${process.env.PONTE_NATS_SERVER ? `PONTE_NATS_SERVER (${process.env.PONTE_NATS_SERVER}) does not run` : "nats-server is not installed (Debian: apt-get install -y nats-server)"} ` +
        "and NATS_URL is unset: running without NATS; trade events wait in the outbox until one is configured.",
    );
  }
  if (!vaultBuilt) warn("The Vault stand-in is not built (test/dist/standins/vault): it is off; the agents take their seeds from EVM_SEED_MNEMONIC / UTXO_SEED_MNEMONIC (SEED_SOURCE=env).");

  const overrides = { [`anvil:${DEMO_TOKEN.symbol}`]: chain.token };
  await startCoordinator(sup, {
    databaseUrl: pg.url,
    natsUrl: nats.url,
    grpcPort: ports.grpc,
    metricsPort: ports.coordinatorMetrics,
    contractOverrides: overrides,
    starkbank: { url: starkbank.url, projectId: secrets.starkbank.projectId, privateKeyPem: secrets.starkbank.privateKeyPem },
  });
  step(`coordinator: gRPC 127.0.0.1:${ports.grpc}`);
  // The gateway and the agents need only the coordinator: side by side.
  const agents: StackInfo["agents"] = [];
  let ltcHotWallet: string | null = null;
  await Promise.all([
    (async () => {
      await startGateway(sup, { host: o.gatewayHost, port: o.gatewayPort, grpcPort: ports.grpc, jwtSecret });
      step(`gateway on ${gatewayUrl}`);
    })(),
    (async () => {
      if (!agentBuilt) {
        warn("The EVM agent is not built (agents/evm/dist/main.js): deposits on anvil will not be seen. Run npm run build.");
        agents.push({ network: "anvil", running: false, reason: "agents/evm is not built" });
        return;
      }
      await startEvmAgent(sup, {
        grpcPort: ports.grpc,
        metricsPort: ports.agentMetrics,
        rpcUrl: chain.rpcUrl,
        wsUrl: chain.wsUrl,
        contractOverrides: overrides,
        seed: {
          mnemonic: secrets.evmMnemonic,
          ...(vault ? { vault: { url: vault.url, token: secrets.vaultAgentToken, path: EVM_SEED_PATH } } : {}),
        },
      });
      step("EVM agent following anvil");
      agents.push({ network: "anvil", running: true });
    })(),
    (async () => {
      if (!ltc) {
        warn(
          ltcOff === "agents/bitcoin is not built"
            ? "LTC is off: the UTXO agent is not built (agents/bitcoin/dist/main.js). Run npm run build."
            : `LTC is off: ${ltcOff} (Debian: apt-get install -y litecoind), so the LTC agent does not run; everything else does.`,
        );
        agents.push({ network: LTC_NETWORK, running: false, reason: ltcOff! });
        return;
      }
      const r = await startLtcAgent(sup, {
        grpcPort: ports.grpc,
        metricsPort: ports.ltcAgentMetrics,
        rpcUrl: ltc.rpcUrl,
        rpcUser: LTC_RPC_USER,
        rpcPassword: secrets.litecoinRpcPassword,
        seed: {
          mnemonic: secrets.utxoMnemonic,
          ...(vault ? { vault: { url: vault.url, token: secrets.vaultUtxoAgentToken, path: UTXO_SEED_PATH } } : {}),
        },
      });
      ltcHotWallet = r.hotWallet;
      step("LTC agent following litecoind");
      agents.push({ network: LTC_NETWORK, running: true });
    })(),
  ]);

  // Finished in any order; listed as started.
  agents.sort((x, y) => (x.network === LTC_NETWORK ? 1 : 0) - (y.network === LTC_NETWORK ? 1 : 0));

  const claimsFor = (extra: Record<string, unknown>) => ({
    ...(process.env.JWT_ISSUER ? { iss: process.env.JWT_ISSUER } : {}),
    ...(process.env.JWT_AUDIENCE ? { aud: process.env.JWT_AUDIENCE } : {}),
    ...extra,
  });
  const tokens = {
    user: signHs256(jwtSecret, claimsFor({ sub: DEMO_USER.sub, role: "user", document: DEMO_USER.document, name: DEMO_USER.name }), TOKEN_TTL_S),
    admin: signHs256(jwtSecret, claimsFor({ sub: "demo-admin", role: "admin" }), TOKEN_TTL_S),
  };
  const info: StackInfo = {
    version: 1,
    pid: process.pid,
    startedAt: new Date().toISOString(),
    stateDir: p.dir,
    gatewayUrl,
    coordinatorGrpc: `127.0.0.1:${ports.grpc}`,
    coordinatorMetricsUrl: `http://127.0.0.1:${ports.coordinatorMetrics}/metrics`,
    anvil: {
      rpcUrl: chain.rpcUrl,
      wsUrl: chain.wsUrl,
      chainId: ANVIL_CHAIN_ID,
      tokens: [{ symbol: DEMO_TOKEN.symbol, address: chain.token, decimals: DEMO_TOKEN.decimals }],
      wallets: chain.wallets,
      hotWallet: chain.hotWallet,
    },
    litecoin: ltc
      ? {
          rpcUrl: ltc.rpcUrl,
          rpcUser: LTC_RPC_USER,
          rpcPassword: secrets.litecoinRpcPassword,
          wallet: DEMO_LTC_WALLET,
          blockIntervalMs: LTC_BLOCK_INTERVAL_MS,
          hotWallet: ltcHotWallet,
        }
      : null,
    starkbank: { url: starkbank.url, webhookUrl: `${gatewayUrl}${WEBHOOK_PATH}` },
    vault: vault ? { url: vault.url } : null,
    postgres: { embedded: pg.embedded, url: pg.embedded ? pg.url : null },
    nats: { url: nats.managed ? nats.url : null, managed: nats.managed },
    agents,
    demoUser: DEMO_USER,
    tokens,
    children: sup.children.map((c: Supervised) => ({ name: c.name, pid: c.pid, cmdline: c.cmdline })),
  };
  writeStackInfo(p, info);
  printBanner(info, { seconds: (Date.now() - t0) / 1000, natsOff: nats.off, statePath: relative(process.cwd(), p.stack) });
}

function formatCpf(c: string): string {
  return `${c.slice(0, 3)}.${c.slice(3, 6)}.${c.slice(6, 9)}-${c.slice(9)}`;
}

function printBanner(i: StackInfo, x: { seconds: number; natsOff: boolean; statePath: string }): void {
  const g = i.gatewayUrl;
  const auth = '-H "Authorization: Bearer $PONTE_TOKEN"';
  const row = (k: string, v: string) => say(`  ${k.padEnd(14)}${v}`);
  say();
  say(`${style.green("✔")} ${style.bold("Ponte is running")} ${style.dim(`(up in ${x.seconds.toFixed(1)} s; details in ${x.statePath})`)}`);
  say();
  row("Gateway", `${style.bold(g)}   ${style.dim(`(API: ${g}/openapi.json)`)}`);
  row("Coordinator", `gRPC ${i.coordinatorGrpc}, metrics ${i.coordinatorMetricsUrl}`);
  row("anvil", `${i.anvil.rpcUrl} (chain ${i.anvil.chainId}, 1 s blocks); USDT ${i.anvil.tokens[0]!.address}`);
  row("Demo wallets", `${i.anvil.wallets.map((w) => w.address).join(", ")} (anvil's dev keys; ETH and USDT)`);
  row("Hot wallet", `${i.anvil.hotWallet} (the EVM agent's; sweeps land here)`);
  const l = i.litecoin;
  if (l) {
    row("litecoind", `${l.rpcUrl} (regtest, ${l.blockIntervalMs / 1000} s blocks; RPC user ${l.rpcUser}, password in ${x.statePath})`);
    row("LTC wallets", `demo wallet "${l.wallet}" in litecoind pays deposits; hot wallet ${l.hotWallet ?? "?"} (the LTC agent's)`);
  } else {
    row("litecoind", style.yellow(`off (${i.agents.find((a) => a.network === LTC_NETWORK)?.reason ?? "not started"})`));
  }
  row("PostgreSQL", i.postgres.embedded ? `embedded, ${i.postgres.url}` : "DATABASE_URL");
  row("NATS", x.natsOff ? "off (events wait in the outbox)" : i.nats.managed ? `${i.nats.url} (JetStream)` : "NATS_URL");
  row("PIX provider", `Stark Bank stand-in ${i.starkbank.url} (payouts: ${i.starkbank.url}/_admin/transfers)`);
  row("Vault", i.vault ? `stand-in ${i.vault.url} (the agents read their seeds there)` : "off (the agents' seeds come from the environment)");
  row("Agents", i.agents.map((a) => `${a.network} ${a.running ? style.green("on") : style.yellow(`off (${a.reason})`)}`).join("; "));
  say();
  say(`Development user ${style.dim(`(sub ${i.demoUser.sub}, ${i.demoUser.name}, CPF ${formatCpf(i.demoUser.document)}; valid 7 days)`)}:`);
  say(`  export PONTE_TOKEN=${i.tokens.user}`);
  say("Admin:");
  say(`  export PONTE_ADMIN_TOKEN=${i.tokens.admin}`);
  say();
  say("Try, in another terminal:");
  say(`  npm run demo                                  ${style.dim("# sell 100 USDT and watch it through to the PIX receipt")}`);
  say(`  npm run demo -- --asset ETH --amount 0.01     ${style.dim("# sell ether")}`);
  if (l) say(`  npm run demo -- --asset LTC --amount 0.5      ${style.dim("# sell litecoin: mempool, 6 confirmations, PIX")}`);
  say(`  npm run demo -- --fail-payout                 ${style.dim("# the bank rejects the PIX: see the failure path")}`);
  say(`  curl -s ${g}/api/v1/instant-trade/assets ${auth}`);
  say(`  curl -s -X POST ${g}/api/v1/instant-trade/quote ${auth} -H 'content-type: application/json' \\`);
  say(`       -d '{"symbol":"USDT","network":"anvil","crypto_amount":"100"}'`);
  say(`  curl -s ${g}/api/v1/instant-trade/history/my-trades ${auth}`);
  say(`  curl -s ${g}/api/v1/instant-trade/<trade_id>/audit-log -H "Authorization: Bearer $PONTE_ADMIN_TOKEN"`);
  say();
  say(style.dim("Ctrl-C stops everything."));
}

await main();
