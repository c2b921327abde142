import { memo, useCallback, useRef, useSyncExternalStore } from "react";
import type { JsonValue, UINode } from "../protocol/types";
import { sameOwn } from "../state/nodes";
import { nodeAttrs, useRenderContext, type NodeProps } from "./context";

/** One node, by id: it subscribes to its own node in the extension's tree and re-renders only
 * when that node's own fields change (see sameOwn) — a props patch re-renders that one node, an
 * insert/remove/move re-renders the parent whose child list changed. Components that read their
 * children's props (tabs) are listed in `readsChildren` and re-render when a child changes. */
export const NodeView = memo(function NodeView({ id }: { id: string }) {
  const ctx = useRenderContext();
  const { nodes, registry, extension, sendEvent } = ctx;
  const last = useRef<UINode | undefined>(undefined);
  const subscribe = useCallback((cb: () => void) => nodes.subscribe(id, cb), [nodes, id]);
  const getSnapshot = () => {
    const n = nodes.get(id);
    const prev = last.current;
    if (n && prev && !ctx.readsChildren.has(n.type) && sameOwn(prev, n)) return prev;
    return n;
  };
  const node = useSyncExternalStore(subscribe, getSnapshot);
  last.current = node;
  const emit = useCallback(
    (event: string, payload: JsonValue = {}) => {
      if (!node || !node.events.includes(event)) return false;
      sendEvent(extension, node.id, event, payload);
      return true;
    },
    [node, extension, sendEvent],
  );
  if (!node) return null; // removed by a patch not yet published
  const Comp = registry.get(node.type) ?? UnknownNode;
  return (
    <Comp node={node} emit={emit}>
      {node.children.length > 0 ? <Children nodes={node.children} /> : null}
    </Comp>
  );
});

export function Children({ nodes }: { nodes: readonly UINode[] }) {
  return (
    <>
      {nodes.map((c) => (
        <NodeView key={c.id} id={c.id} />
      ))}
    </>
  );
}

/** A type the registry does not know: a visible placeholder naming it, with the children. */
export function UnknownNode({ node, children }: NodeProps) {
  return (
    <div {...nodeAttrs(node)} data-unknown="" className="rounded-lg border border-dashed border-warning/70 bg-warning/5 p-3">
      <div className="mb-2 text-xs font-medium text-warning">
        Unknown component type <code className="font-mono">{JSON.stringify(node.type)}</code> (node{" "}
        <code className="font-mono">{node.id}</code>)
      </div>
      {children ? <div className="flex flex-col gap-2">{children}</div> : null}
    </div>
  );
}
