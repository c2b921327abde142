import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { hello, n, patch, snapshot, state, testEngine } from "../test/helpers";

const tree = n("root", "stack", {}, [n("a", "text", { text: "A" }), n("btn", "button", { label: "go" }, [], ["click"])]);

describe("sequence tracking", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("applies patches whose base is the current seq", () => {
    const { engine, sent, frame } = testEngine();
    engine.receive(snapshot("fx", 5, tree));
    engine.receive(patch("fx", 6, [{ op: "props", id: "a", set: { text: "B" } }]));
    engine.receive(patch("fx", 7, [{ op: "props", id: "a", set: { text: "C" } }]));
    frame();
    const v = engine.getState().extensions.fx;
    expect(v.seq).toBe(7);
    expect(v.nodes.get("a")!.props.text).toBe("C");
    expect(sent).toEqual([]);
  });

  it("a gap drops the patch and sends one resync for that extension", () => {
    const { engine, sent, frame, log } = testEngine();
    engine.receive(snapshot("fx", 5, tree));
    engine.receive(patch("fx", 8, [{ op: "props", id: "a", set: { text: "lost" } }]));
    frame();
    expect(sent).toEqual([{ v: 1, kind: "resync", extension: "fx" }]);
    expect(engine.getState().extensions.fx.seq).toBe(5);
    expect(engine.getState().extensions.fx.nodes.get("a")!.props.text).toBe("A");
    expect(log.warn).toHaveBeenCalledWith(expect.stringMatching(/gap \(tree at seq 5, patch base 7\)/));
    // more patches while the snapshot is on its way: dropped, no resync storm
    engine.receive(patch("fx", 9, []));
    engine.receive(patch("fx", 10, []));
    expect(sent).toHaveLength(1);
    // the snapshot resets the receiver; the next patch applies
    engine.receive(snapshot("fx", 10, tree));
    engine.receive(patch("fx", 11, [{ op: "props", id: "a", set: { text: "ok" } }]));
    frame();
    expect(engine.getState().extensions.fx.seq).toBe(11);
    expect(engine.getState().extensions.fx.nodes.get("a")!.props.text).toBe("ok");
  });

  it("a patch before any snapshot is a gap too", () => {
    const { engine, sent } = testEngine();
    engine.receive(patch("fx", 2, []));
    expect(sent).toEqual([{ v: 1, kind: "resync", extension: "fx" }]);
  });

  it("if the asked-for snapshot never comes, asks again later (not in a loop)", () => {
    const { engine, sent } = testEngine({ resyncIntervalMs: 1000 });
    engine.receive(patch("fx", 2, []));
    engine.receive(patch("fx", 3, []));
    expect(sent).toHaveLength(1);
    vi.advanceTimersByTime(2500);
    engine.receive(patch("fx", 4, []));
    expect(sent).toHaveLength(2);
  });

  it("a snapshot resets the seq even backwards (the extension restarted)", () => {
    const { engine, frame } = testEngine();
    engine.receive(snapshot("fx", 50, tree));
    engine.receive(snapshot("fx", 1, n("root", "text", { text: "fresh" })));
    engine.receive(patch("fx", 2, [{ op: "props", id: "root", set: { text: "fresh2" } }]));
    frame();
    const v = engine.getState().extensions.fx;
    expect(v.seq).toBe(2);
    expect(v.tree!.props.text).toBe("fresh2");
  });
});

describe("refused frames", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("an invalid frame is refused with a reason, logged, and that extension resynced", () => {
    const { engine, sent, log, frame } = testEngine();
    engine.receive(snapshot("fx", 1, tree));
    engine.receive(patch("fx", 2, [{ op: "props", id: "a", set: { text: "X" } }, { op: "bogus" }]));
    frame();
    expect(log.error).toHaveBeenCalledWith(expect.stringMatching(/refused a message: patch: operation 1: unknown operation "bogus"/));
    expect(sent).toEqual([{ v: 1, kind: "resync", extension: "fx" }]);
    const v = engine.getState().extensions.fx;
    expect(v.nodes.get("a")!.props.text).toBe("A"); // nothing of it applied
    expect(v.refused).toMatch(/bogus/);
  });

  it("a patch that does not apply is refused whole, logged, and resynced", () => {
    const { engine, sent, log, frame } = testEngine();
    engine.receive(snapshot("fx", 1, tree));
    engine.receive(patch("fx", 2, [{ op: "props", id: "a", set: { text: "X" } }, { op: "remove", id: "ghost" }]));
    frame();
    expect(log.error).toHaveBeenCalledWith(expect.stringMatching(/fx: patch 2 refused: operation 1 \(remove\): unknown node "ghost"/));
    expect(sent).toEqual([{ v: 1, kind: "resync", extension: "fx" }]);
    expect(engine.getState().extensions.fx.nodes.get("a")!.props.text).toBe("A");
    expect(engine.getState().extensions.fx.seq).toBe(1);
  });

  it("an invalid snapshot after a resync asks again, throttled", () => {
    const { engine, sent } = testEngine({ resyncIntervalMs: 1000 });
    const bad = JSON.stringify({ v: 1, kind: "snapshot", extension: "fx", seq: 1, t: 0, tree: { id: "", type: "x" } });
    engine.receive(bad);
    engine.receive(bad);
    engine.receive(bad);
    expect(sent).toHaveLength(1);
    vi.advanceTimersByTime(2100);
    expect(sent).toHaveLength(2);
  });

  it("a message of another protocol version reloads the app (once)", () => {
    const { engine, reload, frame } = testEngine();
    engine.receive(JSON.stringify({ v: 2, kind: "hello", gateway: "g" }));
    engine.receive(JSON.stringify({ v: 2, kind: "hello", gateway: "g" }));
    frame();
    expect(reload).toHaveBeenCalledTimes(1);
    expect(engine.getState().gateway).toBeNull();
  });
});

