package minion

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// sqliteSource is the outbox of a SQLite database. Rows are read in id
// order (see sqlite_install.go); Ack deletes them only while this bridge
// still holds the lock, in the same transaction.
type sqliteSource struct {
	db   *sql.DB
	lock *sqliteLock
}

var _ source = (*sqliteSource)(nil)

func (s *sqliteSource) Next(ctx context.Context, limit int) ([]Change, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, event_id, tbl, op, row_id, old_row, new_row, worker, clock_time
		FROM mercury_minion_outbox ORDER BY id LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("failed to read the outbox: %w", err)
	}
	defer rows.Close()
	var out []Change
	size := 0
	for size < maxBatchBytes && rows.Next() {
		var c Change
		var old, new, worker sql.NullString
		var clock string
		if err := rows.Scan(&c.ID, &c.EventID, &c.Table, &c.Op, &c.RowID, &old, &new, &worker, &clock); err != nil {
			return nil, fmt.Errorf("failed to read an outbox row: %w", err)
		}
		c.OrderKey, c.TxID = uint64(c.ID), uint64(c.ID)
		if c.ClockTime, err = time.Parse(time.RFC3339Nano, clock); err != nil {
			return nil, fmt.Errorf("outbox row %d: time %q: %w", c.ID, clock, err)
		}
		c.TxTime = c.ClockTime
		c.Old, c.New, c.Worker = sqliteJSON(old), sqliteJSON(new), sqliteJSON(worker)
		if c.Op == "UPDATE" {
			if c.Changed, err = changedColumns(c.Old, c.New); err != nil {
				return nil, fmt.Errorf("outbox row %d: %w", c.ID, err)
			}
		}
		out = append(out, c)
		size += len(old.String) + len(new.String)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("failed to read the outbox: %w", err)
	}
	return out, nil
}

func sqliteJSON(s sql.NullString) json.RawMessage {
	if !s.Valid {
		return nil
	}
	return json.RawMessage(s.String)
}

// changedColumns lists, sorted, the columns whose value differs between
// two rows (PostgreSQL's capture function computes the same in SQL).
func changedColumns(old, new json.RawMessage) ([]string, error) {
	var o, n map[string]json.RawMessage
	if err := json.Unmarshal(old, &o); err != nil {
		return nil, fmt.Errorf("the old row is not a JSON object: %w", err)
	}
	if err := json.Unmarshal(new, &n); err != nil {
		return nil, fmt.Errorf("the new row is not a JSON object: %w", err)
	}
	var ch []string
	for k, v := range n {
		if ov, ok := o[k]; !ok || string(ov) != string(v) {
			ch = append(ch, k)
		}
	}
	slices.Sort(ch)
	return ch, nil
}

func (s *sqliteSource) Ack(ctx context.Context, ids []int64, c Change, seq uint64) error {
	return sqliteTx(ctx, s.db, func(tx *sql.Tx) error {
		// The fence: a bridge whose lease another took over deletes nothing.
		if err := s.lock.renewIn(ctx, tx); err != nil {
			return err
		}
		args := make([]any, len(ids))
		for i, id := range ids {
			args[i] = id
		}
		q := `DELETE FROM mercury_minion_outbox WHERE id IN (?` + strings.Repeat(", ?", len(ids)-1) + `)`
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("failed to delete %d delivered rows from the outbox: %w", len(ids), err)
		}
		now := time.Now().UTC().Format(time.RFC3339Nano)
		_, err := tx.ExecContext(ctx, `INSERT INTO mercury_minion_bridge (name, instance, last_event_id, last_outbox_id,
				last_seq, last_change_time, published, updated) VALUES ('bridge', ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET instance = excluded.instance, last_event_id = excluded.last_event_id,
				last_outbox_id = excluded.last_outbox_id, last_seq = excluded.last_seq,
				last_change_time = excluded.last_change_time, published = published + excluded.published,
				updated = excluded.updated`,
			s.lock.instance, c.EventID, c.ID, int64(seq), c.ClockTime.UTC().Format(time.RFC3339Nano), len(ids), now)
		if err != nil {
			return fmt.Errorf("failed to record the cursor: %w", err)
		}
		return nil
	})
}

func (s *sqliteSource) Lag(ctx context.Context) (Lag, error) { return sqliteLag(ctx, s.db) }

func sqliteLag(ctx context.Context, db *sql.DB) (Lag, error) {
	var l Lag
	var oldest sql.NullString
	err := db.QueryRowContext(ctx, `SELECT count(*), min(clock_time) FROM mercury_minion_outbox`).Scan(&l.Depth, &oldest)
	if err != nil {
		return Lag{}, fmt.Errorf("failed to measure the outbox: %w", err)
	}
	l.Ready = l.Depth // every committed row is readable at once
	if oldest.Valid {
		t, err := time.Parse(time.RFC3339Nano, oldest.String)
		if err == nil {
			l.Oldest = &t
			l.OldestAge = time.Since(t)
		}
	}
	return l, nil
}
