// Types of the Symphony UI protocol, version 1 (docs/ui-protocol.md).

export const PROTOCOL_VERSION = 1;

export type JsonValue =
  | null
  | boolean
  | number
  | string
  | JsonValue[]
  | { [key: string]: JsonValue };

export type Props = Readonly<Record<string, JsonValue>>;

/** A node of an extension's UI tree (section 1). Normalized: every field present. Immutable:
 * patch application copies the path from a changed node to the root, so unchanged subtrees keep
 * their identity (the renderer memoizes on it). */
export interface UINode {
  readonly id: string;
  readonly type: string;
  readonly props: Props;
  readonly events: readonly string[];
  readonly children: readonly UINode[];
}

/** Bounds of section 1. */
export interface Limits {
  maxDepth: number;
  maxNodes: number;
  maxMessageBytes: number;
  maxEventsPerNode: number;
  /** Nesting of arrays and objects in one message (a tree level costs two). */
  maxNesting: number;
}

export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  maxDepth: 32,
  maxNodes: 10_000,
  maxMessageBytes: 262_144,
  maxEventsPerNode: 16,
  maxNesting: 128,
});

// ---- patch operations (section 2) -------------------------------------------------------------

export interface PropsOp {
  op: "props";
  id: string;
  set: Record<string, JsonValue>;
  unset: string[];
}
export interface EventsOp {
  op: "events";
  id: string;
  events: string[];
}
export interface InsertOp {
  op: "insert";
  parent: string;
  index: number;
  node: UINode;
}
export interface RemoveOp {
  op: "remove";
  id: string;
}
export interface MoveOp {
  op: "move";
  id: string;
  parent: string;
  index: number;
}
export interface ReplaceOp {
  op: "replace";
  id: string;
  node: UINode;
}
export type PatchOp = PropsOp | EventsOp | InsertOp | RemoveOp | MoveOp | ReplaceOp;
export type OpKind = PatchOp["op"];

// ---- gateway -> browser (section 4) -----------------------------------------------------------

export interface HelloMsg {
  v: 1;
  kind: "hello";
  gateway: string;
  bus?: string;
}
export interface StateMsg {
  v: 1;
  kind: "state";
  extension: string;
  state: string;
  reason?: string;
  instance?: number;
}
export interface SnapshotMsg {
  v: 1;
  kind: "snapshot";
  extension: string;
  seq: number;
  t: number;
  tree: UINode;
  events_done?: number[];
}
export interface PatchMsg {
  v: 1;
  kind: "patch";
  extension: string;
  seq: number;
  base: number;
  t: number;
  ops: PatchOp[];
  events_done?: number[];
}
export interface GoneMsg {
  v: 1;
  kind: "gone";
  extension: string;
}
export interface AckMsg {
  v: 1;
  kind: "ack";
  seq: number;
  ok: boolean;
  tree_seq?: number;
  error?: string;
}
export interface HeartbeatMsg {
  v: 1;
  kind: "heartbeat";
}
export interface ErrorMsg {
  v: 1;
  kind: "error";
  message: string;
}
export type ServerMsg =
  | HelloMsg
  | StateMsg
  | SnapshotMsg
  | PatchMsg
  | GoneMsg
  | AckMsg
  | HeartbeatMsg
  | ErrorMsg;

// ---- browser -> gateway -----------------------------------------------------------------------

export interface EventMsg {
  v: 1;
  kind: "event";
  extension: string;
  node: string;
  event: string;
  payload: JsonValue;
  seq: number;
}
export interface ResyncMsg {
  v: 1;
  kind: "resync";
  extension?: string;
}
export type ClientMsg = EventMsg | ResyncMsg;

/** Lifecycle states the supervisor reports (engine/supervisor lifecycle.hpp). */
export type LifecycleState =
  | "CREATED"
  | "STARTING"
  | "RUNNING"
  | "HEALTHY"
  | "UPDATING"
  | "STOPPING"
  | "TERMINATED"
  | "CRASHED"
  | "FAILED"
  | (string & {});
