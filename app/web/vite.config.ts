import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

// Where `npm run dev` / `npm run preview` proxy /api and /health (the real API
// locally, e.g. `python -m app.api` on its default 127.0.0.1:8080). Production
// never uses this: Caddy serves dist/ and proxies /api itself.
const apiTarget = process.env.GEOHA_WEB_API ?? "http://127.0.0.1:8080";
const proxy = {
  "/api": { target: apiTarget, changeOrigin: false },
};

export default defineConfig({
  plugins: [react()],
  base: "/",
  build: {
    outDir: "dist",
    // CSP is `default-src 'self'`: never inline assets as data: URIs.
    assetsInlineLimit: 0,
    sourcemap: false,
    target: "es2022",
  },
  server: { host: "127.0.0.1", proxy },
  preview: { host: "127.0.0.1", proxy },
  test: {
    environment: "node",
    include: ["src/**/*.test.ts", "src/**/*.test.tsx"],
  },
});
