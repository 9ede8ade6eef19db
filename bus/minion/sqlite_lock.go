package minion

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"
)

// errLostLock: another bridge took the lease over (this one stalled for
// longer than the lease).
var errLostLock = errors.New("minion: another bridge took the SQLite bridge lock over")

// sqliteLock is the lease that makes one bridge the active one of a SQLite
// database: a row of mercury_minion_lock naming its holder and when the
// lease expires. The holder renews it well before then and checks it in
// the transaction that deletes delivered rows, so a bridge that lost it
// deletes nothing. Another bridge takes over once the lease expired, or at
// once when the holder ran on the same host and its process is gone
// (a bridge killed and restarted).
type sqliteLock struct {
	db       *sql.DB
	token    string
	instance string
	host     string
	lease    time.Duration
}

func newSQLiteLock(db *sql.DB, instance string, lease time.Duration) *sqliteLock {
	b := make([]byte, 12)
	rand.Read(b)
	host, _ := os.Hostname()
	return &sqliteLock{db: db, token: hex.EncodeToString(b), instance: instance, host: host, lease: lease}
}

// try takes the lease when it is free; it reports whether this bridge
// holds it, and else who does.
func (l *sqliteLock) try(ctx context.Context) (held bool, holder string, err error) {
	err = sqliteTx(ctx, l.db, func(tx *sql.Tx) error {
		var token, instance, host string
		var pid int
		var expires int64
		err := tx.QueryRowContext(ctx, `SELECT token, instance, host, pid, expires FROM mercury_minion_lock WHERE name = 'bridge'`).
			Scan(&token, &instance, &host, &pid, &expires)
		now := time.Now()
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return fmt.Errorf("failed to read the bridge lock: %w", err)
		case token == l.token, expires < now.UnixMilli():
		case host == l.host && pid != os.Getpid() && !processAlive(pid):
		default:
			holder = instance
			return nil
		}
		_, err = tx.ExecContext(ctx, `INSERT OR REPLACE INTO mercury_minion_lock (name, token, instance, host, pid, since, expires)
			VALUES ('bridge', ?, ?, ?, ?, ?, ?)`, l.token, l.instance, l.host, os.Getpid(),
			now.UTC().Format(time.RFC3339Nano), now.Add(l.lease).UnixMilli())
		if err != nil {
			return fmt.Errorf("failed to take the bridge lock: %w", err)
		}
		held = true
		return nil
	})
	return held, holder, err
}

// renewIn extends the lease inside tx, or fails with errLostLock.
func (l *sqliteLock) renewIn(ctx context.Context, tx *sql.Tx) error {
	res, err := tx.ExecContext(ctx, `UPDATE mercury_minion_lock SET expires = ? WHERE name = 'bridge' AND token = ?`,
		time.Now().Add(l.lease).UnixMilli(), l.token)
	if err != nil {
		return fmt.Errorf("failed to renew the bridge lock: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errLostLock
	}
	return nil
}

func (l *sqliteLock) renew(ctx context.Context) error {
	return sqliteTx(ctx, l.db, func(tx *sql.Tx) error { return l.renewIn(ctx, tx) })
}

// release gives the lease up, so a standby takes over at once.
func (l *sqliteLock) release(ctx context.Context) error {
	_, err := l.db.ExecContext(ctx, `DELETE FROM mercury_minion_lock WHERE name = 'bridge' AND token = ?`, l.token)
	return err
}
