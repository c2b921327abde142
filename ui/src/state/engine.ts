// The app's core, outside React: applies every gateway message to per-extension trees the moment
// it arrives, and hands the result to React at once when idle (or when the frame answers a
// user's event), else at most once per animation frame (flush()). A burst
// of patches between two frames costs their application only; React renders the latest state
// once, so a fast stream cannot build a backlog.

import { createStore, type StoreApi } from "zustand/vanilla";
import type { ClientMsg, JsonValue, ServerMsg, UINode } from "../protocol/types";
import { parseMessage, ProtocolError } from "../protocol/validate";
import { Tree } from "../protocol/tree";
import { Probe, now } from "./probe";
import { NodeSource } from "./nodes";

export type ConnectionStatus = "connecting" | "connected" | "reconnecting" | "unauthorized";

export interface ExtensionView {
  readonly id: string;
  /** Lifecycle state from the last `state` message (null until one arrived). */
  readonly state: string | null;
  readonly reason?: string;
  readonly instance?: number;
  /** The last known tree (kept while the extension is down). */
  readonly tree: UINode | null;
  readonly seq: number | null;
  /** Per-node subscriptions to the tree (stable for the extension's life in this connection). */
  readonly nodes: NodeSource;
  /** The reason of the last refused frame, if the tree is out of date because of it. */
  readonly refused?: string;
}

export interface Toast {
  id: number;
  text: string;
  tone: "error" | "info";
}

export interface AppState {
  status: ConnectionStatus;
  statusDetail: string | null;
  gateway: string | null;
  bus: string | null;
  /** Per extension; an object keeps its identity until that extension changes. */
  extensions: Readonly<Record<string, ExtensionView>>;
  toasts: readonly Toast[];
  /** Number of the last flush (the probe's commit marker). */
  commit: number;
}

interface Ext {
  id: string;
  /** Lifecycle state per instance (the gateway sends one `state` per instance). */
  instances: Map<number, { state: string; reason?: string }>;
  state: string | null;
  reason?: string;
  instance?: number;
  tree: Tree | null;
  seq: number | null;
  refused?: string;
  nodes: NodeSource;
  awaitingSnapshot: boolean;
  /** Mentioned by the current connection (see hello). */
  confirmed: boolean;
  lastResync: number;
  resyncTimer: ReturnType<typeof setTimeout> | null;
}

export interface EngineOptions {
  /** Sends a message to the gateway; returns false when not connected. */
  send?: (msg: ClientMsg) => boolean;
  /** Called when the gateway speaks another protocol version. */
  reload?: () => void;
  /** Schedules flush(); by default at once when idle, else at the next animation frame. */
  schedule?: (cb: () => void) => void;
  log?: Pick<Console, "warn" | "error">;
  probe?: Probe;
  /** Minimum time between two resync requests for one extension. */
  resyncIntervalMs?: number;
  /** After `hello`, how long extensions of the previous connection stay without news. */
  attachGraceMs?: number;
}

const STATE_RANK = ["HEALTHY", "UPDATING", "RUNNING", "STARTING", "CREATED", "STOPPING", "CRASHED", "FAILED", "TERMINATED"];
function rank(state: string): number {
  const i = STATE_RANK.indexOf(state);
  return i < 0 ? STATE_RANK.length : i;
}

// Leading edge when idle, then at most once per animation frame: a frame that arrives after a
// quiet frame's worth of time goes to React at once (waiting for the next animation frame added
// a whole frame, 16 ms, to a click's answer), while a burst is coalesced into the next one.
const FRAME_MS = 16;
function idleFirstSchedule(): (cb: () => void) => void {
  let lastFlush = -Infinity;
  const clock = () => (typeof performance !== "undefined" ? performance.now() : Date.now());
  return (cb) => {
    if (clock() - lastFlush >= FRAME_MS) {
      lastFlush = clock();
      queueMicrotask(cb);
      return;
    }
    const later = () => {
      lastFlush = clock();
      cb();
    };
    if (typeof requestAnimationFrame === "function") requestAnimationFrame(later);
    else setTimeout(later, FRAME_MS);
  };
}

