-- Benchmark data: 200,000 documents of one tenant, each answering about
-- 1 KiB of JSON ({"id":N,"body":"xxx..."}).
DROP TABLE IF EXISTS bench_docs;
CREATE TABLE bench_docs (
  org_id uuid NOT NULL,
  id integer NOT NULL,
  body text NOT NULL,
  PRIMARY KEY (org_id, id)
);
INSERT INTO bench_docs
SELECT '11111111-1111-1111-1111-111111111111', g, repeat('x', 1000)
FROM generate_series(1, 200000) AS g;
ANALYZE bench_docs;
