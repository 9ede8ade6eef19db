-- The audit log: every Minion event the bridge published, kept once, never
-- changed. Idempotent; runs in one transaction (see InstallAudit).

CREATE TABLE IF NOT EXISTS @schema@.mercury_audit_events (
  event_id UUID PRIMARY KEY,        -- one row per event, however often it was delivered
  seq      BIGINT NOT NULL,         -- the broker's sequence number of the first delivery
  topic    TEXT NOT NULL,
  type     TEXT NOT NULL,
  job_id   BIGINT,
  task     TEXT,
  queue    TEXT,
  time     TIMESTAMPTZ NOT NULL,    -- when the change happened
  received TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
  event    JSONB NOT NULL
);
CREATE INDEX IF NOT EXISTS mercury_audit_events_job ON @schema@.mercury_audit_events (job_id, time, seq);
CREATE INDEX IF NOT EXISTS mercury_audit_events_task ON @schema@.mercury_audit_events (task, time);
CREATE INDEX IF NOT EXISTS mercury_audit_events_type ON @schema@.mercury_audit_events (type, time);
CREATE INDEX IF NOT EXISTS mercury_audit_events_time ON @schema@.mercury_audit_events (time, seq);

-- Where each subscription resumes: the sequence number of the last message
-- stored, written in the same transaction as the events.
CREATE TABLE IF NOT EXISTS @schema@.mercury_audit_cursor (
  topic   TEXT PRIMARY KEY,
  seq     BIGINT NOT NULL,
  updated TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Ranges the broker said it no longer had when the logger resumed.
CREATE TABLE IF NOT EXISTS @schema@.mercury_audit_gaps (
  id       BIGSERIAL PRIMARY KEY,
  topic    TEXT NOT NULL,
  from_seq BIGINT NOT NULL,
  to_seq   BIGINT NOT NULL,
  noticed  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Append-only: events and gaps are never changed or deleted.
CREATE OR REPLACE FUNCTION @schema@.mercury_audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
  RAISE EXCEPTION '%.% is append-only: % refused', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$fn$;
DROP TRIGGER IF EXISTS mercury_audit_append_only ON @schema@.mercury_audit_events;
CREATE TRIGGER mercury_audit_append_only BEFORE UPDATE OR DELETE ON @schema@.mercury_audit_events
  FOR EACH ROW EXECUTE FUNCTION @schema@.mercury_audit_append_only();
DROP TRIGGER IF EXISTS mercury_audit_append_only_truncate ON @schema@.mercury_audit_events;
CREATE TRIGGER mercury_audit_append_only_truncate BEFORE TRUNCATE ON @schema@.mercury_audit_events
  FOR EACH STATEMENT EXECUTE FUNCTION @schema@.mercury_audit_append_only();
DROP TRIGGER IF EXISTS mercury_audit_append_only ON @schema@.mercury_audit_gaps;
CREATE TRIGGER mercury_audit_append_only BEFORE UPDATE OR DELETE ON @schema@.mercury_audit_gaps
  FOR EACH ROW EXECUTE FUNCTION @schema@.mercury_audit_append_only();
