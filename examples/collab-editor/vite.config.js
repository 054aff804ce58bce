import { defineConfig } from "vite"
import wasm from "vite-plugin-wasm"

// automerge's bundler build imports its `.wasm` module directly: vite-plugin-wasm turns that
// import into a fetch, and an `esnext` target keeps the top-level await it needs.
export default defineConfig({
  plugins: [wasm()],
  build: { target: "esnext", chunkSizeWarningLimit: 4096 },
  // Pre-bundling would copy automerge's JS away from its .wasm file.
  optimizeDeps: { exclude: ["@automerge/automerge"] },
  worker: { format: "es", plugins: () => [wasm()] },
})
