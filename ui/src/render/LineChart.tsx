// A dependency-free SVG line chart. Cheap enough to redraw every frame: one <path> per series
// built as a string, a viewBox in data units stretched to the box (preserveAspectRatio none,
// non-scaling strokes), so there is no layout measurement and no per-point element.

import { memo, useMemo } from "react";
import type { JsonValue } from "../protocol/types";

const COLORS = ["var(--chart-1)", "var(--chart-2)", "var(--chart-3)", "var(--chart-4)", "var(--chart-5)"];
const VIEW_H = 100;

interface Series {
  name: string;
  points: number[];
}

function readSeries(x: JsonValue | undefined): Series[] {
  if (!Array.isArray(x)) return [];
  const out: Series[] = [];
  for (const s of x) {
    if (typeof s !== "object" || s === null || Array.isArray(s)) continue;
    const pts = Array.isArray(s.points) ? s.points : [];
    const points: number[] = new Array(pts.length);
    for (let i = 0; i < pts.length; i++) {
      const p = pts[i];
      points[i] = typeof p === "number" && Number.isFinite(p) ? p : NaN;
    }
    out.push({ name: typeof s.name === "string" ? s.name : `series ${out.length + 1}`, points });
  }
  return out;
}

function fmt(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e6) return (v / 1e6).toFixed(a >= 1e7 ? 0 : 1) + "M";
  if (a >= 1e4) return (v / 1e3).toFixed(a >= 1e5 ? 0 : 1) + "k";
  if (Number.isInteger(v)) return String(v);
  return v.toFixed(a < 10 ? 2 : 1);
}

/** The path of one series: x = point index, y flipped into [0, VIEW_H]. Gaps (non-numbers)
 * start a new sub-path. */
export function seriesPath(points: readonly number[], lo: number, hi: number): string {
  const span = hi - lo || 1;
  let d = "";
  let pen = false;
  for (let i = 0; i < points.length; i++) {
    const v = points[i];
    if (Number.isNaN(v)) {
      pen = false;
      continue;
    }
    const y = VIEW_H - ((Math.min(hi, Math.max(lo, v)) - lo) / span) * VIEW_H;
    d += (pen ? "L" : "M") + i + "," + (Math.round(y * 100) / 100);
    pen = true;
  }
  return d;
}

export const LineChart = memo(function LineChart(props: {
  series: JsonValue | undefined;
  min: JsonValue | undefined;
  max: JsonValue | undefined;
  unit: string;
  height: number;
}) {
  const series = useMemo(() => readSeries(props.series), [props.series]);
  const { lo, hi, n } = useMemo(() => {
    let lo = Infinity;
    let hi = -Infinity;
    let n = 0;
    for (const s of series) {
      n = Math.max(n, s.points.length);
      for (const v of s.points) {
        if (Number.isNaN(v)) continue;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
    }
    if (lo === Infinity) {
      lo = 0;
      hi = 1;
    }
    if (typeof props.min === "number") lo = props.min;
    else if (lo > 0 && lo < hi * 0.25) lo = 0;
    if (typeof props.max === "number") hi = props.max;
    else if (hi === lo) hi = lo + 1;
    else hi = hi + (hi - lo) * 0.05;
    return { lo, hi, n };
  }, [series, props.min, props.max]);
  const width = Math.max(1, n - 1);
  const height = Math.min(800, Math.max(40, props.height));
  const unit = props.unit;
  return (
    <div className="flex flex-col gap-1.5">
      <div className="flex flex-wrap items-center gap-x-4 gap-y-1 text-xs">
        {series.map((s, i) => {
          let last: number | undefined;
          for (let j = s.points.length - 1; j >= 0; j--)
            if (!Number.isNaN(s.points[j])) {
              last = s.points[j];
              break;
            }
          return (
            <span key={i} className="inline-flex items-center gap-1.5">
              <span className="h-2 w-2 rounded-full" style={{ background: COLORS[i % COLORS.length] }} />
              <span className="text-muted-foreground">{s.name}</span>
              <span className="font-medium tabular-nums">
                {last === undefined ? "—" : fmt(last)}
                {unit && last !== undefined ? ` ${unit}` : ""}
              </span>
            </span>
          );
        })}
      </div>
      <div className="relative flex gap-2" style={{ height }}>
        <div className="flex w-10 shrink-0 flex-col justify-between text-right text-[10px] tabular-nums text-muted-foreground">
          <span>{fmt(hi)}</span>
          <span>{fmt((hi + lo) / 2)}</span>
          <span>{fmt(lo)}</span>
        </div>
        <svg
          className="h-full min-w-0 flex-1 overflow-visible"
          viewBox={`0 0 ${width} ${VIEW_H}`}
          preserveAspectRatio="none"
          role="img"
          aria-label={series.map((s) => s.name).join(", ")}
        >
          {[0, 0.25, 0.5, 0.75, 1].map((f) => (
            <line key={f} x1={0} x2={width} y1={f * VIEW_H} y2={f * VIEW_H} stroke="var(--border)" strokeWidth={1} vectorEffect="non-scaling-stroke" />
          ))}
          {series.map((s, i) => (
            <path
              key={i}
              d={seriesPath(s.points, lo, hi)}
              fill="none"
              stroke={COLORS[i % COLORS.length]}
              strokeWidth={1.75}
              strokeLinejoin="round"
              vectorEffect="non-scaling-stroke"
            />
          ))}
        </svg>
      </div>
    </div>
  );
});
