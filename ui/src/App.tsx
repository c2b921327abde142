import { useEffect, useLayoutEffect } from "react";
import { useAppState, useEngine } from "@/state/hooks";
import { stateTone } from "@/state/lifecycle";
import { extensionHref, parseRoute, useHash } from "@/state/route";
import type { ConnectionStatus, ExtensionView, Toast } from "@/state/engine";
import { ExtensionPanel } from "@/pages/ExtensionPanel";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { ScrollArea } from "@/components/ui/scroll-area";
import { cn } from "@/lib/utils";

/** Stamps t_rendered of the frames of each flush, in the layout effect of the commit that
 * shows them (section 6). */
function CommitMarker() {
  const engine = useEngine();
  const commit = useAppState((s) => s.commit);
  useLayoutEffect(() => {
    engine.probe.rendered(commit);
  }, [engine, commit]);
  return null;
}

const STATUS_TEXT: Record<ConnectionStatus, string> = {
  connecting: "Connecting",
  connected: "Connected",
  reconnecting: "Reconnecting",
  unauthorized: "Unauthorized",
};

function StatusPill() {
  const status = useAppState((s) => s.status);
  const detail = useAppState((s) => s.statusDetail);
  const dot = status === "connected" ? "bg-success" : status === "unauthorized" ? "bg-destructive" : "bg-warning animate-pulse";
  return (
    <div data-connection={status} title={detail ?? undefined} className="flex items-center gap-2 rounded-full border px-3 py-1 text-xs">
      <span className={cn("h-2 w-2 rounded-full", dot)} />
      <span className="font-medium">{STATUS_TEXT[status]}</span>
      {detail && status !== "connected" ? <span className="hidden max-w-64 truncate text-muted-foreground md:inline">{detail}</span> : null}
    </div>
  );
}

function StateBadge({ state }: { state: string | null }) {
  return (
    <Badge tone={stateTone(state)} data-state-badge={state ?? "UNKNOWN"}>
      {state ?? "…"}
    </Badge>
  );
}

function NavItem({ href, active, label, state, id }: { href: string; active: boolean; label: string; state: string | null; id: string }) {
  return (
    <a
      href={href}
      data-ext-link={id}
      aria-current={active ? "page" : undefined}
      className={cn(
        "flex items-center justify-between gap-2 rounded-md px-2.5 py-1.5 text-sm transition-colors",
        active ? "bg-primary/10 font-medium text-primary" : "text-foreground/80 hover:bg-muted",
      )}
    >
      <span className="truncate">{label}</span>
      <StateBadge state={state} />
    </a>
  );
}

function Sidebar({ route }: { route: ReturnType<typeof parseRoute> }) {
  const extensions = useAppState((s) => s.extensions);
  const gateway = useAppState((s) => s.gateway);
  const bus = useAppState((s) => s.bus);
  const others = Object.values(extensions)
    .filter((e) => e.id !== gateway)
    .sort((a, b) => a.id.localeCompare(b.id));
  const gw: ExtensionView | undefined = gateway ? extensions[gateway] : undefined;
  return (
    <aside className="flex w-64 shrink-0 flex-col border-r bg-sidebar">
      <div className="flex items-center gap-2 px-4 py-4">
        <div className="flex h-8 w-8 items-center justify-center rounded-lg bg-primary text-sm font-bold text-primary-foreground">S</div>
        <div className="min-w-0">
          <div className="font-semibold leading-tight">Symphony</div>
          <div className="truncate text-xs text-muted-foreground" data-bus={bus ?? ""}>
            {bus ? `bus ${bus}` : "no bus yet"}
          </div>
        </div>
      </div>
      <ScrollArea className="min-h-0 flex-1 px-2">
        <nav className="flex flex-col gap-0.5 pb-4">
          <NavItem href="#/" id={gateway ?? ""} active={route.page === "dashboard"} label="Dashboard" state={gw?.state ?? null} />
          <div className="px-2.5 pb-1 pt-4 text-[11px] font-semibold uppercase tracking-wider text-muted-foreground">Extensions</div>
          {others.length === 0 ? <div className="px-2.5 py-1 text-xs text-muted-foreground">None yet</div> : null}
          {others.map((e) => (
            <NavItem key={e.id} id={e.id} href={extensionHref(e.id)} active={route.page === "extension" && route.id === e.id} label={e.id} state={e.state} />
          ))}
        </nav>
      </ScrollArea>
    </aside>
  );
}

