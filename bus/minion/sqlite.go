package minion

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"strings"

	_ "modernc.org/sqlite" // the pure-Go driver: the binary stays static
)

// SQLiteBusyTimeout is how long a statement of the bridge or the audit log
// waits for another connection's write lock before it fails, in
// milliseconds. Minion's own connections (DBD::SQLite) wait 30 s.
const SQLiteBusyTimeout = 10000

// OpenSQLite opens the SQLite database at path in WAL mode (readers never
// block Minion's writers) with a busy timeout, and write transactions that
// take the write lock at BEGIN, so that a transaction never fails half-way
// for a lock another connection took first. Commits are synchronous=NORMAL:
// a power cut may undo the last ones, which repeats events under the same
// ids rather than losing any, and saves an fsync per acknowledgement. When mustExist is set, a
// missing file is an error rather than a new empty database.
func OpenSQLite(path string, mustExist bool) (*sql.DB, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: no SQLite database path", ErrConfig)
	}
	if mustExist {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("%w: the SQLite database: %w", ErrNoMinion, err)
		}
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", SQLiteBusyTimeout))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_txlock", "immediate")
	dsn := "file:" + strings.ReplaceAll(path, "?", "%3F") + "?" + q.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("failed to open %s: %w", path, err)
	}
	if err := db.PingContext(context.Background()); err != nil {
		db.Close()
		return nil, fmt.Errorf("failed to open %s: %w", path, err)
	}
	return db, nil
}

// sqliteTx runs f in one write transaction.
func sqliteTx(ctx context.Context, db *sql.DB, f func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

func sqliteTableExists(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, name string) (bool, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, name).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("failed to look for table %s: %w", name, err)
	}
	return n > 0, nil
}
