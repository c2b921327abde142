// Strict validation of what the gateway sends (docs/ui-protocol.md sections 1, 2 and 4).
// Everything the app uses goes through here: a value that passes is well-typed and normalized
// (optional node fields filled in), and within the bounds of section 1 that can be checked
// without the receiver's tree (node depth/count/uniqueness inside one subtree; the tree-level
// checks after each operation are in tree.ts).

import {
  DEFAULT_LIMITS,
  PROTOCOL_VERSION,
  type AckMsg,
  type JsonValue,
  type Limits,
  type PatchMsg,
  type PatchOp,
  type ServerMsg,
  type SnapshotMsg,
  type UINode,
} from "./types";

export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProtocolError";
  }
}

export type ParseResult =
  | { ok: true; msg: ServerMsg }
  /** `v` is not 1: the app must reload (a gateway of another version serves its own app). */
  | { ok: false; versionMismatch: true; reason: string; extension?: undefined }
  /** Refused; `extension` is set when the message names one (so the app can resync it). */
  | { ok: false; versionMismatch: false; reason: string; extension?: string; kind?: string };

const TYPE_RE = /^[a-z][a-z0-9-]{0,63}$/;
const EVENT_RE = /^[a-z][a-z0-9-]{0,31}$/;
// C0 controls and DEL (as the C++ model: bytes < 0x20 and 0x7f).
// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\u0000-\u001f\u007f]/;
const NODE_FIELDS = new Set(["id", "type", "props", "events", "children"]);

/** UTF-8 length of a JS string (lone surrogates count as 3 bytes, as TextEncoder writes U+FFFD). */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}

/** Whether `text` is at most `max` bytes of UTF-8, without encoding it in the common cases. */
export function withinBytes(text: string, max: number): boolean {
  if (text.length > max) return false; // every UTF-16 unit is at least one UTF-8 byte
  if (text.length * 3 <= max) return true; // every unit is at most three bytes
  return utf8Length(text) <= max;
}

/** Whether JSON text can nest arrays and objects deeper than `max`: only if it has more than
 * `max` opening brackets (counted natively, fast), and then the exact scan decides. */
export function nestingOver(text: string, max: number): number | null {
  let opens = 0;
  for (let i = text.indexOf("["); i !== -1 && opens <= max; i = text.indexOf("[", i + 1)) opens++;
  for (let i = text.indexOf("{"); i !== -1 && opens <= max; i = text.indexOf("{", i + 1)) opens++;
  if (opens <= max) return null;
  const depth = jsonNesting(text);
  return depth > max ? depth : null;
}

/** The deepest nesting of arrays and objects in JSON text (brackets inside strings skipped). */
export function jsonNesting(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) max = depth;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return max;
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

function isCount(x: unknown): x is number {
  return typeof x === "number" && Number.isSafeInteger(x) && x >= 0;
}

function describe(x: unknown): string {
  if (x === null) return "null";
  if (Array.isArray(x)) return "an array";
  return typeof x === "object" ? "an object" : `${typeof x}`;
}

export function checkId(id: unknown, what = "id"): string {
  if (typeof id !== "string") throw new ProtocolError(`${what} must be a string, got ${describe(id)}`);
  const bytes = utf8Length(id);
  if (bytes < 1 || bytes > 128) throw new ProtocolError(`${what} ${JSON.stringify(id)}: must be 1-128 bytes (is ${bytes})`);
  if (CONTROL_RE.test(id)) throw new ProtocolError(`${what} ${JSON.stringify(id)}: contains a control character`);
  return id;
}

export function checkEvents(events: unknown, where: string, limits: Limits): string[] {
  if (!Array.isArray(events)) throw new ProtocolError(`${where}: events must be an array`);
  if (events.length > limits.maxEventsPerNode)
    throw new ProtocolError(`${where}: ${events.length} events exceeds the limit of ${limits.maxEventsPerNode} events per node`);
  const seen = new Set<string>();
  for (const e of events) {
    if (typeof e !== "string" || !EVENT_RE.test(e))
      throw new ProtocolError(`${where}: event name ${JSON.stringify(e)} does not match [a-z][a-z0-9-]{0,31}`);
    if (seen.has(e)) throw new ProtocolError(`${where}: event ${JSON.stringify(e)} listed twice`);
    seen.add(e);
  }
  return events as string[];
}

