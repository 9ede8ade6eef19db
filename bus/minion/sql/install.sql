-- Installs the Mercury bridge's outbox and capture triggers next to Minion's
-- tables, in schema @schema@. Idempotent: running it again replaces the
-- functions and triggers and keeps the tables and their rows. It runs in one
-- transaction (see Install), so a half-installed bridge never exists.
--
-- Needs PostgreSQL 13 or later (xid8, pg_current_xact_id, gen_random_uuid).

-- The outbox: one row per change to a Minion row, written by the capture
-- triggers in the same transaction as the change, deleted by the bridge once
-- the broker confirmed the event built from it.
CREATE TABLE IF NOT EXISTS @schema@.mercury_minion_outbox (
  id          BIGSERIAL PRIMARY KEY,
  -- The order in which the bridge reads rows (see the comment in the capture
  -- function and outbox.go): the writing transaction's id, raised to the key
  -- of the same row's previous change when that is higher.
  order_key   XID8 NOT NULL,
  event_id    UUID NOT NULL DEFAULT gen_random_uuid(),
  txid        XID8 NOT NULL,
  tbl         TEXT NOT NULL,
  op          TEXT NOT NULL,
  row_id      BIGINT,
  old_row     JSONB,
  new_row     JSONB,
  changed     TEXT[],
  worker      JSONB,
  tx_time     TIMESTAMPTZ NOT NULL,
  clock_time  TIMESTAMPTZ NOT NULL,
  db_user     TEXT NOT NULL,
  application TEXT,
  client_addr INET,
  backend_pid INT NOT NULL,
  query       TEXT
);
CREATE INDEX IF NOT EXISTS mercury_minion_outbox_order ON @schema@.mercury_minion_outbox (order_key, id);
CREATE INDEX IF NOT EXISTS mercury_minion_outbox_row ON @schema@.mercury_minion_outbox (tbl, row_id, id);
CREATE INDEX IF NOT EXISTS mercury_minion_outbox_truncate ON @schema@.mercury_minion_outbox (tbl, order_key)
  WHERE op = 'TRUNCATE';

