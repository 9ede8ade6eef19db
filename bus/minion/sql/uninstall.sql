-- Removes everything install.sql and schedules.sql created in @schema@,
-- including the outbox and any events still waiting in it.
DO $do$
BEGIN
  IF to_regclass('@schema@.minion_jobs') IS NOT NULL THEN
    DROP TRIGGER IF EXISTS mercury_minion_capture ON @schema@.minion_jobs;
    DROP TRIGGER IF EXISTS mercury_minion_capture_truncate ON @schema@.minion_jobs;
  END IF;
  IF to_regclass('@schema@.minion_schedules') IS NOT NULL THEN
    DROP TRIGGER IF EXISTS mercury_minion_capture ON @schema@.minion_schedules;
    DROP TRIGGER IF EXISTS mercury_minion_capture_truncate ON @schema@.minion_schedules;
  END IF;
  IF to_regclass('@schema@.minion_workers') IS NOT NULL THEN
    DROP TRIGGER IF EXISTS mercury_minion_capture_worker ON @schema@.minion_workers;
  END IF;
END
$do$;
DROP FUNCTION IF EXISTS @schema@.mercury_minion_capture();
DROP FUNCTION IF EXISTS @schema@.mercury_minion_capture_truncate();
DROP FUNCTION IF EXISTS @schema@.mercury_minion_capture_worker();
DROP TABLE IF EXISTS @schema@.mercury_minion_outbox;
DROP TABLE IF EXISTS @schema@.mercury_minion_workers;
DROP TABLE IF EXISTS @schema@.mercury_minion_bridge;
