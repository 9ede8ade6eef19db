package minion

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Status is the bridge's state as the database shows it, for
// `mercury bridge minion status` and monitoring.
type Status struct {
	Installation *Installation `json:"installation"`
	Lag          *Lag          `json:"lag,omitempty"`    // nil when not installed
	Active       *ActiveBridge `json:"active,omitempty"` // nil when no bridge holds the outbox
	Cursor       *Cursor       `json:"cursor,omitempty"` // nil before the first event
}

// ActiveBridge is the session of the bridge that holds the outbox.
type ActiveBridge struct {
	PID         int32     `json:"pid"`
	Application string    `json:"application"`
	ClientAddr  string    `json:"client_addr"`
	Since       time.Time `json:"since"`
}

// Cursor is the last event the broker confirmed.
type Cursor struct {
	Instance   string    `json:"instance"`
	EventID    string    `json:"event_id"`
	Seq        int64     `json:"seq"`
	ChangeTime time.Time `json:"change_time"`
	Published  int64     `json:"published"` // in total
	Updated    time.Time `json:"updated"`
}

// ApplicationName is the application_name of the bridge's connections.
const ApplicationName = "mercury bridge minion"

// ReadStatus reads the bridge's state in schema ("" as in Install).
func ReadStatus(ctx context.Context, q Querier, schema string) (*Status, error) {
	in, err := Inspect(ctx, q, schema)
	if err != nil {
		return nil, err
	}
	st := &Status{Installation: in}
	if !in.Outbox {
		return st, nil
	}
	lag, err := NewOutbox(in.Schema).Lag(ctx, q)
	if err != nil {
		return nil, err
	}
	st.Lag = &lag
	var a ActiveBridge
	err = q.QueryRow(ctx, `SELECT a.pid, a.application_name, COALESCE(host(a.client_addr), ''), a.backend_start
		FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		  AND l.classid::INT = hashtext('mercury_minion_bridge') AND l.objid::INT = hashtext($1) AND l.objsubid = 2`,
		in.Schema).Scan(&a.PID, &a.Application, &a.ClientAddr, &a.Since)
	switch {
	case err == nil:
		st.Active = &a
	case !errors.Is(err, pgx.ErrNoRows):
		return nil, fmt.Errorf("failed to look for a running bridge: %w", err)
	}
	var c Cursor
	err = q.QueryRow(ctx, `SELECT COALESCE(instance, ''), COALESCE(last_event_id::TEXT, ''), COALESCE(last_seq, 0),
			COALESCE(last_change_time, 'epoch'), published, updated
		FROM `+pgx.Identifier{in.Schema, "mercury_minion_bridge"}.Sanitize()+` WHERE name = 'bridge'`).
		Scan(&c.Instance, &c.EventID, &c.Seq, &c.ChangeTime, &c.Published, &c.Updated)
	switch {
	case err == nil:
		st.Cursor = &c
	case !errors.Is(err, pgx.ErrNoRows):
		return nil, fmt.Errorf("failed to read the cursor: %w", err)
	}
	return st, nil
}
