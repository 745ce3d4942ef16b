// Serve the Vite build and forward /api/ to the backend, so the page and its API share one origin.
import express from "express";
import http from "node:http";
import { fileURLToPath } from "node:url";

const DIST = fileURLToPath(new URL("./dist", import.meta.url));

/** Forward a request to the backend as is; 502 with a JSON message when the backend does not answer. */
export function forwardTo(backend) {
  const target = new URL(backend);
  return (req, res) => {
    const upstream = http.request(
      {
        hostname: target.hostname,
        port: target.port || 80,
        method: req.method,
        path: req.originalUrl,
        headers: { ...req.headers, host: target.host },
        timeout: 10_000,
      },
      (answer) => {
        res.writeHead(answer.statusCode, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on("timeout", () => upstream.destroy(new Error("backend timed out")));
    upstream.on("error", (err) => {
      if (res.headersSent) {
        res.destroy(err);
        return;
      }
      res.status(502).json({ error: `backend ${target.host}: ${err.message}` });
    });
    req.pipe(upstream);
  };
}

/** The frontend's app: /api/ forwarded to `backend`, everything else from `dist`. */
export function createServer({ backend, dist = DIST }) {
  const app = express();
  app.disable("x-powered-by");
  app.use("/api", forwardTo(backend));
  app.use(express.static(dist, { index: "index.html", maxAge: "1h" }));
  return app;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const port = Number(process.env.PORT || 80);
  // Every default stays inside the app's own Docker network: the backend's container name.
  const backend = process.env.BACKEND_URL || "http://app-demo-backend:3000";
  const server = createServer({ backend }).listen(port, () => {
    console.log(`app-demo-frontend listening on :${port}, api forwarded to ${backend}`);
  });
  process.on("SIGTERM", () => server.close(() => process.exit(0)));
}
