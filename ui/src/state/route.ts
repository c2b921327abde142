import { useSyncExternalStore } from "react";

export type Route = { page: "dashboard" } | { page: "extension"; id: string };

/** "#/" or "" -> the dashboard; "#/ext/<id>" -> an extension's page. The hash keeps the
 * page's ?token (it is in the query, which hash navigation does not touch). */
export function parseRoute(hash: string): Route {
  const m = /^#\/ext\/(.+)$/.exec(hash);
  if (m) {
    try {
      return { page: "extension", id: decodeURIComponent(m[1]) };
    } catch {
      return { page: "extension", id: m[1] };
    }
  }
  return { page: "dashboard" };
}

export function extensionHref(id: string): string {
  return `#/ext/${encodeURIComponent(id)}`;
}

function subscribe(cb: () => void) {
  window.addEventListener("hashchange", cb);
  return () => window.removeEventListener("hashchange", cb);
}

export function useHash(): string {
  return useSyncExternalStore(subscribe, () => window.location.hash);
}
