-- Capture triggers for minion_schedules (Minion 12's cron schedules), run by
-- Install when that table exists in @schema@.
DROP TRIGGER IF EXISTS mercury_minion_capture ON @schema@.minion_schedules;
CREATE TRIGGER mercury_minion_capture AFTER INSERT OR UPDATE OR DELETE ON @schema@.minion_schedules
  FOR EACH ROW EXECUTE FUNCTION @schema@.mercury_minion_capture();
DROP TRIGGER IF EXISTS mercury_minion_capture_truncate ON @schema@.minion_schedules;
CREATE TRIGGER mercury_minion_capture_truncate AFTER TRUNCATE ON @schema@.minion_schedules
  FOR EACH STATEMENT EXECUTE FUNCTION @schema@.mercury_minion_capture_truncate();
