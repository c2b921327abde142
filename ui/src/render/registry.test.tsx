import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { act, fireEvent, screen } from "@testing-library/react";
import { n, patch, snapshot, testEngine, type J } from "../test/helpers";
import { flushWith, renderPanel } from "../test/render";
import { defaultRegistry } from "./components";
import type { NodeComponent } from "./context";

const everything: J = n("root", "stack", { direction: "column", gap: 8 }, [
  n("card", "card", { title: "Card title", description: "Card description" }, [
    n("heading", "heading", { text: "Heading", level: 1 }),
    n("text", "text", { text: "Some text", tone: "muted", mono: true }),
    n("badge", "badge", { text: "OK", tone: "success" }),
    n("stat", "stat", { label: "Rate", value: 12345.678, unit: "msg/s" }),
  ]),
  n("button", "button", { label: "Press", variant: "destructive" }, [], ["click"]),
  n("input", "input", { value: "hello", placeholder: "type" }, [], ["change", "submit"]),
  n("list", "list", { empty: "no items" }, [n("li1", "text", { text: "item one" })]),
  n("empty-list", "list", { empty: "no items" }),
  n("table", "table", { columns: ["Name", "PID"] }, [
    n("row1", "row", {}, [n("cell1", "text", { text: "file-explorer" }), n("cell2", "text", { text: "4242" })], ["click"]),
  ]),
  n("tree", "tree", { items: [{ id: "/", label: "root", children: [{ id: "/a", label: "a.txt", children: [] }] }], selected: "/a" }, [], ["select"]),
  n("tabs", "tabs", { value: "t2" }, [n("t1", "tab", { label: "First" }, [n("t1c", "text", { text: "one" })]), n("t2", "tab", { label: "Second" }, [n("t2c", "text", { text: "two" })])], ["change"]),
  n("progress", "progress", { value: 42, label: "Indexing" }),
  n("log", "log", { lines: ["l1", "l2", "l3", "l4"], max_lines: 2 }),
  n("chart", "line-chart", { series: [{ name: "rate", points: Array.from({ length: 300 }, (_, i) => Math.sin(i / 10)) }], unit: "ms", height: 120 }),
]);

function setup(tree: J = everything) {
  const t = testEngine();
  t.engine.receive(snapshot("fx", 1, tree));
  t.engine.receive(JSON.stringify({ v: 1, kind: "state", extension: "fx", state: "HEALTHY" }));
  t.frame();
  const view = renderPanel(t.engine, "fx");
  return { ...t, view };
}

const el = (id: string) => document.querySelector(`[data-node-id="${id}"]`) as HTMLElement | null;

describe("the registry", () => {
  it("has a component for every type of section 5", () => {
    expect([...defaultRegistry.keys()].sort()).toEqual(
      ["badge", "button", "card", "heading", "input", "line-chart", "list", "log", "progress", "row", "stack", "stat", "table", "tab", "tabs", "text", "tree"].sort(),
    );
  });

  it("renders every type, each element carrying data-node-id and data-type", () => {
    setup();
    const walk = (j: J): J[] => [j, ...(j.children ?? []).flatMap(walk)];
    for (const node of walk(everything)) {
      if (node.id === "t1" || node.id === "t1c") continue; // the inactive tab (Radix renders only the active tab's content)
      const e = el(node.id);
      expect(e, node.id).not.toBeNull();
      expect(e!.getAttribute("data-type")).toBe(node.type);
    }
    expect(document.querySelector('[data-extension="fx"]')!.getAttribute("data-state")).toBe("HEALTHY");
    expect(el("heading")!.tagName).toBe("H1");
    expect(el("card")!.textContent).toContain("Card title");
    expect(el("stat")!.textContent).toContain("12,345.7");
    expect(el("stat")!.textContent).toContain("msg/s");
    expect((el("input") as HTMLInputElement).value).toBe("hello");
    expect(el("empty-list")!.textContent).toBe("no items");
    expect(el("table")!.querySelectorAll("th")).toHaveLength(2);
    expect(el("row1")!.tagName).toBe("TR");
    expect(el("row1")!.querySelectorAll("td")).toHaveLength(2);
    expect(el("tree")!.querySelector('[aria-selected="true"]')!.textContent).toContain("a.txt");
    expect(screen.getByText("two")).toBeTruthy(); // tabs: value t2 selected
    expect(el("progress")!.textContent).toContain("42%");
    expect(el("log")!.textContent).toBe("l3l4"); // max_lines 2
    const chart = el("chart")!;
    expect(chart.querySelector("canvas")).not.toBeNull();
    expect(chart.querySelector("[data-points]")!.getAttribute("data-points")).toBe("300");
    expect(chart.querySelector('[data-legend="rate"]')!.textContent).toMatch(/rate.*ms/);
  });

  it("an unknown type renders a placeholder naming it, with its children", () => {
    setup(n("root", "stack", {}, [n("weird", "fancy-widget", {}, [n("inside", "text", { text: "still here" })])]));
    const box = el("weird")!;
    expect(box.getAttribute("data-type")).toBe("fancy-widget");
    expect(box.textContent).toContain('Unknown component type "fancy-widget"');
    expect(box.querySelector('[data-node-id="inside"]')!.textContent).toBe("still here");
  });

  it("a component that throws takes down its panel only, with the error shown", () => {
    const t = testEngine();
    t.engine.receive(snapshot("fx", 1, n("root", "stack", {}, [n("boom", "text")])));
    t.frame();
    const Throws: NodeComponent = () => {
      throw new Error("kaboom");
    };
    const registry = new Map(defaultRegistry);
    registry.set("text", Throws);
    const spy = vi.spyOn(console, "error").mockImplementation(() => {});
    const quiet = (e: ErrorEvent) => e.preventDefault(); // jsdom reports the render error too
    window.addEventListener("error", quiet);
    renderPanel(t.engine, "fx", registry);
    window.removeEventListener("error", quiet);
    expect(screen.getByRole("alert").textContent).toContain("kaboom");
    expect(document.querySelector('[data-extension="fx"]')).not.toBeNull();
    spy.mockRestore();
  });
});

