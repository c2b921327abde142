import { vi } from "vitest";
import type { JsonValue, PatchOp } from "../protocol/types";
import { Engine, type EngineOptions } from "../state/engine";
import type { ClientMsg } from "../protocol/types";

/** A node as JSON (the wire form). */
export interface J {
  id: string;
  type: string;
  props?: Record<string, JsonValue>;
  events?: string[];
  children?: J[];
}

export function n(id: string, type: string, props: Record<string, JsonValue> = {}, children: J[] = [], events?: string[]): J {
  return { id, type, props, children, ...(events ? { events } : {}) };
}

export const snapshot = (extension: string, seq: number, tree: J, t = 1_764_100_000_000) =>
  JSON.stringify({ v: 1, kind: "snapshot", extension, seq, t, tree });

export const patch = (extension: string, seq: number, ops: unknown[], extra: Record<string, unknown> = {}) =>
  JSON.stringify({ v: 1, kind: "patch", extension, seq, base: seq - 1, t: 1_764_100_000_000 + seq, ops, ...extra });

export const state = (extension: string, s: string, reason?: string) =>
  JSON.stringify({ v: 1, kind: "state", extension, state: s, ...(reason ? { reason } : {}), instance: 0 });

export const hello = (gateway = "ui-gateway") => JSON.stringify({ v: 1, kind: "hello", gateway, bus: "test" });

export type Op = PatchOp | Record<string, unknown>;

/** An engine whose flushes run only when the test says so, recording what it sends. */
export function testEngine(opts: EngineOptions = {}) {
  const sent: ClientMsg[] = [];
  const frames: Array<() => void> = [];
  const log = { warn: vi.fn(), error: vi.fn() };
  const reload = vi.fn();
  const engine = new Engine({
    send: (m) => {
      sent.push(m);
      return true;
    },
    schedule: (cb) => frames.push(cb),
    log,
    reload,
    ...opts,
  });
  /** Runs the pending animation frame(s). */
  const frame = () => {
    const cbs = frames.splice(0);
    for (const cb of cbs) cb();
    return cbs.length;
  };
  return { engine, sent, frame, frames, log, reload };
}