/** Facts about a parsed subtree that tree-level checks need. */
export interface SubtreeInfo {
  ids: string[];
  /** Depth of the subtree (a leaf is 1). */
  height: number;
}

/**
 * Parses and validates one subtree. `depth` is the depth its root will have (1 for a tree's
 * root); ids must be unique inside the subtree. Returns a fresh normalized node.
 */
export function parseNode(
  json: unknown,
  limits: Limits = DEFAULT_LIMITS,
  depth = 1,
  info: SubtreeInfo = { ids: [], height: 0 },
  seen: Set<string> = new Set(),
): UINode {
  if (!isObject(json)) throw new ProtocolError(`a node must be an object, got ${describe(json)}`);
  const id = checkId(json.id, "node id");
  const where = `node ${JSON.stringify(id)}`;
  if (seen.has(id)) throw new ProtocolError(`${where}: id is not unique in the tree`);
  seen.add(id);
  info.ids.push(id);
  if (info.ids.length > limits.maxNodes)
    throw new ProtocolError(`${where}: more than ${limits.maxNodes} nodes (the limit of nodes in a tree)`);
  if (depth > limits.maxDepth)
    throw new ProtocolError(`${where}: depth ${depth} exceeds the limit of ${limits.maxDepth}`);
  for (const k of Object.keys(json))
    if (!NODE_FIELDS.has(k)) throw new ProtocolError(`${where}: unknown field ${JSON.stringify(k)}`);
  const type = json.type;
  if (typeof type !== "string" || !TYPE_RE.test(type))
    throw new ProtocolError(`${where}: type ${JSON.stringify(type)} does not match [a-z][a-z0-9-]{0,63}`);
  let props: Record<string, JsonValue> = EMPTY_PROPS;
  if (json.props !== undefined) {
    if (!isObject(json.props)) throw new ProtocolError(`${where}: props must be an object`);
    props = json.props as Record<string, JsonValue>;
  }
  const events = json.events === undefined ? EMPTY_EVENTS : checkEvents(json.events, where, limits);
  let children: UINode[] = EMPTY_CHILDREN;
  if (json.children !== undefined) {
    if (!Array.isArray(json.children)) throw new ProtocolError(`${where}: children must be an array`);
    if (json.children.length > 0) {
      children = new Array(json.children.length);
      for (let i = 0; i < json.children.length; i++)
        children[i] = parseNode(json.children[i], limits, depth + 1, info, seen);
    }
  }
  if (depth > info.height) info.height = depth;
  return { id, type, props, events, children };
}

const EMPTY_PROPS: Record<string, JsonValue> = Object.freeze({}) as Record<string, JsonValue>;
const EMPTY_EVENTS: string[] = Object.freeze([]) as unknown as string[];
const EMPTY_CHILDREN: UINode[] = Object.freeze([]) as unknown as UINode[];

/** A whole tree (a snapshot's): every bound of section 1. */
export function parseTree(json: unknown, limits: Limits = DEFAULT_LIMITS): UINode {
  return parseNode(json, limits, 1);
}

function parseIndex(x: unknown, where: string): number {
  if (!isCount(x)) throw new ProtocolError(`${where}: index must be a non-negative integer`);
  return x;
}

const OP_FIELDS: Record<string, string[]> = {
  props: ["id", "set", "unset"],
  events: ["id", "events"],
  insert: ["parent", "index", "node"],
  remove: ["id"],
  move: ["id", "parent", "index"],
  replace: ["id", "node"],
};

