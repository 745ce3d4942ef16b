// A stand-in for pg.Pool in the route tests: answers queries from a handler, records what was asked.
export function fakePool(handler) {
  const pool = {
    queries: [],
    async query(text, params) {
      pool.queries.push({ text, params });
      return handler(text, params);
    },
  };
  return pool;
}