export class Engine {
  readonly store: StoreApi<AppState>;
  readonly probe: Probe;
  private exts = new Map<string, Ext>();
  private views = new Map<string, ExtensionView>();
  private dirty = new Set<string>();
  private scheduled = false;
  private pendingTop: Partial<AppState> = {};
  private toasts: Toast[] = [];
  private toastSeq = 0;
  private eventSeq = 0;
  private pendingEvents = new Map<number, { extension: string; node: string; event: string }>();
  send: (msg: ClientMsg) => boolean;
  private readonly reload: () => void;
  private readonly schedule: (cb: () => void) => void;
  private readonly log: Pick<Console, "warn" | "error">;
  private readonly resyncInterval: number;
  private reloading = false;
  private helloTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly attachGraceMs: number;

  constructor(opts: EngineOptions = {}) {
    this.send = opts.send ?? (() => false);
    this.reload = opts.reload ?? (() => location.reload());
    this.schedule = opts.schedule ?? idleFirstSchedule();
    this.log = opts.log ?? console;
    this.probe = opts.probe ?? new Probe();
    this.resyncInterval = opts.resyncIntervalMs ?? 1000;
    this.attachGraceMs = opts.attachGraceMs ?? 3000;
    this.store = createStore<AppState>()(() => ({
      status: "connecting",
      statusDetail: null,
      gateway: null,
      bus: null,
      extensions: {},
      toasts: [],
      commit: 0,
    }));
  }

  // ---- incoming ------------------------------------------------------------------------------

  /** One WebSocket text frame from the gateway. */
  receive(text: string, tReceived = now()) {
    const r = parseMessage(text);
    if (!r.ok) {
      if (r.versionMismatch) {
        this.log.error(`[symphony] ${r.reason}: reloading the app`);
        if (!this.reloading) {
          this.reloading = true;
          this.reload();
        }
        return;
      }
      this.log.error(`[symphony] refused a message: ${r.reason}`);
      if (r.extension !== undefined) {
        const ext = this.exts.get(r.extension);
        // A bad snapshot is still the answer to a resync: ask again (after the interval).
        if (ext && r.kind === "snapshot") ext.awaitingSnapshot = false;
        if (ext) {
          ext.refused = r.reason;
          this.markDirty(ext.id);
        }
        this.requestResync(r.extension);
      }
      return;
    }
    this.handle(r.msg, tReceived);
  }

