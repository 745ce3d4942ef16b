import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { createServer } from "../server.js";

function listen(server) {
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

async function withFrontend(backendHandler, fn) {
  const dist = await mkdtemp(join(tmpdir(), "app-demo-dist-"));
  await writeFile(join(dist, "index.html"), "<title>app-demo</title>");
  const backend = await listen(http.createServer(backendHandler));
  const backendUrl = backendHandler ? `http://127.0.0.1:${backend.address().port}` : "http://127.0.0.1:1";
  const front = await listen(http.createServer(createServer({ backend: backendUrl, dist })));
  try {
    return await fn(`http://127.0.0.1:${front.address().port}`);
  } finally {
    await new Promise((resolve) => front.close(resolve));
    await new Promise((resolve) => backend.close(resolve));
    await rm(dist, { recursive: true, force: true });
  }
}

test("GET / serves the build's index.html", async () => {
  await withFrontend(null, async (url) => {
    const res = await fetch(`${url}/`);
    assert.equal(res.status, 200);
    assert.match(await res.text(), /app-demo/);
  });
});

test("/api/ is forwarded to the backend with its path, method, body and status", async () => {
  const seen = [];
  const backend = (req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      seen.push({ method: req.method, url: req.url, body });
      res.writeHead(201, { "content-type": "application/json" });
      res.end('{"id":1}');
    });
  };
  await withFrontend(backend, async (url) => {
    const res = await fetch(`${url}/api/items?x=1`, { method: "POST", body: '{"name":"a"}' });
    assert.equal(res.status, 201);
    assert.deepEqual(await res.json(), { id: 1 });
  });
  assert.deepEqual(seen, [{ method: "POST", url: "/api/items?x=1", body: '{"name":"a"}' }]);
});

test("a backend that does not answer is a JSON 502", async () => {
  await withFrontend(null, async (url) => {
    const res = await fetch(`${url}/api/health`);
    assert.equal(res.status, 502);
    assert.match((await res.json()).error, /backend 127\.0\.0\.1:1/);
  });
});
