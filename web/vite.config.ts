import { defineConfig } from "vitest/config";

export default defineConfig({
  // JSX compiles to Preact's automatic runtime (no Babel plugin needed).
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  // The notes chunk (CodeMirror + Yjs) is ~700 kB and loads only when a note is opened.
  build: { outDir: "dist", emptyOutDir: true, sourcemap: true, chunkSizeWarningLimit: 800 },
  server: {
    proxy: {
      "/api": "http://127.0.0.1:8000",
      "/ws": { target: "ws://127.0.0.1:8000", ws: true },
      "/yjs": { target: "ws://127.0.0.1:8000", ws: true },
    },
  },
  test: { environment: "node", include: ["test/**/*.test.ts", "test/**/*.test.tsx"], css: true },
});
