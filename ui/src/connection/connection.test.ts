import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Connection, socketUrl, type SocketLike } from "./connection";
import { hello, patch, snapshot, testEngine, n } from "../test/helpers";

class FakeSocket implements SocketLike {
  static all: FakeSocket[] = [];
  readyState = 0;
  onopen: ((ev: Event) => unknown) | null = null;
  onclose: ((ev: CloseEvent) => unknown) | null = null;
  onerror: ((ev: Event) => unknown) | null = null;
  onmessage: ((ev: MessageEvent) => unknown) | null = null;
  sent: string[] = [];
  closed = false;
  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }
  send(data: string) {
    this.sent.push(data);
  }
  close() {
    this.closed = true;
    this.readyState = 3;
  }
  // driving it
  open() {
    this.readyState = 1;
    this.onopen?.(new Event("open"));
  }
  message(text: string) {
    this.onmessage?.({ data: text } as MessageEvent);
  }
  drop(code = 1006) {
    this.readyState = 3;
    this.onclose?.({ code, reason: "" } as CloseEvent);
  }
}

const last = () => FakeSocket.all[FakeSocket.all.length - 1];

function setup(probeStatus: (url: string) => Promise<number | null> = async () => null) {
  const t = testEngine();
  const conn = new Connection(t.engine, {
    url: "ws://127.0.0.1:8080/ws?token=abc",
    createSocket: (u) => new FakeSocket(u),
    probeStatus,
  });
  conn.start();
  return { ...t, conn, status: () => (t.frame(), t.engine.getState().status) };
}

beforeEach(() => {
  FakeSocket.all = [];
  vi.useFakeTimers();
});
afterEach(() => vi.useRealTimers());

describe("socketUrl", () => {
  it("builds ws(s)://<host>/ws?token=<the page's token>", () => {
    expect(socketUrl({ protocol: "http:", host: "127.0.0.1:8080", search: "?token=f00d" })).toEqual({ url: "ws://127.0.0.1:8080/ws?token=f00d", token: "f00d" });
    expect(socketUrl({ protocol: "https:", host: "h", search: "" })).toEqual({ url: "wss://h/ws?token=", token: null });
  });
});

describe("Connection", () => {
  it("connects, reports connected, and feeds messages to the engine", () => {
    const { status, engine, frame } = setup();
    expect(FakeSocket.all).toHaveLength(1);
    expect(last().url).toBe("ws://127.0.0.1:8080/ws?token=abc");
    last().open();
    expect(status()).toBe("connected");
    last().message(hello("gw"));
    last().message(snapshot("fx", 1, n("r", "text")));
    frame();
    expect(engine.getState().gateway).toBe("gw");
    expect(engine.getState().extensions.fx.seq).toBe(1);
  });

  it("sends what the engine sends (events, resyncs) as JSON text", () => {
    const { engine } = setup();
    last().open();
    engine.sendEvent("fx", "b", "click", {});
    last().message(patch("fx", 5, [])); // a gap: resync
    expect(last().sent.map((s) => JSON.parse(s))).toEqual([
      { v: 1, kind: "event", extension: "fx", node: "b", event: "click", payload: {}, seq: 1 },
      { v: 1, kind: "resync", extension: "fx" },
    ]);
  });

  it("reconnects at once, then after 250, 500, 1000, 2000, 2000 ms", () => {
    const { status } = setup();
    last().open();
    last().message(hello());
    last().drop();
    expect(status()).toBe("reconnecting");
    vi.advanceTimersByTime(0);
    expect(FakeSocket.all).toHaveLength(2); // at once
    const gaps: number[] = [];
    for (let i = 0; i < 5; i++) {
      const count = FakeSocket.all.length;
      last().drop(); // never opens
      let waited = 0;
      while (FakeSocket.all.length === count) {
        vi.advanceTimersByTime(10);
        waited += 10;
        if (waited > 10_000) throw new Error("no reconnect");
      }
      gaps.push(waited);
    }
    expect(gaps).toEqual([250, 500, 1000, 2000, 2000]);
  });

  it("a connection that worked resets the backoff", () => {
    setup();
    last().drop();
    vi.advanceTimersByTime(0);
    last().drop();
    vi.advanceTimersByTime(250);
    last().drop();
    vi.advanceTimersByTime(500);
    expect(FakeSocket.all).toHaveLength(4);
    last().open();
    last().message(hello());
    last().drop();
    vi.advanceTimersByTime(0);
    expect(FakeSocket.all).toHaveLength(5); // at once again
  });

  it("15 s without any message: closes and reconnects (the heartbeat watchdog)", () => {
    const { status } = setup();
    const s = last();
    s.open();
    vi.advanceTimersByTime(10_000);
    s.message(JSON.stringify({ v: 1, kind: "heartbeat" }));
    vi.advanceTimersByTime(14_000);
    expect(s.closed).toBe(false);
    vi.advanceTimersByTime(1_100);
    expect(s.closed).toBe(true);
    expect(status()).toBe("reconnecting");
    vi.advanceTimersByTime(0);
    expect(FakeSocket.all).toHaveLength(2);
  });

  it("resyncs on reconnect: patches before the new connection's snapshot are gaps", () => {
    const { engine, frame } = setup();
    last().open();
    last().message(hello());
    last().message(snapshot("fx", 1, n("r", "text", { text: "a" })));
    last().drop();
    vi.advanceTimersByTime(0);
    last().open();
    // a patch continuing the old sequence, before the new connection's hello/snapshot
    last().message(patch("fx", 2, [{ op: "props", id: "r", set: { text: "b" } }]));
    frame();
    expect(JSON.parse(last().sent[0])).toEqual({ v: 1, kind: "resync", extension: "fx" });
    expect(engine.getState().extensions.fx.nodes.get("r")!.props.text).toBe("a");
  });

  it("closed before open with HTTP 401: unauthorized (bad or missing token)", async () => {
    const { status } = setup(async () => 401);
    last().drop();
    await vi.advanceTimersByTimeAsync(0);
    expect(status()).toBe("unauthorized");
  });

  it("closed before open twice while the gateway answers HTTP (426): unauthorized", async () => {
    const { status } = setup(async () => 426);
    last().drop();
    await vi.advanceTimersByTimeAsync(0);
    expect(status()).toBe("reconnecting");
    last().drop();
    await vi.advanceTimersByTimeAsync(0);
    expect(status()).toBe("unauthorized");
  });

  it("closed before open with the gateway unreachable: reconnecting, not unauthorized", async () => {
    const { status } = setup(async () => null);
    for (let i = 0; i < 4; i++) {
      last().drop();
      await vi.advanceTimersByTimeAsync(2000);
    }
    expect(status()).toBe("reconnecting");
  });

  it("no token in the page URL: unauthorized at once, no socket", () => {
    const t = testEngine();
    const conn = new Connection(t.engine, { url: "ws://h/ws?token=", tokenMissing: true, createSocket: (u) => new FakeSocket(u) });
    conn.start();
    t.frame();
    expect(t.engine.getState().status).toBe("unauthorized");
    expect(FakeSocket.all).toHaveLength(0);
  });

  it("stop() closes and does not reconnect", () => {
    const { conn } = setup();
    last().open();
    conn.stop();
    expect(last().closed).toBe(true);
    vi.advanceTimersByTime(10_000);
    expect(FakeSocket.all).toHaveLength(1);
  });
});
