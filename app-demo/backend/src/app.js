// The HTTP API: /api/health (is the database there and the schema migrated) and /api/items.
import express from "express";

// The columns every items query reads: the health check reads them too, so a schema the code
// cannot use (a dropped column) fails health instead of every user request.
const ITEM_COLUMNS = "id, name, note, created_at";
const MAX_NAME = 200;

/** A fresh readiness state: starting until the database answered and the migrations ran. */
export function newState() {
  return { migrated: false, reachable: null, error: null, applied: [] };
}

/** The Express app on a pg Pool (or anything with query()) and a readiness state. */
export function createApp({ pool, state }) {
  const app = express();
  app.disable("x-powered-by");
  app.use(express.json({ limit: "16kb" }));

  app.get("/api/health", async (req, res) => {
    if (state.error) {
      throw new Error(state.error);
    }
    if (!state.migrated) {
      res.status(503).json({ status: state.reachable === false ? "database unreachable" : "starting" });
      return;
    }
    try {
      await pool.query("SELECT 1");
    } catch {
      res.status(503).json({ status: "database unreachable" });
      return;
    }
    await pool.query(`SELECT ${ITEM_COLUMNS} FROM items LIMIT 0`);
    res.json({ status: "ok", database: "ok" });
  });

  app.get("/api/items", async (req, res) => {
    const { rows } = await pool.query(`SELECT ${ITEM_COLUMNS} FROM items ORDER BY id`);
    res.json(rows);
  });

  app.post("/api/items", async (req, res) => {
    const { name, note = "" } = req.body ?? {};
    if (typeof name !== "string" || !name.trim() || name.length > MAX_NAME || typeof note !== "string") {
      res.status(400).json({ error: `expected {"name": a string of 1-${MAX_NAME} characters, "note": a string}` });
      return;
    }
    const { rows } = await pool.query(
      `INSERT INTO items (name, note) VALUES ($1, $2) RETURNING ${ITEM_COLUMNS}`,
      [name.trim(), note],
    );
    res.status(201).json(rows[0]);
  });

  app.use("/api", (req, res) => {
    res.status(404).json({ error: `no route ${req.method} ${req.originalUrl}` });
  });

  // Express 5 sends a rejected handler here: an error in a route is a 500 with its message, as JSON.
  app.use((err, req, res, next) => {
    if (res.headersSent) {
      next(err);
      return;
    }
    const status = Number.isInteger(err.status) && err.status >= 400 && err.status < 600 ? err.status : 500;
    if (status >= 500) console.error(`${req.method} ${req.originalUrl}: ${err.message}`);
    res.status(status).json({ error: err.message });
  });
  return app;
}
