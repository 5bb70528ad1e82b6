-- sidecache demo schema and data (loaded by scripts/quickstart.sh).
-- Two orgs, a few users each, global feature flags, per-org config, and a
-- month of events for the dashboard aggregation. Safe to run twice.
BEGIN;

CREATE TABLE IF NOT EXISTS orgs (
  id         uuid PRIMARY KEY,
  name       text NOT NULL,
  plan       text NOT NULL DEFAULT 'free',
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS users (
  id           uuid NOT NULL,
  org_id       uuid NOT NULL REFERENCES orgs(id),
  email        text NOT NULL,
  display_name text NOT NULL,
  role         text NOT NULL DEFAULT 'member',
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (org_id, id)
);

CREATE TABLE IF NOT EXISTS feature_flags (
  name            text PRIMARY KEY,
  enabled         boolean NOT NULL,
  rollout_percent integer NOT NULL DEFAULT 100,
  description     text
);

CREATE TABLE IF NOT EXISTS org_config (
  org_id     uuid PRIMARY KEY REFERENCES orgs(id),
  settings   jsonb NOT NULL DEFAULT '{}',
  seat_limit integer,
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS events (
  id          bigserial PRIMARY KEY,
  org_id      uuid NOT NULL REFERENCES orgs(id),
  user_id     uuid,
  kind        text NOT NULL,
  occurred_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS events_org_time ON events (org_id, occurred_at);

-- Tasks of projects: cached per project (project_tasks) and one by one
-- (task), both tagged "project:<id>", so a write to a task flushes its
-- project's list and every task of that project (docs/invalidation.md, "Tags").
CREATE TABLE IF NOT EXISTS tasks (
  id         bigint NOT NULL,
  org_id     uuid NOT NULL REFERENCES orgs(id),
  project_id bigint NOT NULL,
  title      text NOT NULL,
  done       boolean NOT NULL DEFAULT false,
  PRIMARY KEY (org_id, id)
);
CREATE INDEX IF NOT EXISTS tasks_project ON tasks (org_id, project_id);

INSERT INTO orgs (id, name, plan) VALUES
  ('11111111-1111-1111-1111-111111111111', 'Acme Corp', 'business'),
  ('22222222-2222-2222-2222-222222222222', 'Globex', 'free')
ON CONFLICT (id) DO NOTHING;

-- The same user id exists in both orgs, with different data: a cache key
-- without the tenant would leak one org's user to the other.
INSERT INTO users (id, org_id, email, display_name, role) VALUES
  ('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '11111111-1111-1111-1111-111111111111', 'ada@acme.example', 'Ada Lovelace', 'admin'),
  ('bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb', '11111111-1111-1111-1111-111111111111', 'grace@acme.example', 'Grace Hopper', 'member'),
  ('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '22222222-2222-2222-2222-222222222222', 'hank@globex.example', 'Hank Scorpio', 'owner'),
  ('cccccccc-cccc-cccc-cccc-cccccccccccc', '22222222-2222-2222-2222-222222222222', 'homer@globex.example', 'Homer S. — ☢ Safety', 'member')
ON CONFLICT DO NOTHING;

INSERT INTO feature_flags (name, enabled, rollout_percent, description) VALUES
  ('new_dashboard', true, 50, 'The redesigned dashboard'),
  ('sso', true, 100, 'Single sign-on for business plans'),
  ('beta_reports', false, 0, NULL)
ON CONFLICT (name) DO NOTHING;

INSERT INTO org_config (org_id, settings, seat_limit) VALUES
  ('11111111-1111-1111-1111-111111111111', '{"theme": "dark", "locale": "en", "sso": {"provider": "okta"}}', 250),
  ('22222222-2222-2222-2222-222222222222', '{"theme": "light", "locale": "fr"}', 5)
ON CONFLICT (org_id) DO NOTHING;

-- Both orgs have a project 42 with a task 1: tags are per tenant.
INSERT INTO tasks (id, org_id, project_id, title) VALUES
  (1, '11111111-1111-1111-1111-111111111111', 42, 'Ship the cache'),
  (2, '11111111-1111-1111-1111-111111111111', 42, 'Write the docs'),
  (3, '11111111-1111-1111-1111-111111111111', 7, 'Plan the launch'),
  (1, '22222222-2222-2222-2222-222222222222', 42, 'Globex task one')
ON CONFLICT DO NOTHING;

INSERT INTO events (org_id, user_id, kind, occurred_at)
SELECT CASE WHEN g % 3 = 0 THEN '22222222-2222-2222-2222-222222222222'::uuid
            ELSE '11111111-1111-1111-1111-111111111111'::uuid END,
       CASE WHEN g % 2 = 0 THEN 'aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa'::uuid
            ELSE 'bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb'::uuid END,
       (ARRAY['login', 'export', 'invite'])[1 + (g / 3) % 3],
       now() - (g % 40) * interval '1 day' - (g % 24) * interval '1 hour'
FROM generate_series(1, 20000) AS g
WHERE NOT EXISTS (SELECT 1 FROM events LIMIT 1);

COMMIT;
