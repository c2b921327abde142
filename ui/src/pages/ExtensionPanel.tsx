import { useMemo } from "react";
import { useAppState, useEngine } from "@/state/hooks";
import { stateTone } from "@/state/lifecycle";
import { RenderContext, type Registry, type RenderContextValue } from "@/render/context";
import { NodeView } from "@/render/NodeView";
import { ErrorBoundary } from "@/render/ErrorBoundary";
import { defaultReadsChildren, defaultRegistry } from "@/render/components";
import { cn } from "@/lib/utils";

/** One extension's UI: its tree through the registry, with a banner while it is not HEALTHY. */
export function ExtensionPanel({
  extension,
  registry = defaultRegistry,
  readsChildren = defaultReadsChildren,
}: {
  extension: string;
  registry?: Registry;
  readsChildren?: ReadonlySet<string>;
}) {
  const engine = useEngine();
  const view = useAppState((s) => s.extensions[extension]);
  const nodes = view?.nodes;
  const ctx = useMemo<RenderContextValue | null>(
    () =>
      nodes
        ? { extension, nodes, registry, readsChildren, sendEvent: (ext, node, event, payload) => engine.sendEvent(ext, node, event, payload) }
        : null,
    [extension, nodes, registry, readsChildren, engine],
  );
  if (!view)
    return (
      <section data-extension={extension} data-state="GONE" className="rounded-xl border border-dashed p-8 text-center text-sm text-muted-foreground">
        No extension <code className="font-mono">{extension}</code> on this bus (it may have been removed).
      </section>
    );
  const state = view.state ?? "UNKNOWN";
  const down = view.state !== null && view.state !== "HEALTHY";
  const tone = stateTone(view.state);
  return (
    <section data-extension={extension} data-state={state} className="flex flex-col gap-4">
      {down ? (
        <div
          role="status"
          data-banner={state}
          className={cn(
            "flex flex-wrap items-center gap-x-3 gap-y-1 rounded-lg border px-4 py-2.5 text-sm",
            tone === "error" ? "border-destructive/40 bg-destructive/10 text-destructive" : "border-warning/40 bg-warning/10 text-warning",
          )}
        >
          <span className="font-semibold">{state}</span>
          <span className="text-foreground/80">
            {view.tree ? "The extension is not healthy; showing its last known UI." : "The extension is not healthy."}
            {view.reason ? ` ${view.reason}` : ""}
          </span>
        </div>
      ) : null}
      {view.refused ? (
        <div data-refused="" className="rounded-md border border-warning/40 bg-warning/10 px-3 py-2 text-xs text-warning">
          A frame was refused ({view.refused}); asked the gateway for a fresh snapshot.
        </div>
      ) : null}
      <div className={cn("transition-opacity", down && view.tree && "pointer-events-none opacity-60 grayscale-[40%]")} aria-disabled={down || undefined}>
        {view.tree && ctx ? (
          <ErrorBoundary label={`Extension ${extension}`} resetKey={view.tree}>
            <RenderContext.Provider value={ctx}>
              <NodeView key={view.tree.id} id={view.tree.id} />
            </RenderContext.Provider>
          </ErrorBoundary>
        ) : (
          <div className="rounded-xl border border-dashed p-8 text-center text-sm text-muted-foreground">
            {extension} has not published a UI{view.state === null || view.state === "HEALTHY" ? " yet" : ""}.
          </div>
        )}
      </div>
    </section>
  );
}
