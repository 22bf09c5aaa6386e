-- Presence schema of docs/design.md §5.

CREATE TABLE instances (
  id           uuid PRIMARY KEY,
  hostname     text NOT NULL,
  pid          integer NOT NULL,
  started_at   timestamptz NOT NULL DEFAULT now(),
  heartbeat_at timestamptz NOT NULL DEFAULT now(),
  stopped_at   timestamptz,
  -- Number of presence batches this instance has committed; NOTIFY payloads carry it so that
  -- listeners can tell a missed notification from a late one.
  seq          bigint NOT NULL DEFAULT 0
);

CREATE TABLE users (
  id            text PRIMARY KEY,
  name          text NOT NULL,
  first_seen_at timestamptz NOT NULL DEFAULT now(),
  last_seen_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sessions (
  id              uuid PRIMARY KEY,
  user_id         text NOT NULL REFERENCES users (id),
  instance_id     uuid NOT NULL REFERENCES instances (id),
  protocol        text NOT NULL CHECK (protocol IN ('json', 'text')),
  remote_addr     text,
  user_agent      text,
  connected_at    timestamptz NOT NULL,
  disconnected_at timestamptz,
  close_code      integer,
  close_reason    text
);

CREATE INDEX sessions_open_by_instance ON sessions (instance_id) WHERE disconnected_at IS NULL;
CREATE INDEX sessions_open_by_user ON sessions (user_id) WHERE disconnected_at IS NULL;
CREATE INDEX sessions_by_user_recent ON sessions (user_id, connected_at DESC);
CREATE INDEX instances_live ON instances (heartbeat_at) WHERE stopped_at IS NULL;

-- The original project's table name, now a view that is exact by construction.
CREATE VIEW connected_users AS
  SELECT s.user_id, u.name, count(*)::int AS sessions, min(s.connected_at) AS connected_at
  FROM sessions s
  JOIN users u ON u.id = s.user_id
  WHERE s.disconnected_at IS NULL
  GROUP BY s.user_id, u.name;
