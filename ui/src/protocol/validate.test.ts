import { describe, expect, it } from "vitest";
import { parseMessage, parseTree, utf8Length, withinBytes } from "./validate";
import { n, patch, snapshot } from "../test/helpers";

const refused = (text: string) => {
  const r = parseMessage(text);
  if (r.ok) throw new Error("expected a refusal");
  return r;
};

describe("node rules (section 1)", () => {
  it("normalizes optional fields", () => {
    const t = parseTree({ id: "r", type: "stack" });
    expect(t).toEqual({ id: "r", type: "stack", props: {}, events: [], children: [] });
  });

  it.each([
    [{ id: "", type: "text" }, /1-128 bytes/],
    [{ id: "x".repeat(129), type: "text" }, /1-128 bytes \(is 129\)/],
    [{ id: "é".repeat(65), type: "text" }, /is 130/], // 130 bytes of UTF-8 in 65 characters
    [{ id: "a\nb", type: "text" }, /control character/],
    [{ id: "a\u007fb", type: "text" }, /control character/],
    [{ id: 5, type: "text" }, /must be a string/],
    [{ id: "x", type: "Text" }, /does not match/],
    [{ id: "x", type: "1abc" }, /does not match/],
    [{ id: "x", type: "a".repeat(65) }, /does not match/],
    [{ id: "x", type: "text", props: [] }, /props must be an object/],
    [{ id: "x", type: "text", events: ["Click"] }, /event name/],
    [{ id: "x", type: "text", events: ["click", "click"] }, /listed twice/],
    [{ id: "x", type: "text", events: Array.from({ length: 17 }, (_, i) => `e${i}`) }, /17 events exceeds the limit of 16/],
    [{ id: "x", type: "text", children: {} }, /children must be an array/],
    [{ id: "x", type: "text", style: {} }, /unknown field "style"/],
    [{ id: "x", type: "stack", children: [{ id: "y", type: "text" }, { id: "y", type: "text" }] }, /"y": id is not unique/],
  ])("refuses %j", (node, re) => {
    expect(() => parseTree(node)).toThrow(re);
  });

  it("accepts the bounds exactly: 128-byte id, 16 events, depth 32, 10,000 nodes", () => {
    expect(() => parseTree({ id: "x".repeat(128), type: "a".repeat(64) })).not.toThrow();
    expect(() => parseTree({ id: "x", type: "t", events: Array.from({ length: 16 }, (_, i) => `e${i}`) })).not.toThrow();
    let deep = n("d32", "text");
    for (let i = 31; i >= 1; i--) deep = n(`d${i}`, "stack", {}, [deep]);
    expect(() => parseTree(deep)).not.toThrow();
    expect(() => parseTree(n("d0", "stack", {}, [deep]))).toThrow(/"d32": depth 33 exceeds the limit of 32/);
    const wide = n("root", "list", {}, Array.from({ length: 9_999 }, (_, i) => n(`k${i}`, "text")));
    expect(() => parseTree(wide)).not.toThrow();
    wide.children!.push(n("k-extra", "text"));
    expect(() => parseTree(wide)).toThrow(/more than 10000 nodes/);
  });
});

describe("messages (section 4)", () => {
  it("parses a snapshot and a patch", () => {
    const s = parseMessage(snapshot("fx", 3, n("r", "stack")));
    expect(s.ok && s.msg.kind).toBe("snapshot");
    const p = parseMessage(patch("fx", 4, [{ op: "props", id: "r", set: { gap: 4 } }], { events_done: [7] }));
    expect(p.ok && p.msg.kind === "patch" && p.msg.events_done).toEqual([7]);
  });

  it("refuses a message over 256 KiB, naming the limit and the extension", () => {
    const big = snapshot("fx", 1, n("r", "text", { text: "x".repeat(262_144) }));
    const r = refused(big);
    expect(r.versionMismatch).toBe(false);
    expect(r.reason).toMatch(/exceeds the limit of 262144 bytes/);
    expect(r.extension).toBe("fx");
  });

  it("counts bytes of UTF-8, not UTF-16 units", () => {
    expect(utf8Length("aé€😀")).toBe(1 + 2 + 3 + 4);
    const s = "€".repeat(90_000); // 90,000 units, 270,000 bytes
    expect(withinBytes(s, 262_144)).toBe(false);
    expect(withinBytes("a".repeat(262_144), 262_144)).toBe(true);
    expect(withinBytes("a".repeat(262_145), 262_144)).toBe(false);
  });

  it("refuses nesting over 128 arrays and objects (brackets in strings do not count)", () => {
    const nested = (k: number) => "[".repeat(k) + "]".repeat(k);
    const msg = (k: number) => `{"v":1,"kind":"snapshot","extension":"fx","seq":1,"t":0,"tree":{"id":"r","type":"t","props":{"x":${nested(k)}}}}`;
    // the message, tree and props objects are 3 levels: 125 more arrays is 128
    expect(parseMessage(msg(125)).ok).toBe(true);
    const r = refused(msg(126));
    expect(r.reason).toMatch(/nesting of 129 arrays and objects exceeds the limit of 128/);
    expect(r.extension).toBe("fx");
    expect(parseMessage(snapshot("fx", 1, n("r", "text", { text: "[[[[".repeat(100) + '\"{' }))).ok).toBe(true);
  });

  it("reports another version as a version mismatch, before anything else", () => {
    const r = refused(JSON.stringify({ v: 2, kind: "whatever" }));
    expect(r.versionMismatch).toBe(true);
    expect(refused(JSON.stringify({ kind: "hello", gateway: "g" })).versionMismatch).toBe(true);
  });

  it.each([
    ["not JSON", "{", /not JSON/],
    ["not an object", "[1]", /JSON object/],
    ["unknown kind", JSON.stringify({ v: 1, kind: "nope" }), /unknown message kind/],
    ["patch base != seq - 1", JSON.stringify({ v: 1, kind: "patch", extension: "fx", seq: 5, base: 3, t: 1, ops: [] }), /base 3 is not seq - 1/],
    ["negative seq", JSON.stringify({ v: 1, kind: "snapshot", extension: "fx", seq: -1, t: 1, tree: n("r", "text") }), /seq must be/],
    ["missing t", JSON.stringify({ v: 1, kind: "snapshot", extension: "fx", seq: 1, tree: n("r", "text") }), /t must be a finite number/],
    ["unknown op", patch("fx", 2, [{ op: "splice", id: "r" }]), /unknown operation "splice"/],
    ["op with an unknown field", patch("fx", 2, [{ op: "remove", id: "r", index: 0 }]), /unknown field "index"/],
    ["insert without a node", patch("fx", 2, [{ op: "insert", parent: "r", index: 0 }]), /a node must be an object/],
    ["negative index", patch("fx", 2, [{ op: "move", id: "a", parent: "r", index: -1 }]), /index must be a non-negative integer/],
    ["events op over 16", patch("fx", 2, [{ op: "events", id: "a", events: Array.from({ length: 17 }, (_, i) => `e${i}`) }]), /limit of 16/],
    ["bad events_done", patch("fx", 2, [], { events_done: ["x"] }), /events_done/],
    ["ack without ok", JSON.stringify({ v: 1, kind: "ack", seq: 1 }), /ok must be a boolean/],
  ])("refuses %s", (_name, text, re) => {
    const r = refused(text);
    expect(r.reason).toMatch(re);
  });

  it("names the extension of a refused frame so it can be resynced", () => {
    const r = refused(patch("fx", 2, [{ op: "nope" }]));
    expect(r.extension).toBe("fx");
  });
});
