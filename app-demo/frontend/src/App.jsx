import { useCallback, useEffect, useState } from "react";

// Relative URLs: the page works at / and behind a proxy prefix; server.js forwards api/ to the backend.
const API = "api";

async function call(path, options) {
  const res = await fetch(`${API}/${path}`, options);
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.error || body.status || `HTTP ${res.status}`);
  return body;
}

export default function App() {
  const [health, setHealth] = useState("checking");
  const [items, setItems] = useState([]);
  const [name, setName] = useState("");
  const [note, setNote] = useState("");
  const [error, setError] = useState("");

  const refresh = useCallback(async () => {
    try {
      setHealth((await call("health")).database === "ok" ? "ok" : "degraded");
      setItems(await call("items"));
      setError("");
    } catch (err) {
      setHealth("unavailable");
      setError(err.message);
    }
  }, []);

  useEffect(() => {
    refresh();
  }, [refresh]);

  async function add(event) {
    event.preventDefault();
    try {
      await call("items", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ name, note }),
      });
      setName("");
      setNote("");
      await refresh();
    } catch (err) {
      setError(err.message);
    }
  }

  return (
    <main>
      <h1>app-demo</h1>
      <p>
        backend: <strong>{health}</strong>
      </p>
      {error && <p role="alert">{error}</p>}
      <form onSubmit={add}>
        <input value={name} onChange={(e) => setName(e.target.value)} placeholder="name" required />
        <input value={note} onChange={(e) => setNote(e.target.value)} placeholder="note" />
        <button type="submit">add</button>
      </form>
      <ul>
        {items.map((item) => (
          <li key={item.id}>
            {item.name}
            {item.note && ` — ${item.note}`}
          </li>
        ))}
      </ul>
    </main>
  );
}
