import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import "./index.css";
import { App } from "./App";
import { Engine } from "./state/engine";
import { EngineContext } from "./state/hooks";
import { Connection, socketUrl } from "./connection/connection";
import { installProbe } from "./state/global";

const engine = new Engine();
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