function Toasts() {
  const engine = useEngine();
  const toasts = useAppState((s) => s.toasts);
  return (
    <div className="pointer-events-none fixed bottom-4 right-4 z-50 flex w-96 max-w-[calc(100vw-2rem)] flex-col gap-2" aria-live="polite">
      {toasts.map((t) => (
        <ToastItem key={t.id} toast={t} onClose={() => engine.dismissToast(t.id)} />
      ))}
    </div>
  );
}

function ToastItem({ toast, onClose }: { toast: Toast; onClose: () => void }) {
  useEffect(() => {
    const h = setTimeout(onClose, 6000);
    return () => clearTimeout(h);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [toast.id]);
  return (
    <div
      role="alert"
      data-toast={toast.tone}
      className={cn(
        "pointer-events-auto flex items-start gap-3 rounded-lg border bg-card px-4 py-3 text-sm shadow-lg",
        toast.tone === "error" && "border-destructive/50",
      )}
    >
      <span className={cn("mt-1 h-2 w-2 shrink-0 rounded-full", toast.tone === "error" ? "bg-destructive" : "bg-primary")} />
      <span className="min-w-0 flex-1 break-words">{toast.text}</span>
      <Button variant="ghost" size="icon" className="-my-1 h-6 w-6" aria-label="Dismiss" onClick={onClose}>
        ×
      </Button>
    </div>
  );
}

function Unauthorized({ detail }: { detail: string | null }) {
  return (
    <div data-unauthorized="" className="mx-auto mt-16 max-w-lg rounded-xl border border-destructive/40 bg-card p-6 shadow-sm">
      <h2 className="text-lg font-semibold text-destructive">Bad or missing token</h2>
      <p className="mt-2 text-sm text-muted-foreground">
        {detail ?? "The gateway refused the connection."} Open the exact address that <code className="font-mono">symphony up</code> printed,{" "}
        <code className="font-mono">http://127.0.0.1:&lt;port&gt;/?token=&lt;hex&gt;</code>.
      </p>
    </div>
  );
}

export function App() {
  const route = parseRoute(useHash());
  const gateway = useAppState((s) => s.gateway);
  const status = useAppState((s) => s.status);
  const detail = useAppState((s) => s.statusDetail);
  const title = route.page === "dashboard" ? "Dashboard" : route.id;
  useEffect(() => {
    document.title = `${title} · Symphony`;
  }, [title]);
  return (
    <div className="flex h-full bg-background text-foreground">
      <CommitMarker />
      <Sidebar route={route} />
      <main className="flex min-w-0 flex-1 flex-col">
        <header className="flex items-center justify-between gap-4 border-b px-6 py-3">
          <h1 className="truncate text-lg font-semibold tracking-tight" data-page={route.page}>
            {title}
          </h1>
          <StatusPill />
        </header>
        <div className="min-h-0 flex-1 overflow-auto px-6 py-5">
          {status === "unauthorized" ? (
            <Unauthorized detail={detail} />
          ) : route.page === "dashboard" ? (
            gateway ? (
              <ExtensionPanel key={gateway} extension={gateway} />
            ) : (
              <div className="mt-16 text-center text-sm text-muted-foreground">Waiting for the gateway…</div>
            )
          ) : (
            <ExtensionPanel key={route.id} extension={route.id} />
          )}
        </div>
      </main>
      <Toasts />
    </div>
  );
}
