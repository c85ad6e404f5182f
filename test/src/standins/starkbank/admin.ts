// A typed client for the stand-in's /_admin API, the same whether it runs in-process or as a
// child process.
import type { StandinConfig } from "./server.js";
import type { EventRecord, Fault, FaultSpec, KeyHolder, TransferJson } from "./model.js";

export interface TransferSummary {
  transfers: TransferJson[];
  /** Per externalId: transfers made (0 or 1) and POSTs that carried it (retries, refused repeats). */
  byExternalId: Record<string, { transfers: number; createAttempts: number; status: string | null; amount: number | null }>;
  totals: {
    count: number;
    created: number;
    processing: number;
    success: number;
    failed: number;
    returned: number;
    canceled: number;
    paidCentavos: string;
  };
}

export class StarkbankStandinAdmin {
  constructor(readonly baseUrl: string) {}

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(this.baseUrl + path, {
      method,
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = (await res.json()) as T;
    if (!res.ok) throw new Error(`stand-in ${method} ${path}: HTTP ${res.status} ${JSON.stringify(json)}`);
    return json;
  }

  health = () => this.call<{ ok: boolean }>("GET", "/_admin/health");
  reset = () => this.call<{ ok: boolean }>("POST", "/_admin/reset");
  registerProject = (id: string, publicKeyPem: string) =>
    this.call<{ accessId: string }>("POST", "/_admin/projects", { id, publicKeyPem });
  seedKeys = (keys: KeyHolder[]) => this.call<{ count: number }>("POST", "/_admin/keys", { keys });
  setWebhookUrl = (url: string | null) => this.call<{ url: string | null }>("PUT", "/_admin/webhook", { url });
  configure = (config: Partial<StandinConfig>) => this.call<{ config: StandinConfig }>("PUT", "/_admin/config", config);
  addFault = async (spec: FaultSpec) => (await this.call<{ fault: Fault }>("POST", "/_admin/faults", spec)).fault;
  faults = async () => (await this.call<{ faults: Fault[] }>("GET", "/_admin/faults")).faults;
  clearFaults = () => this.call<{ ok: boolean }>("DELETE", "/_admin/faults");
  transfers = () => this.call<TransferSummary>("GET", "/_admin/transfers");
  advance = async (transferId: string, to: "processing" | "success" | "failed" | "returned" | "canceled", errors?: string[]) =>
    (await this.call<{ transfer: TransferJson }>("POST", `/_admin/transfers/${transferId}/advance`, { to, errors })).transfer;
  /** Sets a transfer's creation time (e.g. to yesterday, for the daily reconciliation). */
  backdate = async (transferId: string, created: string) =>
    (await this.call<{ transfer: TransferJson }>("POST", `/_admin/transfers/${transferId}/backdate`, { created })).transfer;
  /** API requests received per route, e.g. {"GET /v2/public-key": 2, "POST /v2/transfer": 5}. */
  requests = async () => (await this.call<{ requests: Record<string, number> }>("GET", "/_admin/requests")).requests;
  events = async () => (await this.call<{ events: EventRecord[] }>("GET", "/_admin/events")).events;
  /** Emits (and by default delivers) a signed event about a transfer; `created` backdates it. */
  emitEvent = async (opts: { transferId: string; type?: string; created?: string; deliver?: boolean }) =>
    (await this.call<{ event: EventRecord }>("POST", "/_admin/events", opts)).event;
  rotateKey = async () => (await this.call<{ publicKeyPem: string }>("POST", "/_admin/rotate-key")).publicKeyPem;
  sign = async (body: string) => (await this.call<{ signature: string }>("POST", "/_admin/sign", { body })).signature;
}
