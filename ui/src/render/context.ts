import { createContext, useContext, type ComponentType, type ReactNode } from "react";
import type { JsonValue, UINode } from "../protocol/types";
import type { NodeSource } from "../state/nodes";

/** What a registry component receives. */
export interface NodeProps {
  node: UINode;
  /** Sends `event` for this node, if the node lists it (section 1: the browser only sends the
   * events a node lists); otherwise does nothing. Returns whether it was sent. */
  emit: (event: string, payload?: JsonValue) => boolean;
  /** The node's children, rendered (keyed by id). */
  children: ReactNode;
}

export type NodeComponent = ComponentType<NodeProps>;
export type Registry = ReadonlyMap<string, NodeComponent>;

export interface RenderContextValue {
  extension: string;
  nodes: NodeSource;
  registry: Registry;
  /** Types whose component reads its children's props (re-rendered when a child changes). */
  readsChildren: ReadonlySet<string>;
  sendEvent: (extension: string, node: string, event: string, payload: JsonValue) => unknown;
}

export const RenderContext = createContext<RenderContextValue | null>(null);

export function useRenderContext(): RenderContextValue {
  const c = useContext(RenderContext);
  if (!c) throw new Error("a node rendered outside an extension panel");
  return c;
}

/** Test hooks every rendered node carries. */
export function nodeAttrs(node: UINode) {
  return { "data-node-id": node.id, "data-type": node.type };
}

// Reading props defensively: props are any JSON.
export function str(x: JsonValue | undefined, fallback = ""): string {
  if (typeof x === "string") return x;
  if (typeof x === "number" || typeof x === "boolean") return String(x);
  return fallback;
}
export function num(x: JsonValue | undefined, fallback: number): number {
  return typeof x === "number" && Number.isFinite(x) ? x : fallback;
}
export function bool(x: JsonValue | undefined): boolean {
  return x === true;
}
