// The latency probe of docs/ui-protocol.md section 6: window.__symphony.frames / .events.

export interface FrameRecord {
  extension: string;
  seq: number;
  kind: "snapshot" | "patch";
  /** The extension's wall clock when it published (the frame's `t`). */
  t_ext: number;
  t_received: number;
  /** Set in the layout effect of the commit that shows this frame. */
  t_rendered: number | null;
  events_done?: number[];
}

export interface EventRecord {
  seq: number;
  extension: string;
  node: string;
  event: string;
  t_sent: number;
  t_acked: number | null;
  ok: boolean | null;
  tree_seq: number | null;
  /** The commit of the first frame of the extension with seq >= tree_seq. */
  t_rendered: number | null;
  error?: string;
}

/** Milliseconds since the Unix epoch, sub-millisecond (performance.timeOrigin + now()). */
export function now(): number {
  return performance.timeOrigin + performance.now();
}

function push<T>(ring: T[], x: T, cap: number) {
  ring.push(x);
  if (ring.length > cap) ring.splice(0, ring.length - cap);
}

function percentile(xs: number[], p: number): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

export class Probe {
  readonly frames: FrameRecord[] = [];
  readonly events: EventRecord[] = [];
  /** Frames applied to the store, not yet handed to React. */
  private applied: FrameRecord[] = [];
  /** Frames handed to React by flush number `commit`, waiting for that commit's layout effect. */
  private staged: Array<{ commit: number; records: FrameRecord[] }> = [];
  private pendingAck = new Map<number, EventRecord>();
  /** Acked events whose tree_seq has not been rendered yet, per extension. */
  private awaitingRender = new Map<string, EventRecord[]>();
  /** Last rendered seq per extension, and when. */
  private renderedSeq = new Map<string, { seq: number; at: number }>();

  constructor(readonly capacity = 10_000) {}

  frameApplied(r: Omit<FrameRecord, "t_rendered">) {
    const rec: FrameRecord = { ...r, t_rendered: null };
    push(this.frames, rec, this.capacity);
    this.applied.push(rec);
    // Bounded even if React never commits (a hidden tab): the oldest wait no longer.
    if (this.applied.length > this.capacity) this.applied.splice(0, this.applied.length - this.capacity);
  }

  /** A flush handed the store to React as commit number `commit`. */
  staging(commit: number) {
    if (this.applied.length === 0) return;
    this.staged.push({ commit, records: this.applied });
    this.applied = [];
    if (this.staged.length > 64) this.staged.splice(0, this.staged.length - 64);
  }

  /** The layout effect of commit `commit` ran: the DOM shows every frame staged up to it. */
  rendered(commit: number, at = now()) {
    while (this.staged.length > 0 && this.staged[0].commit <= commit) {
      const { records } = this.staged.shift()!;
      for (const r of records) {
        r.t_rendered = at;
        const prev = this.renderedSeq.get(r.extension);
        if (r.kind === "snapshot" || !prev || r.seq > prev.seq) this.renderedSeq.set(r.extension, { seq: r.seq, at });
        const waiting = this.awaitingRender.get(r.extension);
        if (waiting) {
          const rest = waiting.filter((e) => {
            if (e.tree_seq !== null && r.seq >= e.tree_seq) {
              e.t_rendered = at;
              return false;
            }
            return true;
          });
          if (rest.length) this.awaitingRender.set(r.extension, rest);
          else this.awaitingRender.delete(r.extension);
        }
      }
    }
  }

  eventSent(e: { seq: number; extension: string; node: string; event: string }) {
    const rec: EventRecord = { ...e, t_sent: now(), t_acked: null, ok: null, tree_seq: null, t_rendered: null };
    push(this.events, rec, this.capacity);
    this.pendingAck.set(e.seq, rec);
    if (this.pendingAck.size > this.capacity) this.pendingAck.delete(this.pendingAck.keys().next().value!);
  }

  /** Returns the event's record, if it was sent by this page. */
  acked(seq: number, ok: boolean, treeSeq: number | undefined, error?: string): EventRecord | undefined {
    const rec = this.pendingAck.get(seq);
    if (!rec) return undefined;
    this.pendingAck.delete(seq);
    rec.t_acked = now();
    rec.ok = ok;
    if (error !== undefined) rec.error = error;
    if (!ok || treeSeq === undefined) return rec;
    rec.tree_seq = treeSeq;
    const r = this.renderedSeq.get(rec.extension);
    if (r && r.seq >= treeSeq) {
      // Already on screen: find the first rendered frame with seq >= tree_seq.
      let at = r.at;
      for (let i = this.frames.length - 1; i >= 0; i--) {
        const f = this.frames[i];
        if (f.extension !== rec.extension || f.t_rendered === null) continue;
        if (f.seq < treeSeq) break;
        at = f.t_rendered;
      }
      rec.t_rendered = at;
    } else {
      const list = this.awaitingRender.get(rec.extension) ?? [];
      list.push(rec);
      if (list.length > this.capacity) list.shift();
      this.awaitingRender.set(rec.extension, list);
    }
    return rec;
  }

  /** The extension went away or reset: nothing of it is pending any more. */
  forget(extension: string) {
    this.awaitingRender.delete(extension);
    this.renderedSeq.delete(extension);
  }

  stats() {
    const rendered = this.frames.filter((f) => f.t_rendered !== null);
    const lat = rendered.map((f) => f.t_rendered! - f.t_ext);
    const recv = rendered.map((f) => f.t_rendered! - f.t_received);
    const ev = this.events.filter((e) => e.t_rendered !== null).map((e) => e.t_rendered! - e.t_sent);
    const ack = this.events.filter((e) => e.t_acked !== null).map((e) => e.t_acked! - e.t_sent);
    return {
      frames: this.frames.length,
      frames_rendered: rendered.length,
      events: this.events.length,
      events_acked: ack.length,
      frame_latency_ms: { p50: percentile(lat, 50), p99: percentile(lat, 99), max: percentile(lat, 100) },
      receive_to_render_ms: { p50: percentile(recv, 50), p99: percentile(recv, 99) },
      event_ack_ms: { p50: percentile(ack, 50), p99: percentile(ack, 99) },
      event_to_render_ms: { p50: percentile(ev, 50), p99: percentile(ev, 99) },
    };
  }
}
