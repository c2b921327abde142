import { afterEach, describe, expect, it } from "vitest";
import { act, render } from "@testing-library/react";
import { App } from "./App";
import { EngineContext } from "./state/hooks";
import { installProbe } from "./state/global";
import { hello, n, patch, snapshot, state, testEngine } from "./test/helpers";
import { flushWith } from "./test/render";

function setup() {
  const t = testEngine();
  t.engine.setStatus("connected");
  t.engine.receive(hello("ui-gateway"));
  t.engine.receive(state("ui-gateway", "HEALTHY"));
  t.engine.receive(state("file-explorer", "HEALTHY"));
  t.engine.receive(state("worker", "STARTING"));
  t.engine.receive(snapshot("ui-gateway", 1, n("dash", "stack", {}, [n("title", "heading", { text: "Bus demo" })])));
  t.engine.receive(snapshot("file-explorer", 1, n("fx-root", "stack", {}, [n("search", "input", { value: "" }, [], ["change"])])));
  t.frame();
  const view = render(
    <EngineContext.Provider value={t.engine}>
      <App />
    </EngineContext.Provider>,
  );
  return { ...t, view };
}

afterEach(() => {
  window.location.hash = "";
});

const $ = (sel: string) => document.querySelector(sel) as HTMLElement | null;

describe("App", () => {
  it("shows the gateway's tree as the Dashboard and lists the other extensions with state badges", () => {
    setup();
    expect($('[data-extension="ui-gateway"]')!.getAttribute("data-state")).toBe("HEALTHY");
    expect($('[data-node-id="title"]')!.textContent).toBe("Bus demo");
    const links = [...document.querySelectorAll("[data-ext-link]")].map((a) => [a.textContent, a.getAttribute("href")]);
    expect(links).toEqual([
      ["DashboardHEALTHY", "#/"],
      ["file-explorerHEALTHY", "#/ext/file-explorer"],
      ["workerSTARTING", "#/ext/worker"],
    ]);
    expect($('[data-ext-link="worker"] [data-state-badge]')!.className).toMatch(/warning/);
    expect($('[data-ext-link="file-explorer"] [data-state-badge]')!.className).toMatch(/success/);
  });

  it("routes by hash to an extension's panel", async () => {
    setup();
    await act(async () => {
      window.location.hash = "#/ext/file-explorer";
      window.dispatchEvent(new HashChangeEvent("hashchange"));
    });
    expect($('[data-extension="file-explorer"]')).not.toBeNull();
    expect($('[data-extension="ui-gateway"]')).toBeNull();
    expect($('[data-node-id="search"]')!.tagName).toBe("INPUT");
  });

  it("a CRASHED extension keeps its last tree under a banner; HEALTHY again removes it", async () => {
    const { engine, frame } = setup();
    await act(async () => {
      window.location.hash = "#/ext/file-explorer";
      window.dispatchEvent(new HashChangeEvent("hashchange"));
    });
    engine.receive(state("file-explorer", "CRASHED", "killed by signal 9"));
    flushWith(frame);
    const panel = $('[data-extension="file-explorer"]')!;
    expect(panel.getAttribute("data-state")).toBe("CRASHED");
    expect(panel.querySelector('[data-banner="CRASHED"]')!.textContent).toMatch(/CRASHED.*last known UI.*killed by signal 9/);
    expect(panel.querySelector('[data-node-id="search"]')).not.toBeNull();
    expect($('[data-ext-link="file-explorer"] [data-state-badge]')!.className).toMatch(/destructive/);
    engine.receive(state("file-explorer", "HEALTHY"));
    flushWith(frame);
    expect($('[data-extension="file-explorer"]')!.getAttribute("data-state")).toBe("HEALTHY");
    expect($("[data-banner]")).toBeNull();
  });

  it("unauthorized: says 'bad or missing token' and shows no panel", () => {
    const { engine, frame } = setup();
    engine.setStatus("unauthorized", "The gateway refused the token (HTTP 401).");
    flushWith(frame);
    expect($("[data-unauthorized]")!.textContent).toMatch(/Bad or missing token/);
    expect($("[data-extension]")).toBeNull();
    expect($('[data-connection="unauthorized"]')).not.toBeNull();
  });

  it("window.__symphony: frames get t_rendered in the commit's layout effect; status and stats", () => {
    const { engine, frame } = setup();
    const g = installProbe(engine);
    expect(window.__symphony).toBe(g);
    expect(g.status).toBe("connected");
    // the snapshots of setup() were rendered by the first commit
    expect(g.frames.every((f) => f.t_rendered !== null)).toBe(true);
    engine.receive(patch("ui-gateway", 2, [{ op: "props", id: "title", set: { text: "x" } }]));
    const f = g.frames[g.frames.length - 1];
    expect(f.t_rendered).toBeNull();
    flushWith(frame);
    expect(f.t_rendered).not.toBeNull();
    expect(f.t_rendered!).toBeGreaterThanOrEqual(f.t_received);
    expect(g.stats().frames_rendered).toBe(3);
    expect(g.extensions()["ui-gateway"]).toEqual({ state: "HEALTHY", seq: 2 });
  });
});