/** One operation, its shape only (whether it applies is decided against the tree). */
export function parseOp(json: unknown, i: number, limits: Limits = DEFAULT_LIMITS): PatchOp {
  const where = `operation ${i}`;
  if (!isObject(json)) throw new ProtocolError(`${where}: must be an object`);
  // "op" names the operation (as the C++ model's to_json writes it).
  const kindKey = "op";
  const kind = json[kindKey];
  if (typeof kind !== "string" || !(kind in OP_FIELDS))
    throw new ProtocolError(`${where}: unknown operation ${JSON.stringify(kind)}`);
  const allowed = OP_FIELDS[kind];
  for (const k of Object.keys(json))
    if (k !== kindKey && !allowed.includes(k))
      throw new ProtocolError(`${where} (${kind}): unknown field ${JSON.stringify(k)}`);
  const w = `${where} (${kind})`;
  try {
    switch (kind) {
      case "props": {
        const id = checkId(json.id);
        let set: Record<string, JsonValue> = {};
        if (json.set !== undefined) {
          if (!isObject(json.set)) throw new ProtocolError(`set must be an object`);
          set = json.set as Record<string, JsonValue>;
        }
        let unset: string[] = [];
        if (json.unset !== undefined) {
          if (!Array.isArray(json.unset) || !json.unset.every((k) => typeof k === "string"))
            throw new ProtocolError(`unset must be an array of strings`);
          unset = json.unset as string[];
        }
        return { op: "props", id, set, unset };
      }
      case "events":
        return { op: "events", id: checkId(json.id), events: checkEvents(json.events, `node ${JSON.stringify(json.id)}`, limits) };
      case "insert":
        return { op: "insert", parent: checkId(json.parent, "parent"), index: parseIndex(json.index, "insert"), node: parseNode(json.node, limits) };
      case "remove":
        return { op: "remove", id: checkId(json.id) };
      case "move":
        return { op: "move", id: checkId(json.id), parent: checkId(json.parent, "parent"), index: parseIndex(json.index, "move") };
      case "replace":
        return { op: "replace", id: checkId(json.id), node: parseNode(json.node, limits) };
    }
  } catch (e) {
    if (e instanceof ProtocolError) throw new ProtocolError(`${w}: ${e.message}`);
    throw e;
  }
  throw new ProtocolError(`${where}: unknown operation`);
}

function parseSeq(x: unknown, field: string): number {
  if (!isCount(x)) throw new ProtocolError(`${field} must be a non-negative integer`);
  return x;
}

function parseExtension(x: unknown): string {
  if (typeof x !== "string" || x.length === 0) throw new ProtocolError(`extension must be a non-empty string`);
  return x;
}

function parseTime(x: unknown): number {
  if (typeof x !== "number" || !Number.isFinite(x)) throw new ProtocolError(`t must be a finite number`);
  return x;
}

function optString(m: Record<string, unknown>, k: string): string | undefined {
  const x = m[k];
  if (x === undefined) return undefined;
  if (typeof x !== "string") throw new ProtocolError(`${k} must be a string`);
  return x;
}

function parseEventsDone(x: unknown): number[] | undefined {
  if (x === undefined) return undefined;
  if (!Array.isArray(x) || !x.every(isCount)) throw new ProtocolError(`events_done must be an array of non-negative integers`);
  return x as number[];
}

