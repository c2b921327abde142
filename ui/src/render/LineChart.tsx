// A dependency-free line chart drawn on a canvas: redrawing two 300-point series every frame
// costs well under a millisecond (no DOM per point, no SVG layout or paint invalidation);
// the legend and the axis labels are plain HTML.

import { memo, useEffect, useLayoutEffect, useMemo, useRef, useState } from "react";
import type { JsonValue } from "../protocol/types";

const COLOR_VARS = ["--chart-1", "--chart-2", "--chart-3", "--chart-4", "--chart-5"];

export interface Series {
  name: string;
  points: number[];
}

export function readSeries(x: JsonValue | undefined): Series[] {
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

/** The y range: min/max props when given, else the data's (from 0 when that is close), padded. */
export function yRange(series: Series[], min: JsonValue | undefined, max: JsonValue | undefined) {
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
    lo = typeof min === "number" ? min : 0;
    hi = typeof max === "number" ? max : lo + 1;
    return { lo, hi: hi > lo ? hi : lo + 1, n };
  }
  if (typeof min === "number") lo = min;
  else if (lo > 0 && lo < hi * 0.25) lo = 0;
  if (typeof max === "number") hi = max;
  else if (hi <= lo) hi = lo + 1;
  else hi = hi + (hi - lo) * 0.05;
  if (hi <= lo) hi = lo + 1;
  return { lo, hi, n };
}

function fmt(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e6) return (v / 1e6).toFixed(a >= 1e7 ? 0 : 1) + "M";
  if (a >= 1e4) return (v / 1e3).toFixed(a >= 1e5 ? 0 : 1) + "k";
  if (Number.isInteger(v)) return String(v);
  return v.toFixed(a < 10 ? 2 : 1);
}

function chartColors(el: Element): string[] {
  const cs = getComputedStyle(el);
  return COLOR_VARS.map((v, i) => cs.getPropertyValue(v).trim() || ["#6366f1", "#10b981", "#f59e0b", "#ec4899", "#06b6d4"][i]);
}

function draw(canvas: HTMLCanvasElement, width: number, height: number, series: Series[], lo: number, hi: number, n: number, colors: string[], grid: string) {
  const dpr = window.devicePixelRatio || 1;
  const w = Math.round(width * dpr);
  const h = Math.round(height * dpr);
  if (canvas.width !== w) canvas.width = w;
  if (canvas.height !== h) canvas.height = h;
  const ctx = canvas.getContext("2d");
  if (!ctx) return;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, width, height);
  const pad = 2; // room for the stroke at the edges
  const plotH = height - 2 * pad;
  ctx.lineWidth = 1;
  ctx.strokeStyle = grid;
  ctx.beginPath();
  for (let k = 0; k <= 4; k++) {
    const y = Math.round(pad + (plotH * k) / 4) + 0.5;
    ctx.moveTo(0, y);
    ctx.lineTo(width, y);
  }
  ctx.stroke();
  const dx = n > 1 ? width / (n - 1) : 0;
  const span = hi - lo;
  ctx.lineWidth = 1.75;
  ctx.lineJoin = "round";
  series.forEach((s, i) => {
    ctx.strokeStyle = colors[i % colors.length];
    ctx.beginPath();
    let pen = false;
    for (let j = 0; j < s.points.length; j++) {
      const v = s.points[j];
      if (Number.isNaN(v)) {
        pen = false;
        continue;
      }
      const y = pad + plotH - ((Math.min(hi, Math.max(lo, v)) - lo) / span) * plotH;
      const x = j * dx;
      if (pen) ctx.lineTo(x, y);
      else ctx.moveTo(x, y);
      pen = true;
    }
    ctx.stroke();
  });
}

export const LineChart = memo(function LineChart(props: {
  series: JsonValue | undefined;
  min: JsonValue | undefined;
  max: JsonValue | undefined;
  unit: string;
  height: number;
}) {
  const series = useMemo(() => readSeries(props.series), [props.series]);
  const { lo, hi, n } = useMemo(() => yRange(series, props.min, props.max), [series, props.min, props.max]);
  const height = Math.min(800, Math.max(40, props.height));
  const unit = props.unit;
  const box = useRef<HTMLDivElement>(null);
  const canvas = useRef<HTMLCanvasElement>(null);
  const [width, setWidth] = useState(0);
  const [scheme, setScheme] = useState(0);

  useLayoutEffect(() => {
    const el = box.current;
    if (!el) return;
    setWidth(el.clientWidth);
    if (typeof ResizeObserver === "undefined") return;
    const ro = new ResizeObserver((entries) => setWidth(Math.floor(entries[0].contentRect.width)));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  useEffect(() => {
    const mq = window.matchMedia?.("(prefers-color-scheme: dark)");
    if (!mq) return;
    const on = () => setScheme((x) => x + 1);
    mq.addEventListener("change", on);
    return () => mq.removeEventListener("change", on);
  }, []);
  const colors = useMemo(() => (box.current && width > 0 ? chartColors(box.current) : []), [width, scheme]); // eslint-disable-line react-hooks/exhaustive-deps
  useLayoutEffect(() => {
    if (!canvas.current || width <= 0 || colors.length === 0) return; // not laid out (jsdom)
    const grid = getComputedStyle(canvas.current).getPropertyValue("--border").trim() || "#8884";
    draw(canvas.current, width, height, series, lo, hi, n, colors, grid);
  }, [series, lo, hi, n, width, height, colors]);

  const swatch = (i: number) => `var(${COLOR_VARS[i % COLOR_VARS.length]})`;
  return (
    <div className="flex flex-col gap-1.5" data-series={series.length} data-points={n}>
      <div className="flex flex-wrap items-center gap-x-4 gap-y-1 text-xs">
        {series.map((s, i) => {
          let last: number | undefined;
          for (let j = s.points.length - 1; j >= 0; j--)
            if (!Number.isNaN(s.points[j])) {
              last = s.points[j];
              break;
            }
          return (
            <span key={i} className="inline-flex items-center gap-1.5" data-legend={s.name}>
              <span className="h-2 w-2 rounded-full" style={{ background: swatch(i) }} />
              <span className="text-muted-foreground">{s.name}</span>
              <span className="font-medium tabular-nums">
                {last === undefined ? "—" : fmt(last)}
                {unit && last !== undefined ? ` ${unit}` : ""}
              </span>
            </span>
          );
        })}
      </div>
      <div className="flex gap-2" style={{ height }}>
        <div className="flex w-10 shrink-0 flex-col justify-between text-right text-[10px] tabular-nums text-muted-foreground">
          <span>{fmt(hi)}</span>
          <span>{fmt((hi + lo) / 2)}</span>
          <span>{fmt(lo)}</span>
        </div>
        <div ref={box} className="relative min-w-0 flex-1">
          <canvas
            ref={canvas}
            className="absolute inset-0 h-full w-full"
            role="img"
            aria-label={series.map((s) => s.name).join(", ") || "chart"}
          />
        </div>
      </div>
    </div>
  );
});