  handle(msg: ServerMsg, tReceived = now()) {
    switch (msg.kind) {
      case "hello": {
        // A new connection: the gateway sends every state and snapshot right after this. Keep
        // showing what the last connection knew until then (no flash of an empty app), but
        // without sequence state; what the gateway does not mention again within the grace
        // period is gone.
        if (this.helloTimer) clearTimeout(this.helloTimer);
        for (const ext of this.exts.values()) {
          if (ext.resyncTimer) clearTimeout(ext.resyncTimer);
          ext.resyncTimer = null;
          ext.awaitingSnapshot = false;
          ext.lastResync = -Infinity;
          ext.seq = null;
          ext.confirmed = false;
          this.markDirty(ext.id);
        }
        this.pendingEvents.clear();
        this.helloTimer = setTimeout(() => {
          this.helloTimer = null;
          for (const ext of [...this.exts.values()])
            if (!ext.confirmed) {
              this.exts.delete(ext.id);
              this.probe.forget(ext.id);
              this.markDirty(ext.id);
            }
        }, this.attachGraceMs);
        this.setTop({ gateway: msg.gateway, bus: msg.bus ?? null });
        return;
      }
      case "state": {
        const ext = this.ext(msg.extension);
        ext.instances.set(msg.instance ?? 0, { state: msg.state, reason: msg.reason });
        // The extension shows its most alive instance's state (while an update replaces an
        // instance, the old one's STOPPING/TERMINATED does not hide the new one's HEALTHY).
        let best: [number, { state: string; reason?: string }] | null = null;
        for (const entry of ext.instances)
          if (!best || rank(entry[1].state) < rank(best[1].state) || (rank(entry[1].state) === rank(best[1].state) && entry[0] < best[0])) best = entry;
        ext.instance = best![0];
        ext.state = best![1].state;
        ext.reason = best![1].reason;
        this.markDirty(ext.id);
        return;
      }
      case "snapshot": {
        const ext = this.ext(msg.extension);
        ext.tree = Tree.from(msg.tree, ext.tree);
        ext.nodes.set(ext.tree);
        ext.seq = msg.seq;
        ext.refused = undefined;
        ext.awaitingSnapshot = false;
        this.probe.frameApplied({
          extension: ext.id,
          seq: msg.seq,
          kind: "snapshot",
          t_ext: msg.t,
          t_received: tReceived,
          events_done: msg.events_done,
        });
        this.markDirty(ext.id);
        return;
      }
      case "patch": {
        const ext = this.ext(msg.extension);
        if (ext.tree === null || ext.seq !== msg.base) {
          if (!ext.awaitingSnapshot)
            this.log.warn(`[symphony] ${ext.id}: gap (tree at seq ${ext.seq ?? "none"}, patch base ${msg.base}): resync`);
          this.requestResync(ext.id);
          return;
        }
        try {
          ext.tree = ext.tree.apply(msg.ops);
          ext.nodes.set(ext.tree);
        } catch (e) {
          if (!(e instanceof ProtocolError)) throw e;
          const reason = `patch ${msg.seq} refused: ${e.message}`;
          this.log.error(`[symphony] ${ext.id}: ${reason}`);
          ext.refused = reason;
          this.markDirty(ext.id);
          this.requestResync(ext.id);
          return;
        }
        ext.seq = msg.seq;
        ext.refused = undefined;
        this.probe.frameApplied({
          extension: ext.id,
          seq: msg.seq,
          kind: "patch",
          t_ext: msg.t,
          t_received: tReceived,
          events_done: msg.events_done,
        });
        // The answer to a user's event is shown at once, not at the next animation frame.
        this.markDirty(ext.id, (msg.events_done?.length ?? 0) > 0);
        return;
      }
      case "gone": {
        const ext = this.exts.get(msg.extension);
        if (ext?.resyncTimer) clearTimeout(ext.resyncTimer);
        this.exts.delete(msg.extension);
        this.probe.forget(msg.extension);
        this.markDirty(msg.extension);
        return;
      }
      case "ack": {
        const rec = this.probe.acked(msg.seq, msg.ok, msg.tree_seq, msg.error);
        const ev = this.pendingEvents.get(msg.seq);
        this.pendingEvents.delete(msg.seq);
        if (!msg.ok) {
          const what = ev ? `${ev.extension}: ${ev.event} on ${ev.node}` : rec ? `${rec.extension}: ${rec.event} on ${rec.node}` : `event ${msg.seq}`;
          this.toast(`${what} failed: ${msg.error ?? "refused"}`, "error");
        }
        return;
      }
      case "heartbeat":
        return;
      case "error":
        this.log.error(`[symphony] gateway error: ${msg.message}`);
        this.toast(`Gateway: ${msg.message}`, "error");
        return;
    }
  }

  /** The extension `id`, created if new; the current connection mentioned it. */
  private ext(id: string): Ext {
    let e = this.exts.get(id);
    if (e) e.confirmed = true;
    if (!e) {
      e = { id, instances: new Map(), state: null, tree: null, seq: null, nodes: new NodeSource(), awaitingSnapshot: false, confirmed: true, lastResync: -Infinity, resyncTimer: null };
      this.exts.set(id, e);
    }
    return e;
  }

  /** Asks the gateway for a fresh snapshot of `id`, at most once per resync interval; while a
   * requested snapshot has not arrived, further gaps do not ask again. */
  requestResync(id: string) {
    const ext = this.ext(id);
    if (ext.resyncTimer) return;
    const t = Date.now();
    const wait = ext.lastResync + (ext.awaitingSnapshot ? 2 * this.resyncInterval : this.resyncInterval) - t;
    const go = () => {
      ext.resyncTimer = null;
      ext.lastResync = Date.now();
      ext.awaitingSnapshot = true;
      this.send({ v: 1, kind: "resync", extension: id });
    };
    if (wait <= 0) go();
    else if (!ext.awaitingSnapshot) ext.resyncTimer = setTimeout(go, wait);
  }

