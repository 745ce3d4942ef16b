import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// base "./": the build works at / and behind a path prefix (a proxy route such as /app/).
export default defineConfig({
  base: "./",
  plugins: [react()],
  build: { outDir: "dist", emptyOutDir: true },
});