describe("connection-level messages", () => {
  it("hello names the gateway; state sets lifecycle; gone removes", () => {
    const { engine, frame } = testEngine();
    engine.receive(hello("ui-gateway"));
    engine.receive(state("fx", "STARTING"));
    engine.receive(state("fx", "HEALTHY"));
    engine.receive(snapshot("fx", 1, tree));
    frame();
    let s = engine.getState();
    expect(s.gateway).toBe("ui-gateway");
    expect(s.bus).toBe("test");
    expect(s.extensions.fx.state).toBe("HEALTHY");
    engine.receive(state("fx", "CRASHED", "killed by signal 9"));
    frame();
    s = engine.getState();
    expect(s.extensions.fx.state).toBe("CRASHED");
    expect(s.extensions.fx.reason).toBe("killed by signal 9");
    expect(s.extensions.fx.tree).not.toBeNull(); // the last known tree stays
    engine.receive(JSON.stringify({ v: 1, kind: "gone", extension: "fx" }));
    frame();
    expect(engine.getState().extensions.fx).toBeUndefined();
  });

  it("several instances: the extension shows its most alive instance's state", () => {
    const { engine, frame } = testEngine();
    const st = (s: string, instance: number, reason = "") =>
      JSON.stringify({ v: 1, kind: "state", extension: "svc", state: s, reason, instance });
    engine.receive(st("HEALTHY", 0));
    engine.receive(st("STARTING", 1)); // an update starts a new instance
    frame();
    expect(engine.getState().extensions.svc.state).toBe("HEALTHY");
    engine.receive(st("HEALTHY", 1));
    engine.receive(st("STOPPING", 0));
    engine.receive(st("TERMINATED", 0));
    frame();
    expect(engine.getState().extensions.svc).toMatchObject({ state: "HEALTHY", instance: 1 });
    engine.receive(st("CRASHED", 1, "killed by signal 9"));
    frame();
    expect(engine.getState().extensions.svc).toMatchObject({ state: "CRASHED", reason: "killed by signal 9", instance: 1 });
  });

  it("a new hello keeps the last trees on screen, and forgets what the new connection does not mention", () => {
    vi.useFakeTimers();
    try {
      const { engine, frame } = testEngine({ attachGraceMs: 3000 });
      engine.receive(hello());
      engine.receive(snapshot("old", 1, tree));
      engine.receive(snapshot("kept", 7, tree));
      frame();
      engine.receive(hello());
      frame();
      // nothing disappears at once; but no sequence state survives the reconnection
      expect(Object.keys(engine.getState().extensions).sort()).toEqual(["kept", "old"]);
      expect(engine.getState().extensions.kept.seq).toBeNull();
      engine.receive(state("kept", "HEALTHY"));
      engine.receive(snapshot("kept", 1, tree));
      engine.receive(snapshot("new", 1, tree));
      frame();
      vi.advanceTimersByTime(3000);
      frame();
      expect(Object.keys(engine.getState().extensions).sort()).toEqual(["kept", "new"]);
    } finally {
      vi.useRealTimers();
    }
  });

  it("an unchanged extension keeps its view object across flushes", () => {
    const { engine, frame } = testEngine();
    engine.receive(snapshot("a", 1, tree));
    engine.receive(snapshot("b", 1, tree));
    frame();
    const a0 = engine.getState().extensions.a;
    engine.receive(patch("b", 2, [{ op: "props", id: "a", set: { text: "x" } }]));
    frame();
    expect(engine.getState().extensions.a).toBe(a0);
  });
});

