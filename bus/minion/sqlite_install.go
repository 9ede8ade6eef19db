package minion

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
)

// The SQLite capture. SQLite has no procedural triggers, no transaction
// ids and no NOTIFY, so the install writes each trigger from the columns
// minion_jobs has (PRAGMA table_info) and the bridge reads rows in outbox id
// order: SQLite lets one writer at a time hold the database from its first
// write to its commit, so ids are handed out in commit order and no row can
// later appear below one already read.

// sqliteTables are the bridge's own tables; see sql/install.sql for the
// PostgreSQL twins.
const sqliteTables = `
CREATE TABLE IF NOT EXISTS mercury_minion_outbox (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  event_id   TEXT NOT NULL,
  tbl        TEXT NOT NULL,
  op         TEXT NOT NULL,
  row_id     INTEGER,
  old_row    TEXT,
  new_row    TEXT,
  worker     TEXT,
  clock_time TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS mercury_minion_workers (
  id      INTEGER PRIMARY KEY,
  host    TEXT NOT NULL,
  pid     INTEGER NOT NULL,
  started TEXT,
  seen    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
INSERT OR IGNORE INTO mercury_minion_workers (id, host, pid, started) SELECT id, host, pid, started FROM minion_workers;
CREATE TABLE IF NOT EXISTS mercury_minion_bridge (
  name             TEXT PRIMARY KEY,
  instance         TEXT,
  last_event_id    TEXT,
  last_outbox_id   INTEGER,
  last_seq         INTEGER,
  last_change_time TEXT,
  published        INTEGER NOT NULL DEFAULT 0,
  updated          TEXT NOT NULL
);
-- The bridge lock: a lease the active bridge renews (see sqlite_lock.go).
CREATE TABLE IF NOT EXISTS mercury_minion_lock (
  name     TEXT PRIMARY KEY,
  token    TEXT NOT NULL,
  instance TEXT NOT NULL,
  host     TEXT NOT NULL,
  pid      INTEGER NOT NULL,
  since    TEXT NOT NULL,
  expires  INTEGER NOT NULL -- Unix milliseconds
);
`

const sqliteDropTriggers = `
DROP TRIGGER IF EXISTS mercury_minion_capture_insert;
DROP TRIGGER IF EXISTS mercury_minion_capture_update;
DROP TRIGGER IF EXISTS mercury_minion_capture_delete;
DROP TRIGGER IF EXISTS mercury_minion_capture_worker;
`

const sqliteUninstall = sqliteDropTriggers + `
DROP TABLE IF EXISTS mercury_minion_outbox;
DROP TABLE IF EXISTS mercury_minion_workers;
DROP TABLE IF EXISTS mercury_minion_bridge;
DROP TABLE IF EXISTS mercury_minion_lock;
`

// sqliteUUID is a random (version 4) UUID.
const sqliteUUID = `lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-' ||
  substr('89ab', 1 + (abs(random()) % 4), 1) || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6)))`

const sqliteNow = `strftime('%Y-%m-%dT%H:%M:%fZ', 'now')`

// sqliteJSONColumns hold JSON text in Minion's SQLite schema.
var sqliteJSONColumns = map[string]bool{"args": true, "result": true, "notes": true, "parents": true}

// sqliteColumn is the expression that puts column col of row r (NEW or
// OLD) into the row's JSON as PostgreSQL's to_jsonb would: JSON as JSON,
// timestamps in RFC 3339, booleans as booleans.
func sqliteColumn(r, col string) string {
	v := r + `."` + col + `"`
	switch {
	case sqliteJSONColumns[col]:
		return `CASE WHEN json_valid(` + v + `) THEN json(` + v + `) ELSE ` + v + ` END`
	case timeColumns[col]:
		return `COALESCE(strftime('%Y-%m-%dT%H:%M:%fZ', ` + v + `), ` + v + `)`
	case col == "lax":
		return `CASE WHEN ` + v + ` IS NULL THEN NULL WHEN ` + v + ` THEN json('true') ELSE json('false') END`
	}
	return v
}

func sqliteRow(r string, cols []string) string {
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = `'` + c + `', ` + sqliteColumn(r, c)
	}
	return `json_object(` + strings.Join(parts, ", ") + `)`
}

// sqliteWorker is the worker of row r as it is now, or as it registered
// when its row is gone (see mercury_minion_workers in sql/install.sql).
func sqliteWorker(r string) string {
	return `CASE WHEN ` + r + `.worker IS NULL THEN NULL ELSE COALESCE(
    (SELECT json_object('id', w.id, 'host', w.host, 'pid', w.pid) FROM minion_workers AS w WHERE w.id = ` + r + `.worker),
    (SELECT json_object('id', c.id, 'host', c.host, 'pid', c.pid, 'gone', json('true')) FROM mercury_minion_workers AS c WHERE c.id = ` + r + `.worker),
    json_object('id', ` + r + `.worker, 'gone', json('true'))) END`
}