  // ---- outgoing ------------------------------------------------------------------------------

  /** Sends a user event of `node` (the caller checked the node lists it). Returns its seq, or
   * null when not connected. */
  sendEvent(extension: string, node: string, event: string, payload: JsonValue): number | null {
    const seq = ++this.eventSeq;
    const ok = this.send({ v: 1, kind: "event", extension, node, event, payload, seq });
    if (!ok) {
      this.toast(`Not connected: ${event} on ${node} was not sent`, "error");
      return null;
    }
    this.pendingEvents.set(seq, { extension, node, event });
    if (this.pendingEvents.size > 10_000) this.pendingEvents.delete(this.pendingEvents.keys().next().value!);
    this.probe.eventSent({ seq, extension, node, event });
    return seq;
  }

  /** A new connection begins: nothing pending is answered any more; snapshots will follow. */
  connectionReset() {
    for (const ext of this.exts.values()) {
      if (ext.resyncTimer) clearTimeout(ext.resyncTimer);
      ext.resyncTimer = null;
      ext.awaitingSnapshot = false;
      ext.lastResync = -Infinity;
      // Patches before the next snapshot are gaps: the gateway snapshots every extension on attach.
      ext.seq = null;
    }
    this.pendingEvents.clear();
  }

  // ---- to React ------------------------------------------------------------------------------

  setStatus(status: ConnectionStatus, detail: string | null = null) {
    this.setTop({ status, statusDetail: detail });
  }

  toast(text: string, tone: Toast["tone"] = "info") {
    this.toasts = [...this.toasts, { id: ++this.toastSeq, text, tone }].slice(-5);
    this.setTop({ toasts: this.toasts });
  }

  dismissToast(id: number) {
    this.toasts = this.toasts.filter((t) => t.id !== id);
    this.setTop({ toasts: this.toasts });
  }

  private setTop(p: Partial<AppState>) {
    Object.assign(this.pendingTop, p);
    this.requestFlush();
  }

  private markDirty(id: string, urgent = false) {
    this.dirty.add(id);
    if (urgent) {
      // Ahead of a scheduled flush: that one then finds nothing left to do.
      queueMicrotask(() => this.flush());
      return;
    }
    this.requestFlush();
  }

  private requestFlush() {
    if (this.scheduled) return;
    this.scheduled = true;
    this.schedule(() => this.flush());
  }

  /** Publishes everything applied since the last flush to React, as one store update. */
  flush() {
    this.scheduled = false;
    if (this.dirty.size === 0 && Object.keys(this.pendingTop).length === 0) return;
    const prev = this.store.getState();
    let extensions = this.pendingTop.extensions ?? prev.extensions;
    const published = [...this.dirty];
    if (this.dirty.size > 0) {
      const next: Record<string, ExtensionView> = { ...extensions };
      for (const id of this.dirty) {
        const e = this.exts.get(id);
        if (!e) {
          delete next[id];
          this.views.delete(id);
          continue;
        }
        const view: ExtensionView = {
          id,
          state: e.state,
          reason: e.reason,
          instance: e.instance,
          tree: e.tree?.root ?? null,
          seq: e.seq,
          nodes: e.nodes,
          refused: e.refused,
        };
        this.views.set(id, view);
        next[id] = view;
      }
      extensions = next;
      this.dirty.clear();
    }
    const commit = prev.commit + 1;
    this.probe.staging(commit);
    const update = { ...this.pendingTop, extensions, commit };
    this.pendingTop = {};
    // One task: React batches the store update and the node notifications into one render.
    this.store.setState(update);
    for (const id of published) this.exts.get(id)?.nodes.publish();
  }

  getState(): AppState {
    return this.store.getState();
  }
}