describe("events and acks", () => {
  it("sends events with the protocol's shape and an increasing seq", () => {
    const { engine, sent } = testEngine();
    expect(engine.sendEvent("fx", "btn", "click", {})).toBe(1);
    expect(engine.sendEvent("fx", "search", "change", { value: "q" })).toBe(2);
    expect(sent).toEqual([
      { v: 1, kind: "event", extension: "fx", node: "btn", event: "click", payload: {}, seq: 1 },
      { v: 1, kind: "event", extension: "fx", node: "search", event: "change", payload: { value: "q" }, seq: 2 },
    ]);
  });

  it("an ack with ok:false shows an error toast naming the event", () => {
    const { engine, frame } = testEngine();
    engine.sendEvent("fx", "btn", "click", {});
    engine.receive(JSON.stringify({ v: 1, kind: "ack", seq: 1, ok: false, error: "node 'btn' has no event 'click'" }));
    frame();
    const toasts = engine.getState().toasts;
    expect(toasts).toHaveLength(1);
    expect(toasts[0]).toMatchObject({ tone: "error" });
    expect(toasts[0].text).toMatch(/fx: click on btn failed: node 'btn' has no event 'click'/);
  });

  it("sending while disconnected tells the user and records nothing", () => {
    const { engine, frame } = testEngine({ send: () => false });
    expect(engine.sendEvent("fx", "btn", "click", {})).toBeNull();
    frame();
    expect(engine.getState().toasts[0].text).toMatch(/Not connected/);
    expect(engine.probe.events).toHaveLength(0);
  });
});

describe("when frames reach React", () => {
  it("a state change waits for the scheduled flush; the answer to an event does not", async () => {
    const { engine, frame } = testEngine(); // its scheduler runs only when frame() is called
    engine.receive(snapshot("fx", 1, tree));
    frame();
    engine.receive(patch("fx", 2, [{ op: "props", id: "a", set: { text: "tick" } }]));
    await Promise.resolve();
    expect(engine.getState().extensions.fx.seq).toBe(1);
    frame();
    expect(engine.getState().extensions.fx.seq).toBe(2);
    engine.receive(patch("fx", 3, [{ op: "props", id: "a", set: { text: "clicked" } }], { events_done: [7] }));
    await Promise.resolve();
    expect(engine.getState().extensions.fx.seq).toBe(3);
    expect(engine.getState().extensions.fx.nodes.get("a")!.props.text).toBe("clicked");
  });
});

describe("latency probe records", () => {
  it("frames get t_received at once and t_rendered at their commit; events get t_rendered from tree_seq", () => {
    const { engine, frame } = testEngine();
    engine.receive(snapshot("fx", 1, tree), 1000);
    engine.sendEvent("fx", "btn", "click", {});
    engine.receive(patch("fx", 2, [{ op: "props", id: "a", set: { text: "1" } }], { events_done: [1] }), 1010);
    const [f1, f2] = engine.probe.frames;
    expect(f1).toMatchObject({ extension: "fx", seq: 1, kind: "snapshot", t_received: 1000, t_rendered: null });
    expect(f2).toMatchObject({ seq: 2, kind: "patch", t_ext: 1_764_100_000_002, events_done: [1] });
    // the ack comes before the render
    engine.receive(JSON.stringify({ v: 1, kind: "ack", seq: 1, ok: true, tree_seq: 2 }));
    expect(engine.probe.events[0].t_acked).not.toBeNull();
    expect(engine.probe.events[0].t_rendered).toBeNull();
    frame();
    const commit = engine.getState().commit;
    engine.probe.rendered(commit, 5000); // what the layout effect does
    expect(f1.t_rendered).toBe(5000);
    expect(f2.t_rendered).toBe(5000);
    expect(engine.probe.events[0]).toMatchObject({ tree_seq: 2, t_rendered: 5000, ok: true });
  });

  it("an ack after the frame was rendered takes that frame's commit time", () => {
    const { engine, frame } = testEngine();
    engine.receive(snapshot("fx", 1, tree));
    engine.sendEvent("fx", "btn", "click", {});
    engine.receive(patch("fx", 2, []));
    frame();
    engine.probe.rendered(engine.getState().commit, 7000);
    engine.receive(patch("fx", 3, []));
    frame();
    engine.probe.rendered(engine.getState().commit, 8000);
    engine.receive(JSON.stringify({ v: 1, kind: "ack", seq: 1, ok: true, tree_seq: 2 }));
    expect(engine.probe.events[0].t_rendered).toBe(7000);
  });

  it("the ring buffers are bounded", () => {
    const { engine } = testEngine({});
    const small = new (engine.probe.constructor as new (c: number) => typeof engine.probe)(100);
    for (let i = 0; i < 250; i++) small.frameApplied({ extension: "x", seq: i, kind: "patch", t_ext: 0, t_received: 0 });
    expect(small.frames).toHaveLength(100);
    expect(small.frames[0].seq).toBe(150);
  });
});
