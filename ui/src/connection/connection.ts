// The WebSocket client (docs/ui-protocol.md section 4): ws(s)://<host>/ws?token=<token>,
// reconnecting at once and then with backoff (250 ms doubling to 2 s), with an app-level watchdog
// (the gateway sends a heartbeat every 5 s; 15 s of silence means the connection is dead).

import type { ClientMsg } from "../protocol/types";
import { now } from "../state/probe";
import type { Engine } from "../state/engine";

export interface SocketLike {
  readonly readyState: number;
  onopen: ((ev: Event) => unknown) | null;
  onclose: ((ev: CloseEvent) => unknown) | null;
  onerror: ((ev: Event) => unknown) | null;
  onmessage: ((ev: MessageEvent) => unknown) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export interface ConnectionOptions {
  url: string;
  /** The token is missing from the page URL: do not even try. */
  tokenMissing?: boolean;
  createSocket?: (url: string) => SocketLike;
  /** After a socket closed without ever opening: why? Resolves to the HTTP status of a plain
   * GET of the WebSocket URL (401: bad token), or null when the gateway is unreachable. */
  probeStatus?: (url: string) => Promise<number | null>;
  watchdogMs?: number;
  backoff?: readonly number[];
}

export const BACKOFF_MS = [0, 250, 500, 1000, 2000] as const;
const OPEN = 1;

/** ws(s)://<host>/ws?token=<token of the page URL>. */
export function socketUrl(loc: Pick<Location, "protocol" | "host" | "search">): { url: string; token: string | null } {
  const token = new URLSearchParams(loc.search).get("token");
  const scheme = loc.protocol === "https:" ? "wss:" : "ws:";
  return { url: `${scheme}//${loc.host}/ws?token=${encodeURIComponent(token ?? "")}`, token };
}

async function defaultProbe(url: string): Promise<number | null> {
  try {
    const http = url.replace(/^ws/, "http");
    const r = await fetch(http, { cache: "no-store" });
    return r.status;
  } catch {
    return null;
  }
}

export class Connection {
  private socket: SocketLike | null = null;
  private attempt = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private watchdog: ReturnType<typeof setTimeout> | null = null;
  /** When the current socket last heard from the gateway (Date.now()). */
  private lastHeard = 0;
  private stopped = false;
  private readonly createSocket: (url: string) => SocketLike;
  private readonly probeStatus: (url: string) => Promise<number | null>;
  private readonly watchdogMs: number;
  private readonly backoff: readonly number[];
  /** Number of sockets opened (for tests and stats). */
  opened = 0;
  /** The gateway refused the upgrade the last time we asked why. */
  private refused = false;
  /** Sockets in a row that closed before opening while the gateway answered HTTP. */
  private refusedInARow = 0;

  constructor(
    private readonly engine: Engine,
    private readonly opts: ConnectionOptions,
  ) {
    this.createSocket = opts.createSocket ?? ((u) => new WebSocket(u) as unknown as SocketLike);
    this.probeStatus = opts.probeStatus ?? defaultProbe;
    this.watchdogMs = opts.watchdogMs ?? 15_000;
    this.backoff = opts.backoff ?? BACKOFF_MS;
    engine.send = (msg) => this.send(msg);
  }

  start() {
    this.stopped = false;
    if (this.opts.tokenMissing) {
      this.engine.setStatus("unauthorized", "The page URL has no ?token=.");
      return;
    }
    this.connect();
  }

  stop() {
    this.stopped = true;
    this.clearTimers();
    const s = this.socket;
    this.socket = null;
    if (s) {
      s.onopen = s.onclose = s.onerror = s.onmessage = null;
      s.close();
    }
  }

  send(msg: ClientMsg): boolean {
    const s = this.socket;
    if (!s || s.readyState !== OPEN) return false;
    s.send(JSON.stringify(msg));
    return true;
  }

  private clearTimers() {
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.watchdog) clearTimeout(this.watchdog);
    this.reconnectTimer = this.watchdog = null;
  }

