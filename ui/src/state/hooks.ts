import { createContext, useContext } from "react";
import { useStore } from "zustand";
import type { AppState, Engine } from "./engine";

export const EngineContext = createContext<Engine | null>(null);

export function useEngine(): Engine {
  const e = useContext(EngineContext);
  if (!e) throw new Error("no EngineContext");
  return e;
}

export function useAppState<T>(selector: (s: AppState) => T): T {
  return useStore(useEngine().store, selector);
}
