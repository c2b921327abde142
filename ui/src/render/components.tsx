// The component registry of docs/ui-protocol.md section 5: node type -> React component.
// Every component puts nodeAttrs(node) (data-node-id, data-type) on its root element.

import { useEffect, useLayoutEffect, useRef, useState, type ReactNode } from "react";
import type { JsonValue } from "../protocol/types";
import { cn } from "@/lib/utils";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Input } from "@/components/ui/input";
import { Progress } from "@/components/ui/progress";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@/components/ui/table";
import { Tabs, TabsContent, TabsList, TabsTrigger } from "@/components/ui/tabs";
import { LineChart } from "./LineChart";
import { NodeView } from "./NodeView";
import { bool, nodeAttrs, num, str, type NodeComponent, type NodeProps } from "./context";

export function StackNode({ node, children }: NodeProps) {
  const row = node.props.direction === "row";
  const gap = num(node.props.gap, 12);
  return (
    <div {...nodeAttrs(node)} className={cn("flex min-w-0", row ? "sym-row flex-row flex-wrap items-stretch" : "flex-col")} style={{ gap }}>
      {children}
    </div>
  );
}

export function CardNode({ node, children }: NodeProps) {
  const title = str(node.props.title);
  const description = str(node.props.description);
  return (
    <Card {...nodeAttrs(node)}>
      {title || description ? (
        <CardHeader>
          {title ? <CardTitle>{title}</CardTitle> : null}
          {description ? <CardDescription>{description}</CardDescription> : null}
        </CardHeader>
      ) : null}
      {children ? <CardContent className={cn("flex flex-col gap-3", !(title || description) && "pt-4")}>{children}</CardContent> : null}
    </Card>
  );
}

export function HeadingNode({ node, children }: NodeProps) {
  const level = Math.min(3, Math.max(1, Math.round(num(node.props.level, 2))));
  const Tag = (["h1", "h2", "h3"] as const)[level - 1];
  const size = ["text-2xl font-bold", "text-xl font-semibold", "text-base font-semibold"][level - 1];
  return (
    <Tag {...nodeAttrs(node)} className={cn("tracking-tight", size)}>
      {str(node.props.text)}
      {children}
    </Tag>
  );
}

const TEXT_TONES: Record<string, string> = {
  muted: "text-muted-foreground",
  error: "text-destructive",
  success: "text-success",
};

export function TextNode({ node, children }: NodeProps) {
  const tone = TEXT_TONES[str(node.props.tone)] ?? "";
  return (
    <p {...nodeAttrs(node)} className={cn("text-sm leading-relaxed", tone, bool(node.props.mono) && "font-mono text-[13px]")}>
      {str(node.props.text)}
      {children}
    </p>
  );
}

const BADGE_TONES = new Set(["default", "success", "warning", "error"]);

export function BadgeNode({ node }: NodeProps) {
  const t = str(node.props.tone, "default");
  const tone = (BADGE_TONES.has(t) ? t : "default") as "default" | "success" | "warning" | "error";
  return (
    <span {...nodeAttrs(node)} className="inline-flex">
      <Badge tone={tone}>{str(node.props.text)}</Badge>
    </span>
  );
}

function formatValue(v: JsonValue | undefined): string {
  if (typeof v === "number") {
    if (!Number.isFinite(v)) return String(v);
    if (Number.isInteger(v)) return v.toLocaleString("en-US");
    return v.toLocaleString("en-US", { maximumFractionDigits: Math.abs(v) < 10 ? 2 : 1 });
  }
  return str(v, "—");
}

export function StatNode({ node }: NodeProps) {
  const unit = str(node.props.unit);
  return (
    <div {...nodeAttrs(node)} className="rounded-lg border bg-card px-4 py-3">
      <div className="text-xs font-medium uppercase tracking-wide text-muted-foreground">{str(node.props.label)}</div>
      <div className="mt-1 flex items-baseline gap-1">
        <span data-value="" className="text-2xl font-semibold tabular-nums">
          {formatValue(node.props.value)}
        </span>
        {unit ? <span className="text-sm text-muted-foreground">{unit}</span> : null}
      </div>
    </div>
  );
}

const BUTTON_VARIANTS = new Set(["default", "secondary", "destructive"]);

export function ButtonNode({ node, emit }: NodeProps) {
  const v = str(node.props.variant, "default");
  const variant = (BUTTON_VARIANTS.has(v) ? v : "default") as "default" | "secondary" | "destructive";
  return (
    <Button {...nodeAttrs(node)} variant={variant} disabled={bool(node.props.disabled)} className="w-fit" onClick={() => emit("click", {})}>
      {str(node.props.label)}
    </Button>
  );
}

/** Controlled locally: typing updates the field at once; `change` is sent after debounce_ms of
 * quiet (at once when 0); Enter sends any pending change, then `submit`. A new `value` from the
 * extension replaces the field's text unless the user has an unsent edit, or it is the echo of a
 * value this field sent (which would otherwise rewind what the user typed since). */