func sqliteTriggers(cols []string) string {
	insert := func(op, oldRow, newRow, r string) string {
		return `INSERT INTO mercury_minion_outbox (event_id, tbl, op, row_id, old_row, new_row, worker, clock_time)
    VALUES (` + sqliteUUID + `, 'minion_jobs', '` + op + `', ` + r + `.id, ` + oldRow + `, ` + newRow + `, ` + sqliteWorker(r) + `, ` + sqliteNow + `);`
	}
	var changed []string
	for _, c := range cols {
		changed = append(changed, `OLD."`+c+`" IS NOT NEW."`+c+`"`)
	}
	return `
CREATE TRIGGER mercury_minion_capture_insert AFTER INSERT ON minion_jobs BEGIN
  ` + insert("INSERT", "NULL", sqliteRow("NEW", cols), "NEW") + `
END;
CREATE TRIGGER mercury_minion_capture_update AFTER UPDATE ON minion_jobs
  WHEN ` + strings.Join(changed, " OR ") + ` BEGIN
  ` + insert("UPDATE", sqliteRow("OLD", cols), sqliteRow("NEW", cols), "NEW") + `
END;
CREATE TRIGGER mercury_minion_capture_delete AFTER DELETE ON minion_jobs BEGIN
  ` + insert("DELETE", sqliteRow("OLD", cols), "NULL", "OLD") + `
END;
CREATE TRIGGER mercury_minion_capture_worker AFTER INSERT ON minion_workers BEGIN
  INSERT INTO mercury_minion_workers (id, host, pid, started) VALUES (NEW.id, NEW.host, NEW.pid, NEW.started)
    ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid, started = excluded.started, seen = ` + sqliteNow + `;
END;
`
}

func sqliteColumns(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, table string) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT name FROM pragma_table_info(?)`, table)
	if err != nil {
		return nil, fmt.Errorf("failed to read the columns of %s: %w", table, err)
	}
	defer rows.Close()
	var cols []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, err
		}
		if strings.ContainsAny(c, `"'`) {
			return nil, fmt.Errorf("column %q of %s: quotes in a column name are not supported", c, table)
		}
		cols = append(cols, c)
	}
	slices.Sort(cols)
	return cols, rows.Err()
}

// InstallSQLite adds, idempotently and in one transaction, the outbox, the
// bridge's tables and the capture triggers to Minion's SQLite database.
// Installing again after a Minion upgrade that changed minion_jobs writes
// the triggers for its new columns.
func InstallSQLite(ctx context.Context, db *sql.DB) (*Installation, error) {
	ok, err := sqliteTableExists(ctx, db, "minion_jobs")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: start Minion once against this database so it creates its tables", ErrNoMinion)
	}
	err = sqliteTx(ctx, db, func(tx *sql.Tx) error {
		cols, err := sqliteColumns(ctx, tx, "minion_jobs")
		if err != nil {
			return err
		}
		for _, stmt := range []string{sqliteTables, sqliteDropTriggers, sqliteTriggers(cols)} {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("failed to install the bridge: %w", err)
	}
	return InspectSQLite(ctx, db)
}

// UninstallSQLite removes everything InstallSQLite created. With events
// still waiting in the outbox it refuses (ErrPending) unless force is set.
func UninstallSQLite(ctx context.Context, db *sql.DB, force bool) error {
	return sqliteTx(ctx, db, func(tx *sql.Tx) error {
		outbox, err := sqliteTableExists(ctx, tx, "mercury_minion_outbox")
		if err != nil {
			return err
		}
		if outbox && !force {
			var n int64
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM mercury_minion_outbox`).Scan(&n); err != nil {
				return fmt.Errorf("failed to count the outbox: %w", err)
			}
			if n > 0 {
				return fmt.Errorf("%w (%d): run the bridge until they are published, or uninstall with force to drop them", ErrPending, n)
			}
		}
		if _, err := tx.ExecContext(ctx, sqliteUninstall); err != nil {
			return fmt.Errorf("failed to uninstall the bridge: %w", err)
		}
		return nil
	})
}

// InspectSQLite reports what of the bridge is installed (Schema is
// "main").
func InspectSQLite(ctx context.Context, db *sql.DB) (*Installation, error) {
	in := &Installation{Schema: "main"}
	ok, err := sqliteTableExists(ctx, db, "minion_jobs")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: start Minion once against this database so it creates its tables", ErrNoMinion)
	}
	if in.Outbox, err = sqliteTableExists(ctx, db, "mercury_minion_outbox"); err != nil {
		return nil, err
	}
	if in.SchedulesTable, err = sqliteTableExists(ctx, db, "minion_schedules"); err != nil {
		return nil, err
	}
	var n int
	err = db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'minion_jobs'
		AND name IN ('mercury_minion_capture_insert', 'mercury_minion_capture_update', 'mercury_minion_capture_delete')`).Scan(&n)
	if err != nil {
		return nil, fmt.Errorf("failed to look for the triggers: %w", err)
	}
	in.JobsTrigger = n == 3
	err = db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name = 'mercury_minion_capture_worker'`).Scan(&n)
	if err != nil {
		return nil, fmt.Errorf("failed to look for the triggers: %w", err)
	}
	in.WorkersTrigger = n == 1
	// Minion's SQLite backend has no schedules: nothing to capture there.
	in.SchedulesTrig = in.SchedulesTable
	return in, nil
}
