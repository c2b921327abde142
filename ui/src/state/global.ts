import type { Engine } from "./engine";
import type { EventRecord, FrameRecord } from "./probe";

export interface SymphonyGlobal {
  /** Every applied frame (the last 10,000): section 6 of the protocol. */
  frames: FrameRecord[];
  /** Every sent event (the last 10,000). */
  events: EventRecord[];
  /** The connection: "connecting" | "connected" | "reconnecting" | "unauthorized". */
  readonly status: string;
  readonly gateway: string | null;
  /** Extension ids with their lifecycle state and tree seq. */
  extensions(): Record<string, { state: string | null; seq: number | null }>;
  stats(): ReturnType<Engine["probe"]["stats"]>;
}

declare global {
  interface Window {
    __symphony?: SymphonyGlobal;
  }
}

export function installProbe(engine: Engine, target: Window = window): SymphonyGlobal {
  const g: SymphonyGlobal = {
    frames: engine.probe.frames,
    events: engine.probe.events,
    get status() {
      return engine.getState().status;
    },
    get gateway() {
      return engine.getState().gateway;
    },
    extensions() {
      const out: Record<string, { state: string | null; seq: number | null }> = {};
      for (const [id, v] of Object.entries(engine.getState().extensions)) out[id] = { state: v.state, seq: v.seq };
      return out;
    },
    stats: () => engine.probe.stats(),
  };
  target.__symphony = g;
  return g;
}