export function InputNode({ node, emit }: NodeProps) {
  const serverValue = str(node.props.value);
  const [value, setValue] = useState(serverValue);
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const pending = useRef<string | null>(null);
  const sent = useRef<string[]>([]);
  const debounce = Math.max(0, num(node.props.debounce_ms, 0));

  useEffect(() => {
    if (pending.current !== null) return;
    const i = sent.current.lastIndexOf(serverValue);
    if (i >= 0) {
      // Our own edit coming back: the field already shows it or something newer.
      sent.current = sent.current.slice(i + 1);
      return;
    }
    sent.current = [];
    setValue(serverValue);
  }, [serverValue]);
  useEffect(
    () => () => {
      if (timer.current) clearTimeout(timer.current);
    },
    [],
  );

  const flush = () => {
    if (timer.current) clearTimeout(timer.current);
    timer.current = null;
    const v = pending.current;
    pending.current = null;
    if (v !== null && emit("change", { value: v })) {
      sent.current.push(v);
      if (sent.current.length > 32) sent.current.shift();
    }
  };

  return (
    <Input
      {...nodeAttrs(node)}
      value={value}
      placeholder={str(node.props.placeholder)}
      disabled={bool(node.props.disabled)}
      onChange={(e) => {
        const v = e.target.value;
        setValue(v);
        if (!node.events.includes("change")) return;
        pending.current = v;
        if (debounce <= 0) flush();
        else {
          if (timer.current) clearTimeout(timer.current);
          timer.current = setTimeout(flush, debounce);
        }
      }}
      onKeyDown={(e) => {
        if (e.key !== "Enter") return;
        flush();
        emit("submit", { value: (e.target as HTMLInputElement).value });
      }}
    />
  );
}

export function ListNode({ node }: NodeProps) {
  if (node.children.length === 0)
    return (
      <div {...nodeAttrs(node)} className="rounded-md border border-dashed px-3 py-6 text-center text-sm text-muted-foreground">
        {str(node.props.empty, "Nothing here")}
      </div>
    );
  return (
    <ul {...nodeAttrs(node)} className="flex flex-col divide-y rounded-md border">
      {node.children.map((c) => (
        <li key={c.id} className="px-3 py-2">
          <NodeView id={c.id} />
        </li>
      ))}
    </ul>
  );
}

export function TableNode({ node, children }: NodeProps) {
  const columns = Array.isArray(node.props.columns) ? node.props.columns.map((c) => str(c)) : [];
  return (
    <div {...nodeAttrs(node)} className="rounded-md border">
      <Table>
        {columns.length > 0 ? (
          <TableHeader>
            <tr className="border-b">
              {columns.map((c, i) => (
                <TableHead key={i}>{c}</TableHead>
              ))}
            </tr>
          </TableHeader>
        ) : null}
        <TableBody>{children}</TableBody>
      </Table>
      {node.children.length === 0 && str(node.props.empty) ? (
        <div className="px-3 py-4 text-center text-sm text-muted-foreground">{str(node.props.empty)}</div>
      ) : null}
    </div>
  );
}

export function RowNode({ node, emit }: NodeProps) {
  const clickable = node.events.includes("click");
  return (
    <TableRow {...nodeAttrs(node)} className={cn(clickable && "cursor-pointer")} onClick={clickable ? () => emit("click", {}) : undefined}>
      {node.children.map((c) => (
        <TableCell key={c.id}>
          <NodeView id={c.id} />
        </TableCell>
      ))}
    </TableRow>
  );
}

interface TreeItem {
  id: string;
  label: string;
  children: TreeItem[];
}

function treeItems(x: JsonValue | undefined, depth = 0): TreeItem[] {
  if (!Array.isArray(x) || depth > 64) return [];
  const out: TreeItem[] = [];
  for (const it of x) {
    if (typeof it !== "object" || it === null || Array.isArray(it)) continue;
    const id = str(it.id);
    if (!id) continue;
    out.push({ id, label: str(it.label, id), children: treeItems(it.children, depth + 1) });
  }
  return out;
}

