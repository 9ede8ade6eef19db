package minion

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
)

// AuditLog is the audit tables of one schema: mercury_audit_events (one
// row per event id, append-only), mercury_audit_cursor and
// mercury_audit_gaps.
type AuditLog struct {
	schema string
	events string // quoted schema.table names
	cursor string
	gaps   string
}

// NewAuditLog returns the audit log in schema ("" means public).
func NewAuditLog(schema string) (*AuditLog, error) {
	if schema == "" {
		schema = "public"
	}
	if !schemaName.MatchString(schema) {
		return nil, fmt.Errorf("schema %q: want a plain identifier (letters, digits, underscores)", schema)
	}
	return &AuditLog{
		schema: schema,
		events: pgx.Identifier{schema, "mercury_audit_events"}.Sanitize(),
		cursor: pgx.Identifier{schema, "mercury_audit_cursor"}.Sanitize(),
		gaps:   pgx.Identifier{schema, "mercury_audit_gaps"}.Sanitize(),
	}, nil
}

// Install creates the audit tables, idempotently.
func (l *AuditLog) Install(ctx context.Context, db Beginner) error {
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('mercury_audit_install'))`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, sqlFile("audit.sql", l.schema))
		return err
	})
	if err != nil {
		return fmt.Errorf("failed to create the audit tables in schema %s: %w", l.schema, err)
	}
	return nil
}

// Cursor returns the sequence number after which the subscription to topic
// resumes: that of the last message stored, 0 when none.
func (l *AuditLog) Cursor(ctx context.Context, q Querier, topic string) (uint64, error) {
	var seq int64
	err := q.QueryRow(ctx, `SELECT seq FROM `+l.cursor+` WHERE topic = $1`, topic).Scan(&seq)
	if err == pgx.ErrNoRows {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("failed to read the audit cursor: %w", err)
	}
	return uint64(seq), nil
}

// Received is one message from the subscription.
type Received struct {
	Seq   uint64
	Topic string
	Time  time.Time // the broker's time
	Data  json.RawMessage
}

// auditRow is what the audit log indexes of an event.
type auditRow struct {
	EventID string     `json:"event_id"`
	Type    string     `json:"type"`
	JobID   *int64     `json:"job_id"`
	Task    *string    `json:"task"`
	Queue   *string    `json:"queue"`
	Time    *time.Time `json:"time"`
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// parseEvent checks that data is an event the log can index.
func parseEvent(data json.RawMessage) (auditRow, error) {
	var r auditRow
	if err := json.Unmarshal(data, &r); err != nil {
		return r, fmt.Errorf("not a JSON object: %w", err)
	}
	if !uuidRE.MatchString(r.EventID) {
		return r, fmt.Errorf("event_id %q is not a UUID", r.EventID)
	}
	if r.Type == "" {
		return r, fmt.Errorf("event %s has no type", r.EventID)
	}
	if r.Time == nil {
		return r, fmt.Errorf("event %s has no time", r.EventID)
	}
	return r, nil
}

// Store writes msgs, in one transaction with the cursor (the highest seq
// of msgs, invalid messages included). An event already stored, by event
// id, is skipped. It returns how many events were new.
func (l *AuditLog) Store(ctx context.Context, db Beginner, topic string, msgs []Received) (int, error) {
	if len(msgs) == 0 {
		return 0, nil
	}
	var last uint64
	batch := &pgx.Batch{}
	for _, m := range msgs {
		last = max(last, m.Seq)
		r, err := parseEvent(m.Data)
		if err != nil {
			continue // counted by the caller, who checked first
		}
		batch.Queue(`INSERT INTO `+l.events+` (event_id, seq, topic, type, job_id, task, queue, time, event)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (event_id) DO NOTHING`,
			r.EventID, int64(m.Seq), m.Topic, r.Type, r.JobID, r.Task, r.Queue, *r.Time, m.Data)
	}
	batch.Queue(`INSERT INTO `+l.cursor+` (topic, seq, updated) VALUES ($1, $2, now())
		ON CONFLICT (topic) DO UPDATE SET seq = EXCLUDED.seq, updated = now()`, topic, int64(last))
	stored := 0
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		stored = 0
		res := tx.SendBatch(ctx, batch)
		for i := range batch.Len() {
			tag, err := res.Exec()
			if err != nil {
				res.Close()
				return err
			}
			if i < batch.Len()-1 { // the last is the cursor
				stored += int(tag.RowsAffected())
			}
		}
		return res.Close()
	})
	if err != nil {
		return 0, fmt.Errorf("failed to store %d events: %w", len(msgs), err)
	}
	return stored, nil
}

// Gap records that the broker no longer had messages from to to.
func (l *AuditLog) Gap(ctx context.Context, q Querier, topic string, from, to uint64) error {
	_, err := q.Exec(ctx, `INSERT INTO `+l.gaps+` (topic, from_seq, to_seq) VALUES ($1, $2, $3)`, topic, int64(from), int64(to))
	if err != nil {
		return fmt.Errorf("failed to record a gap: %w", err)
	}
	return nil
}
