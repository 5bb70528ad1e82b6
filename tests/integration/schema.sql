-- Test-only tables, loaded after config/examples/schema.sql.
CREATE TABLE IF NOT EXISTS type_zoo (
  id        int PRIMARY KEY,
  n_int     bigint,
  n_num     numeric,
  n_float   double precision,
  flag      boolean,
  nothing   text,
  at        timestamptz,
  doc       jsonb,
  raw       json,
  uid       uuid,
  label     text,
  tags      text[]
);
INSERT INTO type_zoo VALUES
  (1, 9007199254740993, 12345678901234567890.5, 1.5e-7, true, NULL, '2024-02-29 12:34:56.789+00',
   '{"nested": {"a": [1, 2, {"b": null}]}}', '[1, "two", false]', 'aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa',
   E'quote " backslash \\ newline \n tab \t emoji 🚀 cjk 漢字 nul-free', ARRAY['x', 'y:z'])
ON CONFLICT (id) DO NOTHING;

-- Tenant isolation under cancellation: 40 tenants x 25 keys, every row
-- naming its own tenant, identical keys across tenants.
CREATE TABLE IF NOT EXISTS tenant_rows (
  org_id uuid NOT NULL,
  k      int NOT NULL,
  PRIMARY KEY (org_id, k)
);
INSERT INTO tenant_rows
SELECT ('00000000-0000-0000-0000-' || lpad(t::text, 12, '0'))::uuid, k
FROM generate_series(1, 40) t, generate_series(1, 25) k
ON CONFLICT DO NOTHING;
