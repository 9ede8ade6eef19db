package minion

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// Change is one outbox row: one insert, update or delete of a Minion row,
// or one truncate of a Minion table, as the capture trigger recorded it in
// the same transaction.
type Change struct {
	ID          int64           // outbox id (assigned when the change happened)
	OrderKey    uint64          // the reading order, see Outbox
	EventID     string          // UUID, fixed once: a repeat carries the same one
	TxID        uint64          // the writing transaction
	Table       string          // minion_jobs or minion_schedules
	Op          string          // INSERT, UPDATE, DELETE or TRUNCATE
	RowID       *int64          // the job's (or schedule's) id; nil for TRUNCATE
	Old, New    json.RawMessage // the row before and after, as to_jsonb made it; nil when absent
	Changed     []string        // the columns an UPDATE changed
	Worker      json.RawMessage // {"id","host","pid"[,"gone"]} of the job's worker at that moment
	TxTime      time.Time       // the transaction's start (now())
	ClockTime   time.Time       // the moment of the change (clock_timestamp())
	User        string          // session_user
	Application string          // application_name
	ClientAddr  string          // inet_client_addr(), "" for a Unix socket
	BackendPID  int32
	Query       string // the statement, at most 2,000 characters
}

// Outbox reads the outbox of one schema.
//
// Reading order. Outbox ids come from a sequence, in the order changes
// happen, but transactions commit in another order: reading "id > last id"
// would skip a row whose transaction committed after a higher id had been
// read. So rows are read in order_key order instead, and only rows whose
// order_key is below the xmin of pg_current_snapshot(), the oldest
// transaction still running. Every transaction below that horizon has
// finished and its rows are visible; every transaction that is running or
// starts later has an id at or above it, so every row it will ever write
// gets an order_key at or above it too. Hence once a row is read, no row can
// appear before it: nothing is skipped, and the order is stable. A row's
// order_key is its transaction's id, raised to the key of the same row's
// previous change when that is higher (see the capture function): two
// changes of one job are always read in the order they happened, even when
// the later one came from a transaction with a lower id.
//
// Rows are consumed by deleting them (Delete), after the broker confirmed
// them; a row read again after a crash carries the same event id.
//
// The price of the horizon: a transaction that stays open delays every row
// written after it started, even in another database. The lag (Lag) shows it.
type Outbox struct {
	schema string
	table  string // quoted schema.table
}

// NewOutbox returns the outbox of schema, which must be a resolved plain
// identifier (see ResolveSchema).
func NewOutbox(schema string) *Outbox {
	return &Outbox{schema: schema, table: pgx.Identifier{schema, "mercury_minion_outbox"}.Sanitize()}
}

// Schema returns the schema the outbox lives in.
func (o *Outbox) Schema() string { return o.schema }

const changeColumns = `id, order_key::TEXT, event_id::TEXT, txid::TEXT, tbl, op, row_id, old_row, new_row,
	changed, worker, tx_time, clock_time, db_user, COALESCE(application, ''),
	COALESCE(host(client_addr), ''), backend_pid, COALESCE(query, '')`

// maxBatchBytes bounds the rows Next holds at once: jobs with megabytes of
// arguments or results would otherwise make a batch of gigabytes.
const maxBatchBytes = 16 << 20

// Next returns up to limit rows that are safe to read, in reading order
// (fewer when their rows add up to more than 16 MiB).
func (o *Outbox) Next(ctx context.Context, q Querier, limit int) ([]Change, error) {
	rows, err := q.Query(ctx, `SELECT `+changeColumns+` FROM `+o.table+`
		WHERE order_key < pg_snapshot_xmin(pg_current_snapshot())
		ORDER BY order_key, id LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("failed to read the outbox: %w", err)
	}
	defer rows.Close()
	var out []Change
	size := 0
	for size < maxBatchBytes && rows.Next() {
		var c Change
		var orderKey, txid string
		var old, new, worker []byte
		err := rows.Scan(&c.ID, &orderKey, &c.EventID, &txid, &c.Table, &c.Op, &c.RowID, &old, &new,
			&c.Changed, &worker, &c.TxTime, &c.ClockTime, &c.User, &c.Application, &c.ClientAddr, &c.BackendPID, &c.Query)
		if err != nil {
			return nil, fmt.Errorf("failed to read an outbox row: %w", err)
		}
		if c.OrderKey, err = strconv.ParseUint(orderKey, 10, 64); err != nil {
			return nil, fmt.Errorf("outbox row %d: order key %q: %w", c.ID, orderKey, err)
		}
		if c.TxID, err = strconv.ParseUint(txid, 10, 64); err != nil {
			return nil, fmt.Errorf("outbox row %d: transaction id %q: %w", c.ID, txid, err)
		}
		c.Old, c.New, c.Worker = nullJSON(old), nullJSON(new), nullJSON(worker)
		out = append(out, c)
		size += len(old) + len(new) + len(c.Query)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("failed to read the outbox: %w", err)
	}
	return out, nil
}

func nullJSON(b []byte) json.RawMessage {
	if b == nil {
		return nil
	}
	return json.RawMessage(b)
}

// Delete removes the rows with these ids: their events were delivered.
func (o *Outbox) Delete(ctx context.Context, q Querier, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	if _, err := q.Exec(ctx, `DELETE FROM `+o.table+` WHERE id = ANY($1)`, ids); err != nil {
		return fmt.Errorf("failed to delete %d delivered rows from the outbox: %w", len(ids), err)
	}
	return nil
}

// Lag is how far the bridge is behind.
type Lag struct {
	Depth     int64         `json:"depth"`      // rows waiting in the outbox
	Ready     int64         `json:"ready"`      // of those, rows below the horizon (readable now)
	OldestAge time.Duration `json:"oldest_age"` // age of the oldest waiting change; 0 when empty
	Oldest    *time.Time    `json:"oldest,omitempty"`
}

// Lag measures the outbox. It counts every row, so call it from time to
// time rather than per event.
func (o *Outbox) Lag(ctx context.Context, q Querier) (Lag, error) {
	var l Lag
	var age *float64
	err := q.QueryRow(ctx, `SELECT count(*),
			count(*) FILTER (WHERE order_key < pg_snapshot_xmin(pg_current_snapshot())),
			min(clock_time), EXTRACT(EPOCH FROM clock_timestamp() - min(clock_time))::FLOAT8
		FROM `+o.table).Scan(&l.Depth, &l.Ready, &l.Oldest, &age)
	if err != nil {
		return Lag{}, fmt.Errorf("failed to measure the outbox: %w", err)
	}
	if age != nil {
		l.OldestAge = time.Duration(*age * float64(time.Second))
	}
	return l, nil
}