describe("events", () => {
  it("a button sends click with the protocol's shape; a node that does not list it sends nothing", () => {
    const { sent, engine } = setup(
      n("root", "stack", {}, [n("yes", "button", { label: "Yes" }, [], ["click"]), n("no", "button", { label: "No" })]),
    );
    fireEvent.click(el("yes")!);
    fireEvent.click(el("no")!);
    fireEvent.click(el("yes")!);
    expect(sent).toEqual([
      { v: 1, kind: "event", extension: "fx", node: "yes", event: "click", payload: {}, seq: 1 },
      { v: 1, kind: "event", extension: "fx", node: "yes", event: "click", payload: {}, seq: 2 },
    ]);
    expect(engine.probe.events.map((e) => e.seq)).toEqual([1, 2]);
  });

  it("row click, tree select and tabs change send their payloads", () => {
    const { sent } = setup();
    fireEvent.click(el("row1")!);
    fireEvent.click(el("tree")!.querySelector('[data-item-id="/"]')!);
    const first = document.querySelector('[data-tab-id="t1"]')!;
    fireEvent.mouseDown(first, { button: 0 }); // Radix tabs activate on mousedown
    expect(sent.map((m) => m.kind === "event" && [m.node, m.event, m.payload])).toEqual([
      ["row1", "click", {}],
      ["tree", "select", { id: "/" }],
      ["tabs", "change", { value: "t1" }],
    ]);
  });

  describe("input", () => {
    beforeEach(() => vi.useFakeTimers());
    afterEach(() => vi.useRealTimers());

    it("debounce_ms: one change after the quiet period; Enter sends the pending change, then submit", () => {
      const { sent } = setup(n("root", "stack", {}, [n("q", "input", { value: "", debounce_ms: 200 }, [], ["change", "submit"])]));
      const input = el("q") as HTMLInputElement;
      fireEvent.change(input, { target: { value: "a" } });
      fireEvent.change(input, { target: { value: "ab" } });
      act(() => vi.advanceTimersByTime(150));
      expect(sent).toHaveLength(0);
      expect(input.value).toBe("ab"); // controlled locally
      act(() => vi.advanceTimersByTime(60));
      expect(sent).toEqual([{ v: 1, kind: "event", extension: "fx", node: "q", event: "change", payload: { value: "ab" }, seq: 1 }]);
      fireEvent.change(input, { target: { value: "abc" } });
      fireEvent.keyDown(input, { key: "Enter" });
      expect(sent.slice(1)).toEqual([
        { v: 1, kind: "event", extension: "fx", node: "q", event: "change", payload: { value: "abc" }, seq: 2 },
        { v: 1, kind: "event", extension: "fx", node: "q", event: "submit", payload: { value: "abc" }, seq: 3 },
      ]);
      act(() => vi.advanceTimersByTime(1000));
      expect(sent).toHaveLength(3);
    });

    it("without debounce every edit is sent; the extension's own new value replaces the text, echoes of ours do not", () => {
      const { sent, engine, frame } = setup(n("root", "stack", {}, [n("q", "input", { value: "" }, [], ["change"])]));
      const input = el("q") as HTMLInputElement;
      fireEvent.change(input, { target: { value: "n" } });
      fireEvent.change(input, { target: { value: "ne" } });
      expect(sent).toHaveLength(2);
      // the echo of "n" arrives while the user already typed "ne": the field keeps "ne"
      engine.receive(patch("fx", 2, [{ op: "props", id: "q", set: { value: "n" } }]));
      flushWith(frame);
      expect(input.value).toBe("ne");
      // the extension clears the field (a value we never sent): taken
      engine.receive(patch("fx", 3, [{ op: "props", id: "q", set: { value: "" } }]));
      flushWith(frame);
      expect(input.value).toBe("");
    });
  });
});