-- Workers as they were seen: Minion deletes a worker's row when it stops or
-- when repair finds it missing, often before the job it held fails with
-- "Worker went away". The capture function falls back to this table so such
-- an event still names the worker's host and pid.
CREATE TABLE IF NOT EXISTS @schema@.mercury_minion_workers (
  id      BIGINT PRIMARY KEY,
  host    TEXT NOT NULL,
  pid     INT NOT NULL,
  started TIMESTAMPTZ,
  seen    TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO @schema@.mercury_minion_workers (id, host, pid, started)
  SELECT id, host, pid, started FROM @schema@.minion_workers
  ON CONFLICT (id) DO NOTHING;

-- The bridge's cursor and counters, one row per bridge name.
CREATE TABLE IF NOT EXISTS @schema@.mercury_minion_bridge (
  name             TEXT PRIMARY KEY,
  instance         TEXT,
  last_event_id    UUID,
  last_order_key   XID8,
  last_outbox_id   BIGINT,
  last_seq         BIGINT,
  last_change_time TIMESTAMPTZ,
  published        BIGINT NOT NULL DEFAULT 0,
  updated          TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Row changes of minion_jobs and minion_schedules.
CREATE OR REPLACE FUNCTION @schema@.mercury_minion_capture() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  old_j  JSONB;
  new_j  JSONB;
  rid    BIGINT;
  wid    BIGINT;
  w      JSONB;
  k      XID8 := pg_current_xact_id();
  prev   XID8;
  ch     TEXT[];
  oid    BIGINT;
BEGIN
  IF TG_OP <> 'INSERT' THEN old_j := to_jsonb(OLD); END IF;
  IF TG_OP <> 'DELETE' THEN new_j := to_jsonb(NEW); END IF;
  rid := (COALESCE(new_j, old_j)->>'id')::BIGINT;

  IF TG_OP = 'UPDATE' THEN
    SELECT array_agg(n.key ORDER BY n.key) INTO ch
      FROM jsonb_each(new_j) AS n WHERE n.value IS DISTINCT FROM old_j->n.key;
    IF ch IS NULL THEN
      RETURN NULL; -- nothing changed: no transition to report
    END IF;
  END IF;

  -- Order key. Rows are read in (order_key, id) order, and only once their
  -- order_key is below the oldest transaction still running, so no row can
  -- later appear before one already read. Transaction ids are handed out
  -- when a transaction first writes, not when it commits, so a transaction
  -- with a lower id can change a row after a transaction with a higher id
  -- changed and committed it (it waited for the row lock). Raising the key
  -- to the previous change's key keeps one row's changes in the order they
  -- happened. This query sees that previous change: the row lock made this
  -- transaction wait for it to commit, and each statement of a volatile
  -- function takes a fresh snapshot under READ COMMITTED (under stricter
  -- isolation the conflicting write fails instead).
  IF TG_OP = 'INSERT' THEN
    -- A row inserted after a TRUNCATE of its table comes after it.
    SELECT o.order_key INTO prev FROM @schema@.mercury_minion_outbox AS o
      WHERE o.tbl = TG_TABLE_NAME AND o.op = 'TRUNCATE' ORDER BY o.order_key DESC LIMIT 1;
  ELSE
    SELECT o.order_key INTO prev FROM @schema@.mercury_minion_outbox AS o
      WHERE o.tbl = TG_TABLE_NAME AND o.row_id = rid ORDER BY o.id DESC LIMIT 1;
  END IF;
  IF prev IS NOT NULL AND prev > k THEN k := prev; END IF;

  -- The worker as it is now: Minion may delete its row before the bridge
  -- reads this one.
  IF TG_TABLE_NAME = 'minion_jobs' THEN
    wid := (COALESCE(new_j, old_j)->>'worker')::BIGINT;
    IF wid IS NOT NULL THEN
      SELECT jsonb_build_object('id', mw.id, 'host', mw.host, 'pid', mw.pid) INTO w
        FROM @schema@.minion_workers AS mw WHERE mw.id = wid;
      IF w IS NULL THEN
        SELECT jsonb_build_object('id', cw.id, 'host', cw.host, 'pid', cw.pid, 'gone', true) INTO w
          FROM @schema@.mercury_minion_workers AS cw WHERE cw.id = wid;
      END IF;
      IF w IS NULL THEN
        w := jsonb_build_object('id', wid, 'gone', true);
      END IF;
    END IF;
  END IF;

  INSERT INTO @schema@.mercury_minion_outbox (order_key, txid, tbl, op, row_id, old_row, new_row, changed, worker,
      tx_time, clock_time, db_user, application, client_addr, backend_pid, query)
    VALUES (k, pg_current_xact_id(), TG_TABLE_NAME, TG_OP, rid, old_j, new_j, ch, w,
      now(), clock_timestamp(), session_user, current_setting('application_name', true), inet_client_addr(),
      pg_backend_pid(), left(current_query(), 2000))
    RETURNING id INTO oid;
  -- The id only: a wake-up for the bridge, which reads the row itself
  -- (NOTIFY payloads are capped at 8000 bytes).
  PERFORM pg_notify('mercury_minion', oid::TEXT);
  RETURN NULL;
END
$fn$;

-- TRUNCATE of minion_jobs or minion_schedules (Minion's reset).
CREATE OR REPLACE FUNCTION @schema@.mercury_minion_capture_truncate() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  k    XID8 := pg_current_xact_id();
  prev XID8;
  oid  BIGINT;
BEGIN
  -- TRUNCATE holds an ACCESS EXCLUSIVE lock, so every earlier writer of the
  -- table has finished and its rows are visible: come after all of them.
  SELECT o.order_key INTO prev FROM @schema@.mercury_minion_outbox AS o
    WHERE o.tbl = TG_TABLE_NAME ORDER BY o.order_key DESC LIMIT 1;
  IF prev IS NOT NULL AND prev > k THEN k := prev; END IF;
  INSERT INTO @schema@.mercury_minion_outbox (order_key, txid, tbl, op, tx_time, clock_time, db_user, application,
      client_addr, backend_pid, query)
    VALUES (k, pg_current_xact_id(), TG_TABLE_NAME, 'TRUNCATE', now(), clock_timestamp(), session_user,
      current_setting('application_name', true), inet_client_addr(), pg_backend_pid(), left(current_query(), 2000))
    RETURNING id INTO oid;
  PERFORM pg_notify('mercury_minion', oid::TEXT);
  RETURN NULL;
END
$fn$;

-- Remembers each worker when it registers (see mercury_minion_workers).
CREATE OR REPLACE FUNCTION @schema@.mercury_minion_capture_worker() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
  INSERT INTO @schema@.mercury_minion_workers (id, host, pid, started)
    VALUES (NEW.id, NEW.host, NEW.pid, NEW.started)
    ON CONFLICT (id) DO UPDATE SET host = EXCLUDED.host, pid = EXCLUDED.pid, started = EXCLUDED.started, seen = now();
  RETURN NULL;
END
$fn$;

DROP TRIGGER IF EXISTS mercury_minion_capture ON @schema@.minion_jobs;
CREATE TRIGGER mercury_minion_capture AFTER INSERT OR UPDATE OR DELETE ON @schema@.minion_jobs
  FOR EACH ROW EXECUTE FUNCTION @schema@.mercury_minion_capture();
DROP TRIGGER IF EXISTS mercury_minion_capture_truncate ON @schema@.minion_jobs;
CREATE TRIGGER mercury_minion_capture_truncate AFTER TRUNCATE ON @schema@.minion_jobs
  FOR EACH STATEMENT EXECUTE FUNCTION @schema@.mercury_minion_capture_truncate();
DROP TRIGGER IF EXISTS mercury_minion_capture_worker ON @schema@.minion_workers;
CREATE TRIGGER mercury_minion_capture_worker AFTER INSERT ON @schema@.minion_workers
  FOR EACH ROW EXECUTE FUNCTION @schema@.mercury_minion_capture_worker();
