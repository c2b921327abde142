import { describe, expect, it } from "vitest";
import { readSeries, yRange } from "./LineChart";

describe("line-chart data", () => {
  it("reads series defensively (non-numbers are gaps)", () => {
    expect(readSeries([{ name: "a", points: [1, "x", null, 2] }, "junk", { points: [3] }])).toEqual([
      { name: "a", points: [1, NaN, NaN, 2] },
      { name: "series 2", points: [3] },
    ]);
    expect(readSeries(undefined)).toEqual([]);
  });

  it("y range: props win, else the data padded, from 0 when close", () => {
    const s = readSeries([{ name: "a", points: [10, 20, 30] }]);
    expect(yRange(s, 0, 100)).toEqual({ lo: 0, hi: 100, n: 3 });
    const r = yRange(s, undefined, undefined);
    expect(r.lo).toBe(10);
    expect(r.hi).toBeCloseTo(31);
    expect(yRange(readSeries([{ name: "a", points: [1, 50] }]), undefined, undefined).lo).toBe(0);
    expect(yRange([], undefined, undefined)).toEqual({ lo: 0, hi: 1, n: 0 });
    expect(yRange(readSeries([{ name: "a", points: [5, 5] }]), undefined, undefined)).toMatchObject({ lo: 5, hi: 6 });
  });
});