export function TreeNode({ node, emit }: NodeProps) {
  const items = treeItems(node.props.items);
  const selected = str(node.props.selected);
  const [collapsed, setCollapsed] = useState<ReadonlySet<string>>(new Set());
  const toggle = (id: string) =>
    setCollapsed((s) => {
      const n = new Set(s);
      if (n.has(id)) n.delete(id);
      else n.add(id);
      return n;
    });
  const renderItems = (list: TreeItem[], depth: number): ReactNode =>
    list.map((it) => {
      const open = !collapsed.has(it.id);
      return (
        <li key={it.id} role="treeitem" aria-expanded={it.children.length ? open : undefined} aria-selected={it.id === selected}>
          <div
            data-item-id={it.id}
            className={cn(
              "flex cursor-pointer items-center gap-1 rounded-md px-2 py-1 text-sm hover:bg-muted",
              it.id === selected && "bg-primary/10 font-medium text-primary",
            )}
            style={{ paddingLeft: 8 + depth * 16 }}
            onClick={() => emit("select", { id: it.id })}
          >
            <span
              className={cn("inline-flex w-4 justify-center text-muted-foreground", !it.children.length && "invisible")}
              onClick={(e) => {
                e.stopPropagation();
                toggle(it.id);
              }}
            >
              {open ? "▾" : "▸"}
            </span>
            <span className="truncate">{it.label}</span>
          </div>
          {it.children.length && open ? <ul role="group">{renderItems(it.children, depth + 1)}</ul> : null}
        </li>
      );
    });
  return (
    <ul {...nodeAttrs(node)} role="tree" className="flex flex-col">
      {renderItems(items, 0)}
    </ul>
  );
}

/** Reads its `tab` children's labels: in readsChildren (re-renders when a tab changes). */
export function TabsNode({ node, emit }: NodeProps) {
  const tabs = node.children;
  const serverValue = str(node.props.value, tabs[0]?.id ?? "");
  const [local, setLocal] = useState<string | null>(null);
  useEffect(() => setLocal(null), [serverValue]);
  const value = local ?? serverValue;
  const shown = useRef(value);
  shown.current = value;
  return (
    <Tabs
      {...nodeAttrs(node)}
      value={value}
      onValueChange={(v) => {
        // Radix may report one choice twice (mousedown, then focus): send a change once.
        if (v === shown.current) return;
        shown.current = v;
        setLocal(v);
        emit("change", { value: v });
      }}
    >
      <TabsList>
        {tabs.map((t) => (
          <TabsTrigger key={t.id} value={t.id} data-tab-id={t.id}>
            {str(t.props.label, t.id)}
          </TabsTrigger>
        ))}
      </TabsList>
      {tabs.map((t) => (
        <TabsContent key={t.id} value={t.id}>
          <NodeView id={t.id} />
        </TabsContent>
      ))}
    </Tabs>
  );
}

export function TabNode({ node, children }: NodeProps) {
  return (
    <div {...nodeAttrs(node)} className="flex flex-col gap-3">
      {children}
    </div>
  );
}

export function ProgressNode({ node }: NodeProps) {
  const value = Math.min(100, Math.max(0, num(node.props.value, 0)));
  const label = str(node.props.label);
  return (
    <div {...nodeAttrs(node)} className="flex flex-col gap-1.5">
      <div className="flex justify-between text-xs text-muted-foreground">
        <span>{label}</span>
        <span className="tabular-nums">{Math.round(value)}%</span>
      </div>
      <Progress value={value} aria-label={label || undefined} />
    </div>
  );
}

/** Shows the last max_lines lines; follows the end while scrolled to the bottom. */
export function LogNode({ node }: NodeProps) {
  const all = Array.isArray(node.props.lines) ? node.props.lines : [];
  const max = Math.max(1, Math.floor(num(node.props.max_lines, 500)));
  const lines = all.length > max ? all.slice(all.length - max) : all;
  const ref = useRef<HTMLDivElement>(null);
  const stick = useRef(true);
  useLayoutEffect(() => {
    const el = ref.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  });
  return (
    <div
      {...nodeAttrs(node)}
      ref={ref}
      onScroll={(e) => {
        const el = e.currentTarget;
        stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 8;
      }}
      className="max-h-72 min-h-16 overflow-auto rounded-md border bg-muted/40 p-2 font-mono text-xs leading-5"
    >
      {lines.map((l, i) => (
        <div key={all.length - lines.length + i} className="whitespace-pre-wrap break-all">
          {str(l)}
        </div>
      ))}
    </div>
  );
}

export function LineChartNode({ node }: NodeProps) {
  return (
    <div {...nodeAttrs(node)}>
      <LineChart series={node.props.series} min={node.props.min} max={node.props.max} unit={str(node.props.unit)} height={num(node.props.height, 160)} />
    </div>
  );
}

export const defaultRegistry: ReadonlyMap<string, NodeComponent> = new Map<string, NodeComponent>([
  ["stack", StackNode],
  ["card", CardNode],
  ["heading", HeadingNode],
  ["text", TextNode],
  ["badge", BadgeNode],
  ["stat", StatNode],
  ["button", ButtonNode],
  ["input", InputNode],
  ["list", ListNode],
  ["table", TableNode],
  ["row", RowNode],
  ["tree", TreeNode],
  ["tabs", TabsNode],
  ["tab", TabNode],
  ["progress", ProgressNode],
  ["log", LogNode],
  ["line-chart", LineChartNode],
]);

/** Types whose component reads its children's props. */
export const defaultReadsChildren: ReadonlySet<string> = new Set(["tabs"]);