  private connect() {
    this.reconnectTimer = null;
    if (this.stopped) return;
    let opened = false;
    let s: SocketLike;
    try {
      s = this.createSocket(this.opts.url);
    } catch (e) {
      this.engine.setStatus("reconnecting", `cannot open the WebSocket: ${(e as Error).message}`);
      this.scheduleReconnect();
      return;
    }
    this.socket = s;
    s.onopen = () => {
      opened = true;
      this.opened++;
      this.refused = false;
      this.refusedInARow = 0;
      this.engine.connectionReset();
      this.engine.setStatus("connected");
      this.armWatchdog();
    };
    s.onmessage = (ev: MessageEvent) => {
      const t = now();
      if (this.socket !== s) return;
      // The connection works: the next drop reconnects at once again.
      this.attempt = 0;
      this.lastHeard = Date.now(); // the watchdog reads it (no timer churn at 1 kHz)
      if (typeof ev.data !== "string") {
        console.error("[symphony] ignored a binary WebSocket message");
        return;
      }
      this.engine.receive(ev.data, t);
    };
    s.onerror = () => {
      /* onclose follows */
    };
    s.onclose = (ev: CloseEvent) => {
      if (this.socket !== s) return;
      this.socket = null;
      if (this.watchdog) clearTimeout(this.watchdog);
      this.watchdog = null;
      if (this.stopped) return;
      if (!opened) {
        // A refused upgrade (401 bad token, 403 origin) looks the same as a gateway that is down;
        // ask over plain HTTP which one it is.
        if (!this.refused) this.engine.setStatus("reconnecting", "cannot reach the gateway");
        this.probeStatus(this.opts.url).then(
          (status) => {
            if (this.stopped || this.socket?.readyState === OPEN) return;
            this.refusedInARow = status === null ? 0 : this.refusedInARow + 1;
            // A browser never sees the status of a refused upgrade. The gateway answers a plain
            // GET of /ws with 401 if it checks the token there; otherwise (426) it is up but
            // refused our upgrade twice in a row: the token (the usual reason) or the origin.
            this.refused = status === 401 || status === 403 || this.refusedInARow >= 2;
            if (status === 401) this.engine.setStatus("unauthorized", "The gateway refused the token (HTTP 401): bad or missing token.");
            else if (status === 403) this.engine.setStatus("unauthorized", "The gateway refused this page's origin (HTTP 403).");
            else if (this.refused) this.engine.setStatus("unauthorized", "The gateway is up but refuses this page's WebSocket: bad or missing token.");
            else this.engine.setStatus("reconnecting", status === null ? "cannot reach the gateway" : "the gateway refused the WebSocket");
          },
          () => undefined,
        );
      } else {
        this.engine.setStatus("reconnecting", ev.code ? `connection closed (${ev.code}${ev.reason ? `: ${ev.reason}` : ""})` : "connection closed");
      }
      this.scheduleReconnect();
    };
  }

  private scheduleReconnect() {
    if (this.stopped || this.reconnectTimer) return;
    const delay = this.backoff[Math.min(this.attempt, this.backoff.length - 1)];
    this.attempt++;
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  /** Closes and reconnects when nothing arrived for watchdogMs. One timer, re-armed for the
   * time left when it fires, rather than a timer reset per message. */
  private armWatchdog() {
    if (this.watchdog) clearTimeout(this.watchdog);
    this.lastHeard = Date.now();
    const check = () => {
      const left = this.lastHeard + this.watchdogMs - Date.now();
      if (left > 0) {
        this.watchdog = setTimeout(check, left);
        return;
      }
      this.watchdog = null;
      const s = this.socket;
      if (!s) return;
      console.warn(`[symphony] no message for ${this.watchdogMs} ms: reconnecting`);
      this.socket = null;
      s.onopen = s.onclose = s.onerror = s.onmessage = null;
      try {
        s.close(4000, "heartbeat timeout");
      } catch {
        /* already closing */
      }
      this.engine.setStatus("reconnecting", "no heartbeat from the gateway");
      this.scheduleReconnect();
    };
    this.watchdog = setTimeout(check, this.watchdogMs);
  }
}
