import { describe, expect, it } from "vitest";
import { Tree } from "./tree";
import { parseOp, parseTree, ProtocolError } from "./validate";
import type { UINode } from "./types";
import { n, type J } from "../test/helpers";

function tree(j: J) {
  return Tree.from(parseTree(j));
}
const ops = (...xs: unknown[]) => xs.map((x, i) => parseOp(x, i));
/** The tree as plain JSON (all fields), for comparisons. */
function plain(x: UINode): unknown {
  return { id: x.id, type: x.type, props: x.props, events: [...x.events], children: x.children.map(plain) };
}
const ids = (x: UINode) => x.children.map((c) => c.id);

const base = () =>
  tree(
    n("root", "stack", {}, [
      n("a", "text", { text: "A", tone: "muted" }),
      n("b", "card", { title: "B" }, [n("b1", "text", { text: "b1" }), n("b2", "text", { text: "b2" })]),
      n("c", "button", { label: "C" }, [], ["click"]),
    ]),
  );

describe("patch operations", () => {
  it("props: set replaces whole values, unset removes keys, other keys stay", () => {
    const t = base().apply(ops({ op: "props", id: "a", set: { text: "A2", extra: [1, 2] }, unset: ["tone"] }));
    expect(t.get("a")!.props).toEqual({ text: "A2", extra: [1, 2] });
  });

  it("props: a __proto__ key is data, not the prototype", () => {
    const t = base().apply(ops(JSON.parse('{"op":"props","id":"a","set":{"__proto__":{"polluted":true}}}')));
    const props = t.get("a")!.props as Record<string, unknown>;
    expect(Object.getPrototypeOf(props)).toBe(Object.prototype);
    expect(Object.prototype.hasOwnProperty.call(props, "__proto__")).toBe(true);
    expect((props as { polluted?: boolean }).polluted).toBeUndefined();
  });

  it("events: replaces the list", () => {
    const t = base().apply(ops({ op: "events", id: "c", events: ["click", "focus"] }));
    expect(t.get("c")!.events).toEqual(["click", "focus"]);
  });

  it("insert: at the front, middle and end (index == number of children)", () => {
    let t = base();
    t = t.apply(ops({ op: "insert", parent: "b", index: 0, node: n("x", "text") }));
    t = t.apply(ops({ op: "insert", parent: "b", index: 2, node: n("y", "text") }));
    t = t.apply(ops({ op: "insert", parent: "b", index: 4, node: n("z", "badge", {}, [n("z1", "text")]) }));
    expect(ids(t.get("b")!)).toEqual(["x", "b1", "y", "b2", "z"]);
    expect(t.get("z1")).toBeDefined();
    expect(t.parentOf("z1")).toBe("z");
    expect(t.size).toBe(10);
  });

  it("remove: the node and its subtree leave the index", () => {
    const t = base().apply(ops({ op: "remove", id: "b" }));
    expect(ids(t.root)).toEqual(["a", "c"]);
    expect(t.get("b")).toBeUndefined();
    expect(t.get("b1")).toBeUndefined();
    expect(t.size).toBe(3);
  });

  it("move: within a parent (index counted after the detach) and to another parent", () => {
    let t = base().apply(ops({ op: "move", id: "a", parent: "root", index: 2 }));
    expect(ids(t.root)).toEqual(["b", "c", "a"]);
    t = t.apply(ops({ op: "move", id: "c", parent: "b", index: 1 }));
    expect(ids(t.root)).toEqual(["b", "a"]);
    expect(ids(t.get("b")!)).toEqual(["b1", "c", "b2"]);
    expect(t.parentOf("c")).toBe("b");
  });

  it("replace: a subtree (may reuse its own ids) and the root", () => {
    let t = base().apply(ops({ op: "replace", id: "b", node: n("b", "list", {}, [n("b1", "text"), n("new", "text")]) }));
    expect(t.get("b")!.type).toBe("list");
    expect(t.get("b2")).toBeUndefined();
    expect(t.parentOf("new")).toBe("b");
    t = t.apply(ops({ op: "replace", id: "root", node: n("r2", "card", {}, [n("only", "text")]) }));
    expect(t.root.id).toBe("r2");
    expect(t.get("a")).toBeUndefined();
    expect(t.size).toBe(2);
  });

  it("an empty patch returns the same tree", () => {
    const t = base();
    expect(t.apply([])).toBe(t);
  });

  it("operations apply in order: insert then props on the inserted node", () => {
    const t = base().apply(
      ops(
        { op: "insert", parent: "root", index: 3, node: n("d", "text", { text: "d" }) },
        { op: "props", id: "d", set: { text: "d2" } },
        { op: "move", id: "d", parent: "b", index: 0 },
      ),
    );
    expect(t.get("d")!.props.text).toBe("d2");
    expect(ids(t.get("b")!)).toEqual(["d", "b1", "b2"]);
    expect(t.get("b")!.children[0]).toBe(t.get("d"));
  });
});

