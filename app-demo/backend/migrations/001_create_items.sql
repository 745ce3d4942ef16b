-- The demo app's one table: items written and read through /api/items.
CREATE TABLE items (
    id         serial PRIMARY KEY,
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
