// Start the API: listen at once (health says "starting"), then wait for PostgreSQL and migrate.
import { fileURLToPath } from "node:url";
import pg from "pg";
import { createApp, newState } from "./app.js";
import { migrate } from "./migrate.js";

const MIGRATIONS = fileURLToPath(new URL("../migrations", import.meta.url));
const RETRY_MS = 1000;

/** Wait until PostgreSQL takes a connection, then apply the migrations once. */
export async function prepare(pool, state, dir = MIGRATIONS) {
  for (;;) {
    try {
      const client = await pool.connect();
      client.release();
      state.reachable = true;
      break;
    } catch (err) {
      if (state.reachable !== false) console.error(`database not reachable yet: ${err.message}`);
      state.reachable = false;
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
    }
  }
  try {
    state.applied = await migrate(pool, dir);
    state.migrated = true;
    console.log(`migrations applied: ${state.applied.join(", ") || "none (schema up to date)"}`);
  } catch (err) {
    // A migration that fails fails every time: health answers 500 with why, nothing retries it.
    state.error = err.message;
    console.error(err.message);
  }
}

function main() {
  const port = Number(process.env.PORT || 3000);
  // PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE come from the environment (libpq's names).
  const pool = new pg.Pool({ max: 5, connectionTimeoutMillis: 3000 });
  pool.on("error", (err) => console.error(`idle database connection lost: ${err.message}`));
  const state = newState();
  const server = createApp({ pool, state }).listen(port, () => {
    console.log(`app-demo-backend listening on :${port}, database ${process.env.PGHOST || "localhost"}`);
  });
  prepare(pool, state);
  const stop = () => {
    server.close(() => pool.end().finally(() => process.exit(0)));
    setTimeout(() => process.exit(0), 3000).unref();
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main();
}
