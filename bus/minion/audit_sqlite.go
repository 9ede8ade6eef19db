package minion

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// sqliteAuditTables are the audit log's tables in SQLite; see
// sql/audit.sql for the PostgreSQL twins. Times are stored as UTC RFC 3339
// text of fixed width, so they sort as text.
const sqliteAuditTables = `
CREATE TABLE IF NOT EXISTS mercury_audit_events (
  event_id TEXT PRIMARY KEY,
  seq      INTEGER NOT NULL,
  topic    TEXT NOT NULL,
  type     TEXT NOT NULL,
  job_id   INTEGER,
  task     TEXT,
  queue    TEXT,
  time     TEXT NOT NULL,
  received TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  event    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS mercury_audit_events_job ON mercury_audit_events (job_id, time, seq);
CREATE INDEX IF NOT EXISTS mercury_audit_events_task ON mercury_audit_events (task, time);
CREATE INDEX IF NOT EXISTS mercury_audit_events_type ON mercury_audit_events (type, time);
CREATE INDEX IF NOT EXISTS mercury_audit_events_time ON mercury_audit_events (time, seq);
CREATE TABLE IF NOT EXISTS mercury_audit_cursor (
  topic   TEXT PRIMARY KEY,
  seq     INTEGER NOT NULL,
  updated TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS mercury_audit_gaps (
  id       INTEGER PRIMARY KEY AUTOINCREMENT,
  topic    TEXT NOT NULL,
  from_seq INTEGER NOT NULL,
  to_seq   INTEGER NOT NULL,
  noticed  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE TRIGGER IF NOT EXISTS mercury_audit_append_only_update BEFORE UPDATE ON mercury_audit_events
  BEGIN SELECT RAISE(ABORT, 'mercury_audit_events is append-only: UPDATE refused'); END;
CREATE TRIGGER IF NOT EXISTS mercury_audit_append_only_delete BEFORE DELETE ON mercury_audit_events
  BEGIN SELECT RAISE(ABORT, 'mercury_audit_events is append-only: DELETE refused'); END;
CREATE TRIGGER IF NOT EXISTS mercury_audit_gaps_append_only_update BEFORE UPDATE ON mercury_audit_gaps
  BEGIN SELECT RAISE(ABORT, 'mercury_audit_gaps is append-only: UPDATE refused'); END;
CREATE TRIGGER IF NOT EXISTS mercury_audit_gaps_append_only_delete BEFORE DELETE ON mercury_audit_gaps
  BEGIN SELECT RAISE(ABORT, 'mercury_audit_gaps is append-only: DELETE refused'); END;
`

// sqliteTimeFormat is RFC 3339 of fixed width, so text order is time order.
const sqliteTimeFormat = "2006-01-02T15:04:05.000000000Z"

func sqliteTime(t time.Time) string { return t.UTC().Format(sqliteTimeFormat) }

// sqliteAuditDB is the audit log in a SQLite database.
type sqliteAuditDB struct{ db *sql.DB }

var _ auditDB = (*sqliteAuditDB)(nil)

func (s *sqliteAuditDB) install(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, sqliteAuditTables); err != nil {
		return fmt.Errorf("failed to create the audit tables: %w", err)
	}
	return nil
}

func (s *sqliteAuditDB) cursor(ctx context.Context, topic string) (uint64, error) {
	var seq int64
	err := s.db.QueryRowContext(ctx, `SELECT seq FROM mercury_audit_cursor WHERE topic = ?`, topic).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("failed to read the audit cursor: %w", err)
	}
	return uint64(seq), nil
}

func (s *sqliteAuditDB) store(ctx context.Context, topic string, msgs []Received) (int, error) {
	if len(msgs) == 0 {
		return 0, nil
	}
	stored := 0
	err := sqliteTx(ctx, s.db, func(tx *sql.Tx) error {
		var last uint64
		for _, m := range msgs {
			last = max(last, m.Seq)
			r, err := parseEvent(m.Data)
			if err != nil {
				continue // counted by the caller, who checked first
			}
			res, err := tx.ExecContext(ctx, `INSERT INTO mercury_audit_events (event_id, seq, topic, type, job_id, task, queue, time, event)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING`,
				strings.ToLower(r.EventID), int64(m.Seq), m.Topic, r.Type, r.JobID, r.Task, r.Queue, sqliteTime(*r.Time), string(m.Data))
			if err != nil {
				return err
			}
			n, _ := res.RowsAffected()
			stored += int(n)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO mercury_audit_cursor (topic, seq, updated) VALUES (?, ?, ?)
			ON CONFLICT (topic) DO UPDATE SET seq = excluded.seq, updated = excluded.updated`,
			topic, int64(last), sqliteTime(time.Now()))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("failed to store %d events: %w", len(msgs), err)
	}
	return stored, nil
}

func (s *sqliteAuditDB) gap(ctx context.Context, topic string, from, to uint64) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO mercury_audit_gaps (topic, from_seq, to_seq) VALUES (?, ?, ?)`, topic, int64(from), int64(to))
	if err != nil {
		return fmt.Errorf("failed to record a gap: %w", err)
	}
	return nil
}

func (s *sqliteAuditDB) close(context.Context) { s.db.Close() }

// SQLiteAuditLog reads the audit log kept in a SQLite database.
type SQLiteAuditLog struct{ DB *sql.DB }

// Export writes the selected events as JSON lines, as AuditLog.Export does.
func (l SQLiteAuditLog) Export(ctx context.Context, f ExportFilter, w io.Writer) (int, error) {
	where := []string{"1"}
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, cond)
	}
	if !f.Since.IsZero() {
		add("time >= ?", sqliteTime(f.Since))
	}
	if !f.Until.IsZero() {
		add("time < ?", sqliteTime(f.Until))
	}
	if f.JobID != nil {
		add("job_id = ?", *f.JobID)
	}
	if f.Task != "" {
		add("task = ?", f.Task)
	}
	if f.Queue != "" {
		add("queue = ?", f.Queue)
	}
	if f.Type != "" {
		add("type = ?", f.Type)
	}
	rows, err := l.DB.QueryContext(ctx, `SELECT event FROM mercury_audit_events WHERE `+strings.Join(where, " AND ")+` ORDER BY time, seq`, args...)
	if err != nil {
		return 0, fmt.Errorf("failed to read the audit log: %w", err)
	}
	defer rows.Close()
	return writeEventLines(w, rows)
}

// JobEvents returns one job's events in the order they happened.
func (l SQLiteAuditLog) JobEvents(ctx context.Context, jobID int64) ([]*Event, error) {
	rows, err := l.DB.QueryContext(ctx, `SELECT event FROM mercury_audit_events WHERE job_id = ? ORDER BY time, seq`, jobID)
	if err != nil {
		return nil, fmt.Errorf("failed to read the audit log: %w", err)
	}
	defer rows.Close()
	var out []*Event
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			return nil, fmt.Errorf("failed to read an event: %w", err)
		}
		var e Event
		if err := json.Unmarshal([]byte(raw), &e); err != nil {
			return nil, fmt.Errorf("failed to decode an event of job %d: %w", jobID, err)
		}
		out = append(out, &e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("failed to read the audit log: %w", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w for job %d", ErrNoEvents, jobID)
	}
	return out, nil
}
