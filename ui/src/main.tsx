import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import "./index.css";
import { App } from "./App";
import { Engine } from "./state/engine";
import { EngineContext } from "./state/hooks";
import { Connection, socketUrl } from "./connection/connection";
import { installProbe } from "./state/global";

// Another protocol version: reload (the gateway serves the app of its own version). Not in a
// loop: a second mismatch within 10 s of a reload stays on the page with an error instead.
function reloadForVersion() {
  const key = "symphony.version-reload";
  const last = Number(sessionStorage.getItem(key) ?? 0);
  if (Date.now() - last < 10_000) {
    engine.toast("The gateway speaks another protocol version and reloading did not help.", "error");
    return;
  }
  sessionStorage.setItem(key, String(Date.now()));
  location.reload();
}

const engine: Engine = new Engine({ reload: reloadForVersion });
const { url, token } = socketUrl(window.location);
const connection = new Connection(engine, { url, tokenMissing: !token });
installProbe(engine);

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <EngineContext.Provider value={engine}>
      <App />
    </EngineContext.Provider>
  </StrictMode>,
);
connection.start();