/** A parsed JSON value as a gateway message. Throws ProtocolError. */
export function parseMessageValue(m: Record<string, unknown>, limits: Limits = DEFAULT_LIMITS): ServerMsg {
  switch (m.kind) {
    case "hello": {
      const gateway = m.gateway;
      if (typeof gateway !== "string" || gateway.length === 0) throw new ProtocolError(`hello: gateway must be a non-empty string`);
      return { v: 1, kind: "hello", gateway, bus: optString(m, "bus") };
    }
    case "state": {
      const extension = parseExtension(m.extension);
      if (typeof m.state !== "string" || m.state.length === 0) throw new ProtocolError(`state: state must be a non-empty string`);
      let instance: number | undefined;
      if (m.instance !== undefined) instance = parseSeq(m.instance, "instance");
      return { v: 1, kind: "state", extension, state: m.state, reason: optString(m, "reason"), instance };
    }
    case "snapshot": {
      const extension = parseExtension(m.extension);
      const seq = parseSeq(m.seq, "seq");
      const t = parseTime(m.t);
      const tree = parseTree(m.tree, limits);
      const msg: SnapshotMsg = { v: 1, kind: "snapshot", extension, seq, t, tree };
      const done = parseEventsDone(m.events_done);
      if (done) msg.events_done = done;
      return msg;
    }
    case "patch": {
      const extension = parseExtension(m.extension);
      const seq = parseSeq(m.seq, "seq");
      const base = parseSeq(m.base, "base");
      if (base !== seq - 1) throw new ProtocolError(`patch: base ${base} is not seq - 1 (seq ${seq})`);
      const t = parseTime(m.t);
      if (!Array.isArray(m.ops)) throw new ProtocolError(`patch: ops must be an array`);
      const ops = m.ops.map((o, i) => parseOp(o, i, limits));
      const events_done = parseEventsDone(m.events_done);
      const msg: PatchMsg = { v: 1, kind: "patch", extension, seq, base, t, ops, events_done };
      return msg;
    }
    case "gone":
      return { v: 1, kind: "gone", extension: parseExtension(m.extension) };
    case "ack": {
      const seq = parseSeq(m.seq, "seq");
      if (typeof m.ok !== "boolean") throw new ProtocolError(`ack: ok must be a boolean`);
      const msg: AckMsg = { v: 1, kind: "ack", seq, ok: m.ok };
      if (m.tree_seq !== undefined && m.tree_seq !== null) msg.tree_seq = parseSeq(m.tree_seq, "tree_seq");
      const error = optString(m, "error");
      if (error !== undefined) msg.error = error;
      return msg;
    }
    case "heartbeat":
      return { v: 1, kind: "heartbeat" };
    case "error":
      return { v: 1, kind: "error", message: optString(m, "message") ?? "" };
    default:
      throw new ProtocolError(`unknown message kind ${JSON.stringify(m.kind)}`);
  }
}

/** One WebSocket text frame from the gateway: size, JSON, version, then the message. */
export function parseMessage(text: string, limits: Limits = DEFAULT_LIMITS): ParseResult {
  if (!withinBytes(text, limits.maxMessageBytes)) {
    // Look for the extension only to resync it; a frame this large is refused either way.
    const m = /"extension"\s*:\s*"([^"\\]{1,128})"/.exec(text.slice(0, 4096));
    return {
      ok: false,
      versionMismatch: false,
      reason: `message of ${utf8Length(text)} bytes exceeds the limit of ${limits.maxMessageBytes} bytes`,
      extension: m?.[1],
    };
  }
  const nesting = nestingOver(text, limits.maxNesting);
  if (nesting !== null) {
    const m = /"extension"\s*:\s*"([^"\\]{1,128})"/.exec(text.slice(0, 4096));
    return {
      ok: false,
      versionMismatch: false,
      reason: `nesting of ${nesting} arrays and objects exceeds the limit of ${limits.maxNesting}`,
      extension: m?.[1],
    };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { ok: false, versionMismatch: false, reason: `not JSON: ${(e as Error).message}` };
  }
  if (!isObject(value)) return { ok: false, versionMismatch: false, reason: `a message must be a JSON object` };
  if (value.v !== PROTOCOL_VERSION)
    return { ok: false, versionMismatch: true, reason: `protocol version ${JSON.stringify(value.v)}, this app speaks ${PROTOCOL_VERSION}` };
  try {
    return { ok: true, msg: parseMessageValue(value, limits) };
  } catch (e) {
    if (!(e instanceof ProtocolError)) throw e;
    const ext = typeof value.extension === "string" && value.extension.length > 0 ? value.extension : undefined;
    const kind = typeof value.kind === "string" ? value.kind : undefined;
    return { ok: false, versionMismatch: false, reason: `${String(value.kind)}: ${e.message}`, extension: ext, kind };
  }
}
