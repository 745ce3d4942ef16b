// Schema migrations: numbered .sql files applied once each, in order, in one transaction,
// recorded in schema_migrations. Run at startup, before the API says it is healthy.
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";

const MIGRATION_NAME = /^(\d+)_[a-z0-9_]+\.sql$/;
// Any constant works: it only has to be the same in every backend that may start at once.
const MIGRATION_LOCK = 7_250_001;

/** The migration files of a directory, as {version, file}, in numeric order; a misnamed .sql file is an error. */
export async function migrationFiles(dir) {
  const names = (await readdir(dir)).filter((name) => name.endsWith(".sql"));
  const bad = names.filter((name) => !MIGRATION_NAME.test(name));
  if (bad.length) {
    throw new Error(`${dir}: ${bad.join(", ")}: expected NNN_lowercase_words.sql`);
  }
  const files = names.map((name) => ({ version: name.slice(0, -4), number: Number(MIGRATION_NAME.exec(name)[1]), file: join(dir, name) }));
  files.sort((a, b) => a.number - b.number);
  const seen = new Map();
  for (const f of files) {
    if (seen.has(f.number)) {
      throw new Error(`${dir}: ${seen.get(f.number)} and ${f.version} share the number ${f.number}`);
    }
    seen.set(f.number, f.version);
  }
  return files.map(({ version, file }) => ({ version, file }));
}

/** Apply the migrations not yet recorded; all or none (one transaction). Returns the versions applied now. */
export async function migrate(pool, dir) {
  const files = await migrationFiles(dir);
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    // Two backends starting together (a recreate racing a restart) must not both apply a migration.
    await client.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK]);
    await client.query(
      "CREATE TABLE IF NOT EXISTS schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
    );
    const done = new Set((await client.query("SELECT version FROM schema_migrations")).rows.map((r) => r.version));
    const applied = [];
    for (const { version, file } of files) {
      if (done.has(version)) continue;
      try {
        await client.query(await readFile(file, "utf8"));
      } catch (err) {
        throw new Error(`migration ${version}: ${err.message}`, { cause: err });
      }
      await client.query("INSERT INTO schema_migrations (version) VALUES ($1)", [version]);
      applied.push(version);
    }
    await client.query("COMMIT");
    return applied;
  } catch (err) {
    await client.query("ROLLBACK").catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}
