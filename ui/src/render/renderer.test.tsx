import { describe, expect, it } from "vitest";
import { act } from "@testing-library/react";
import { Engine } from "../state/engine";
import { n, patch, snapshot, testEngine } from "../test/helpers";
import { countingRegistry, flushWith, renderPanel } from "../test/render";

const tree = n("root", "stack", {}, [
  n("header", "card", { title: "T" }, [n("h1", "heading", { text: "Hello" }), n("rate", "stat", { label: "rate", value: 0 })]),
  n("list", "list", {}, [n("i1", "text", { text: "one" }), n("i2", "text", { text: "two" }), n("i3", "text", { text: "three" })]),
  n("side", "text", { text: "side" }),
]);
const ALL = ["root", "header", "h1", "rate", "list", "i1", "i2", "i3", "side"];

function setup() {
  const t = testEngine();
  const c = countingRegistry();
  t.engine.receive(snapshot("fx", 1, tree));
  t.frame();
  renderPanel(t.engine, "fx", c.registry);
  const snap = () => Object.fromEntries(ALL.map((id) => [id, c.count(id)]));
  return { ...t, ...c, snap };
}

const q = (id: string) => document.querySelector(`[data-node-id="${id}"]`) as HTMLElement;

describe("the renderer re-renders only what a patch touched", () => {
  it("renders every node once at first", () => {
    const { snap } = setup();
    expect(Object.values(snap())).toEqual(ALL.map(() => 1));
  });

  it("a props patch re-renders that node only (not its ancestors, not its siblings)", () => {
    const { engine, frame, snap } = setup();
    const before = snap();
    engine.receive(patch("fx", 2, [{ op: "props", id: "rate", set: { value: 42 } }]));
    flushWith(frame);
    const after = snap();
    expect(q("rate").textContent).toContain("42");
    const changed = ALL.filter((id) => after[id] !== before[id]);
    expect(changed).toEqual(["rate"]);
    expect(after.rate).toBe(before.rate + 1);
  });

  it("an insert re-renders the parent and the new node; a move the parent; a remove the parent", () => {
    const { engine, frame, snap, count } = setup();
    let before = snap();
    engine.receive(patch("fx", 2, [{ op: "insert", parent: "list", index: 1, node: n("new", "text", { text: "new" }) }]));
    flushWith(frame);
    let after = snap();
    expect(ALL.filter((id) => after[id] !== before[id])).toEqual(["list"]);
    expect(count("new")).toBe(1);
    expect([...q("list").querySelectorAll("[data-node-id]")].map((e) => e.getAttribute("data-node-id"))).toEqual(["i1", "new", "i2", "i3"]);

    before = snap();
    engine.receive(patch("fx", 3, [{ op: "move", id: "i3", parent: "list", index: 0 }]));
    flushWith(frame);
    after = snap();
    expect(ALL.filter((id) => after[id] !== before[id])).toEqual(["list"]);
    expect([...q("list").querySelectorAll("[data-node-id]")].map((e) => e.getAttribute("data-node-id"))).toEqual(["i3", "i1", "new", "i2"]);

    before = snap();
    engine.receive(patch("fx", 4, [{ op: "remove", id: "i1" }]));
    flushWith(frame);
    after = snap();
    expect(ALL.filter((id) => id !== "i1" && after[id] !== before[id])).toEqual(["list"]);
    expect(q("i1")).toBeNull();
  });

  it("moved nodes keep their DOM element (keyed by id)", () => {
    const { engine, frame } = setup();
    const i3 = q("i3");
    engine.receive(patch("fx", 2, [{ op: "move", id: "i3", parent: "list", index: 0 }]));
    flushWith(frame);
    expect(q("i3")).toBe(i3);
  });

  it("a snapshot equal but for one prop re-renders that node only", () => {
    const { engine, frame, snap } = setup();
    const before = snap();
    const t2 = JSON.parse(JSON.stringify(tree));
    t2.children[2].props.text = "changed";
    engine.receive(snapshot("fx", 9, t2));
    flushWith(frame);
    const after = snap();
    expect(ALL.filter((id) => after[id] !== before[id])).toEqual(["side"]);
    expect(q("side").textContent).toBe("changed");
  });
});

describe("coalesced rendering", () => {
  it("1000 patches in a burst render once, at the next animation frame, showing the last", () => {
    const { engine, frame, frames, count } = setup();
    const before = count("rate");
    act(() => {
      for (let i = 0; i < 1000; i++) engine.receive(patch("fx", 2 + i, [{ op: "props", id: "rate", set: { value: i } }]));
    });
    expect(count("rate")).toBe(before); // nothing rendered during the burst
    expect(frames).toHaveLength(1); // one frame requested, not 1000
    flushWith(frame);
    expect(count("rate")).toBe(before + 1);
    expect(q("rate").textContent).toContain("999");
    expect(engine.getState().extensions.fx.seq).toBe(1001);
    expect(engine.probe.frames.filter((f) => f.kind === "patch")).toHaveLength(1000);
  });

  it("with the real scheduler, a burst of 1000 patches costs at most a couple of renders", async () => {
    const engine = new Engine({ send: () => true, log: { warn() {}, error() {} } });
    const c = countingRegistry();
    engine.receive(snapshot("fx", 1, tree));
    await act(async () => {
      await new Promise((r) => setTimeout(r, 50));
    });
    renderPanel(engine, "fx", c.registry);
    const before = c.count("rate");
    await act(async () => {
      for (let i = 0; i < 1000; i++) engine.receive(patch("fx", 2 + i, [{ op: "props", id: "rate", set: { value: i } }]));
      await new Promise((r) => setTimeout(r, 100));
    });
    const renders = c.count("rate") - before;
    expect(renders).toBeGreaterThanOrEqual(1);
    expect(renders).toBeLessThanOrEqual(2);
    expect(q("rate").textContent).toContain("999");
  });
});