describe("structural sharing", () => {
  it("a props patch copies only the path to the root; siblings keep their identity", () => {
    const t0 = base();
    const a0 = t0.get("a");
    const b0 = t0.get("b");
    const b20 = t0.get("b2");
    const t = t0.apply(ops({ op: "props", id: "b1", set: { text: "new" } }));
    expect(t.get("a")).toBe(a0);
    expect(t.get("b2")).toBe(b20);
    expect(t.get("b")).not.toBe(b0);
    expect(t.get("b")!.props).toBe(b0!.props); // props object untouched on the path
    expect(t.root.children[1]).toBe(t.get("b"));
    expect(t.changed).toEqual(expect.arrayContaining(["b1", "b", "root"]));
    expect(t.changed).not.toContain("a");
  });

  it("a snapshot equal in parts reuses the previous tree's nodes", () => {
    const t0 = base();
    const a0 = t0.get("a");
    const b0 = t0.get("b");
    const next = parseTree(
      n("root", "stack", {}, [
        n("a", "text", { text: "A", tone: "muted" }),
        n("b", "card", { title: "B" }, [n("b1", "text", { text: "b1" }), n("b2", "text", { text: "changed" })]),
        n("c", "button", { label: "C" }, [], ["click"]),
      ]),
    );
    const t = Tree.from(next, t0);
    expect(t.get("a")).toBe(a0);
    expect(t.get("b")).not.toBe(b0);
    expect(t.get("b")!.props).toBe(b0!.props);
    expect(t.get("b2")!.props.text).toBe("changed");
  });
});

describe("refusals are all or nothing", () => {
  const cases: Array<[string, unknown[], RegExp]> = [
    ["unknown id (props)", [{ op: "props", id: "nope", set: { x: 1 } }], /unknown node "nope"/],
    ["unknown id (events)", [{ op: "events", id: "nope", events: [] }], /unknown node/],
    ["unknown parent (insert)", [{ op: "insert", parent: "nope", index: 0, node: n("x", "text") }], /unknown node "nope"/],
    ["index past the end (insert)", [{ op: "insert", parent: "b", index: 3, node: n("x", "text") }], /index 3 is out of range/],
    ["duplicate id (insert)", [{ op: "insert", parent: "b", index: 0, node: n("a", "text") }], /"a" is already in the tree/],
    ["duplicate id inside the inserted subtree", [{ op: "insert", parent: "b", index: 0, node: n("x", "stack", {}, [n("c", "text")]) }], /"c" is already in the tree/],
    ["remove the root", [{ op: "remove", id: "root" }], /root/],
    ["remove unknown", [{ op: "remove", id: "zz" }], /unknown node/],
    ["move the root", [{ op: "move", id: "root", parent: "b", index: 0 }], /root/],
    ["move into itself", [{ op: "move", id: "b", parent: "b1", index: 0 }], /inside the moved subtree/],
    ["move onto itself", [{ op: "move", id: "b", parent: "b", index: 0 }], /inside the moved subtree/],
    ["move past the end", [{ op: "move", id: "a", parent: "root", index: 3 }], /out of range/],
    ["replace with an id used elsewhere", [{ op: "replace", id: "b", node: n("b", "card", {}, [n("a", "text")]) }], /"a" is already/],
    ["replace unknown", [{ op: "replace", id: "zz", node: n("zz", "text") }], /unknown node/],
  ];
  for (const [name, patch, re] of cases)
    it(name, () => {
      const t = base();
      const before = plain(t.root);
      expect(() => t.apply(ops(...patch))).toThrow(re);
      expect(plain(t.root)).toEqual(before);
      // still usable
      expect(t.apply(ops({ op: "props", id: "a", set: { ok: true } })).get("a")!.props.ok).toBe(true);
    });

  it("a failure in a later operation leaves no trace of the earlier ones", () => {
    const t = base();
    const root0 = t.root;
    const before = plain(t.root);
    let err: unknown;
    try {
      t.apply(
        ops(
          { op: "props", id: "a", set: { text: "changed" } },
          { op: "insert", parent: "root", index: 0, node: n("new", "text") },
          { op: "remove", id: "b1" },
          { op: "move", id: "c", parent: "b", index: 0 },
          { op: "props", id: "missing", set: {} },
        ),
      );
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as Error).message).toMatch(/^operation 4 \(props\): unknown node "missing"/);
    expect(t.root).toBe(root0);
    expect(plain(t.root)).toEqual(before);
    expect(t.get("new")).toBeUndefined();
    expect(t.get("b1")).toBeDefined();
    expect(t.parentOf("c")).toBe("root");
    expect(t.size).toBe(6);
  });

  it("depth over 32 after an insert is refused", () => {
    let chain = n("d32", "text");
    for (let i = 31; i >= 2; i--) chain = n(`d${i}`, "stack", {}, [chain]);
    const t = tree(n("d1", "stack", {}, [chain])); // depth 32 exactly
    expect(() => t.apply(ops({ op: "insert", parent: "d32", index: 0, node: n("d33", "text") }))).toThrow(/depth would be 33, over the limit of 32/);
    expect(() => t.apply(ops({ op: "insert", parent: "d31", index: 0, node: n("ok", "text") }))).not.toThrow();
  });

  it("depth over 32 after a move is refused", () => {
    let chain = n("d31", "text");
    for (let i = 30; i >= 2; i--) chain = n(`d${i}`, "stack", {}, [chain]);
    const t = tree(n("d1", "stack", {}, [chain, n("s", "stack", {}, [n("s2", "text")])]));
    // s2 under d31 would be depth 32: fine; the subtree s (height 2) under d31: depth 33.
    expect(() => t.apply(ops({ op: "move", id: "s", parent: "d31", index: 0 }))).toThrow(/over the limit of 32/);
  });

  it("more than 10,000 nodes after an insert is refused", () => {
    const kids = Array.from({ length: 9_999 }, (_, i) => n(`k${i}`, "text"));
    const t = tree(n("root", "list", {}, kids));
    expect(t.size).toBe(10_000);
    expect(() => t.apply(ops({ op: "insert", parent: "root", index: 0, node: n("one-more", "text") }))).toThrow(/10001 nodes, over the limit of 10000/);
    expect(t.apply(ops({ op: "remove", id: "k0" }, { op: "insert", parent: "root", index: 0, node: n("swap", "text") })).size).toBe(10_000);
  });
});
