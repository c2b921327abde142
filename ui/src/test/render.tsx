import { act, render } from "@testing-library/react";
import type { ComponentType } from "react";
import { EngineContext } from "../state/hooks";
import type { Engine } from "../state/engine";
import { ExtensionPanel } from "../pages/ExtensionPanel";
import { defaultRegistry, defaultReadsChildren } from "../render/components";
import type { NodeComponent, NodeProps, Registry } from "../render/context";

/** The default registry with every component wrapped to count its renders per node id. */
export function countingRegistry(base: Registry = defaultRegistry) {
  const counts = new Map<string, number>();
  const registry = new Map<string, NodeComponent>();
  for (const [type, Comp] of base) {
    const C = Comp as ComponentType<NodeProps>;
    const Counted = (p: NodeProps) => {
      counts.set(p.node.id, (counts.get(p.node.id) ?? 0) + 1);
      return <C {...p} />;
    };
    registry.set(type, Counted);
  }
  return { registry, counts, count: (id: string) => counts.get(id) ?? 0 };
}

export function renderPanel(engine: Engine, extension: string, registry: Registry = defaultRegistry) {
  return render(
    <EngineContext.Provider value={engine}>
      <ExtensionPanel extension={extension} registry={registry} readsChildren={defaultReadsChildren} />
    </EngineContext.Provider>,
  );
}

/** Runs the engine's pending animation frame inside act(). */
export function flushWith(frame: () => number) {
  let ran = 0;
  act(() => {
    ran = frame();
  });
  return ran;
}
