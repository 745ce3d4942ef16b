import assert from "node:assert/strict";
import { test } from "node:test";
import { createApp, newState } from "../src/app.js";
import { fakePool } from "./fake_pool.js";

async function withServer(app, fn) {
  const server = app.listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  try {
    return await fn(`http://127.0.0.1:${server.address().port}`);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

const ready = () => ({ ...newState(), migrated: true, reachable: true });

test("health is 503 starting before the migrations ran", async () => {
  const app = createApp({ pool: fakePool(() => ({ rows: [] })), state: newState() });
  await withServer(app, async (url) => {
    const res = await fetch(`${url}/api/health`);
    assert.equal(res.status, 503);
    assert.deepEqual(await res.json(), { status: "starting" });
  });
});

test("health is 503 database unreachable while PostgreSQL refuses", async () => {
  const state = { ...newState(), reachable: false };
  const app = createApp({ pool: fakePool(() => ({ rows: [] })), state });
  await withServer(app, async (url) => {
    const res = await fetch(`${url}/api/health`);
    assert.equal(res.status, 503);
    assert.deepEqual(await res.json(), { status: "database unreachable" });
  });
});

test("health is 200 ok when the database answers and the schema is readable", async () => {
  const pool = fakePool(() => ({ rows: [] }));
  await withServer(createApp({ pool, state: ready() }), async (url) => {
    const res = await fetch(`${url}/api/health`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: "ok", database: "ok" });
  });
  assert.match(pool.queries.at(-1).text, /SELECT id, name, note, created_at FROM items/);
});

test("health is 503 when the database stops answering after startup", async () => {
  const pool = fakePool(() => {
    throw new Error("connect ECONNREFUSED");
  });
  await withServer(createApp({ pool, state: ready() }), async (url) => {
    const res = await fetch(`${url}/api/health`);
    assert.equal(res.status, 503);
    assert.deepEqual(await res.json(), { status: "database unreachable" });
  });
});

test("a schema the code cannot read (a dropped column) makes health 500 with the database's message", async () => {
  const pool = fakePool((text) => {
    if (text.includes("FROM items")) throw new Error('column "note" does not exist');
    return { rows: [] };
  });
  await withServer(createApp({ pool, state: ready() }), async (url) => {
    const res = await fetch(`${url}/api/health`);
    assert.equal(res.status, 500);
    assert.deepEqual(await res.json(), { error: 'column "note" does not exist' });
  });
});

test("a failed migration makes health 500 naming it", async () => {
  const state = { ...newState(), reachable: true, error: "migration 003_x: syntax error" };
  await withServer(createApp({ pool: fakePool(() => ({ rows: [] })), state }), async (url) => {
    const res = await fetch(`${url}/api/health`);
    assert.equal(res.status, 500);
    assert.deepEqual(await res.json(), { error: "migration 003_x: syntax error" });
  });
});

test("POST /api/items inserts the trimmed name and note and answers 201 with the row", async () => {
  const row = { id: 1, name: "disk", note: "sda", created_at: "2026-01-01T00:00:00Z" };
  const pool = fakePool(() => ({ rows: [row] }));
  await withServer(createApp({ pool, state: ready() }), async (url) => {
    const res = await fetch(`${url}/api/items`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: " disk ", note: "sda" }),
    });
    assert.equal(res.status, 201);
    assert.deepEqual(await res.json(), row);
  });
  assert.deepEqual(pool.queries[0].params, ["disk", "sda"]);
});

test("POST /api/items without a name is 400 and writes nothing", async () => {
  const pool = fakePool(() => ({ rows: [] }));
  await withServer(createApp({ pool, state: ready() }), async (url) => {
    for (const body of ['{"note": "x"}', '{"name": ""}', '{"name": 5}', "not json"]) {
      const res = await fetch(`${url}/api/items`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      });
      assert.equal(res.status, 400, body);
      assert.ok((await res.json()).error, body);
    }
  });
  assert.equal(pool.queries.length, 0);
});

test("an unknown /api route is a JSON 404", async () => {
  await withServer(createApp({ pool: fakePool(() => ({ rows: [] })), state: ready() }), async (url) => {
    const res = await fetch(`${url}/api/nope`);
    assert.equal(res.status, 404);
    assert.match((await res.json()).error, /GET \/api\/nope/);
  });
});
