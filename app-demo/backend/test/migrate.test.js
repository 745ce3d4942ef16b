import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { migrationFiles } from "../src/migrate.js";

async function withDir(files, fn) {
  const dir = await mkdtemp(join(tmpdir(), "app-demo-migrations-"));
  try {
    for (const name of files) await writeFile(join(dir, name), "SELECT 1;\n");
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test("migrations are ordered by number, not by text", async () => {
  await withDir(["10_ten.sql", "2_two.sql", "001_one.sql", "README.txt"], async (dir) => {
    const versions = (await migrationFiles(dir)).map((m) => m.version);
    assert.deepEqual(versions, ["001_one", "2_two", "10_ten"]);
  });
});

test("a misnamed .sql file is refused, naming it", async () => {
  await withDir(["001_one.sql", "fix-it.sql"], async (dir) => {
    await assert.rejects(migrationFiles(dir), /fix-it\.sql: expected NNN_lowercase_words\.sql/);
  });
});

test("two migrations with the same number are refused", async () => {
  await withDir(["002_a.sql", "2_b.sql"], async (dir) => {
    await assert.rejects(migrationFiles(dir), /share the number 2/);
  });
});

test("the shipped migrations create items with a note column", async () => {
  const dir = fileURLToPath(new URL("../migrations", import.meta.url));
  const versions = (await migrationFiles(dir)).map((m) => m.version);
  assert.deepEqual(versions.slice(0, 2), ["001_create_items", "002_add_item_note"]);
});
