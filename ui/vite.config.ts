/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";
import tailwindcss from "@tailwindcss/vite";
import { fileURLToPath, URL } from "node:url";

// `npm run dev`: the WebSocket goes to a gateway (or scripts/mock-gateway.mjs) on this machine;
// the gateway checks Origin, so the proxy presents the gateway's own.
const gateway = process.env.SYMPHONY_GATEWAY ?? "http://127.0.0.1:8090";

// The gateway serves dist/ at "/" (or any path): relative asset URLs.
export default defineConfig({
  base: "./",
  plugins: [react(), tailwindcss()],
  resolve: {
    alias: { "@": fileURLToPath(new URL("./src", import.meta.url)) },
  },
  server: {
    proxy: {
      "/ws": { target: gateway, ws: true, changeOrigin: true, headers: { origin: gateway } },
    },
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 600,
  },
  test: {
    environment: "jsdom",
    include: ["src/**/*.test.{ts,tsx}"],
    exclude: ["e2e/**", "node_modules/**", "dist/**"],
    setupFiles: ["./src/test/setup.ts"],
    restoreMocks: true,
  },
});
