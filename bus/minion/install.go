package minion

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

//go:embed sql/install.sql sql/schedules.sql sql/uninstall.sql sql/audit.sql
var sqlFiles embed.FS

// Sentinel errors.
var (
	// ErrNoMinion: the database has no minion_jobs table where we looked.
	ErrNoMinion = errors.New("minion: no minion_jobs table")
	// ErrNotInstalled: the bridge's outbox and triggers are missing.
	ErrNotInstalled = errors.New("minion: the bridge is not installed")
	// ErrPending: uninstall would drop events still waiting in the outbox.
	ErrPending = errors.New("minion: events are still waiting in the outbox")
	// ErrConfig: a setting cannot work (say, a malformed PostgreSQL URL).
	ErrConfig = errors.New("minion: bad configuration")
	// ErrPostgresVersion: the server is older than PostgreSQL 13.
	ErrPostgresVersion = errors.New("minion: PostgreSQL 13 or later is needed")
)

// Querier runs SQL; *pgx.Conn, *pgxpool.Pool and pgx.Tx satisfy it.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Beginner starts transactions; *pgx.Conn and *pgxpool.Pool satisfy it.
type Beginner interface {
	Querier
	Begin(ctx context.Context) (pgx.Tx, error)
}

var schemaName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// sqlFile returns the embedded SQL file name with @schema@ replaced by the
// quoted schema.
func sqlFile(name, schema string) string {
	b, err := sqlFiles.ReadFile("sql/" + name)
	if err != nil {
		panic(err) // embedded: cannot happen
	}
	return strings.ReplaceAll(string(b), "@schema@", pgx.Identifier{schema}.Sanitize())
}

// ResolveSchema returns schema when it is set, after checking it is a plain
// identifier; otherwise the schema of the minion_jobs table the search path
// finds.
func ResolveSchema(ctx context.Context, q Querier, schema string) (string, error) {
	if schema != "" {
		if !schemaName.MatchString(schema) {
			return "", fmt.Errorf("schema %q: want a plain identifier (letters, digits, underscores)", schema)
		}
		return schema, nil
	}
	var found *string
	err := q.QueryRow(ctx, `SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.oid = to_regclass('minion_jobs')`).Scan(&found)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && found == nil) {
		var path string
		if err := q.QueryRow(ctx, `SELECT current_setting('search_path')`).Scan(&path); err != nil {
			return "", fmt.Errorf("failed to read the search path: %w", err)
		}
		return "", fmt.Errorf("%w in the search path (%s): start Minion once against this database so it creates its tables, or name the schema", ErrNoMinion, path)
	}
	if err != nil {
		return "", fmt.Errorf("failed to find minion_jobs: %w", err)
	}
	if !schemaName.MatchString(*found) {
		return "", fmt.Errorf("minion_jobs is in schema %q, which is not a plain identifier", *found)
	}
	return *found, nil
}

func checkVersion(ctx context.Context, q Querier) error {
	var num int
	if err := q.QueryRow(ctx, `SELECT current_setting('server_version_num')::INT`).Scan(&num); err != nil {
		return fmt.Errorf("failed to read the server version: %w", err)
	}
	if num < 130000 {
		return fmt.Errorf("%w (the server is %d)", ErrPostgresVersion, num)
	}
	return nil
}

func tableExists(ctx context.Context, q Querier, schema, table string) (bool, error) {
	var ok bool
	err := q.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`,
		pgx.Identifier{schema, table}.Sanitize()).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("failed to look for %s.%s: %w", schema, table, err)
	}
	return ok, nil
}

// Install creates, idempotently and in one transaction, the outbox, the
// bridge's tables and the capture triggers on minion_jobs, minion_workers
// and (where it exists) minion_schedules. schema "" means the schema of the
// minion_jobs table the search path finds. Installing again after a Minion
// upgrade that added minion_schedules adds its triggers.
func Install(ctx context.Context, db Beginner, schema string) (*Installation, error) {
	if err := checkVersion(ctx, db); err != nil {
		return nil, err
	}
	schema, err := ResolveSchema(ctx, db, schema)
	if err != nil {
		return nil, err
	}
	ok, err := tableExists(ctx, db, schema, "minion_jobs")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w in schema %s: start Minion once against this database so it creates its tables", ErrNoMinion, schema)
	}
	err = pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		// Two installs at once would race on CREATE TABLE IF NOT EXISTS.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('mercury_minion_install'))`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, sqlFile("install.sql", schema)); err != nil {
			return err
		}
		schedules, err := tableExists(ctx, tx, schema, "minion_schedules")
		if err != nil {
			return err
		}
		if schedules {
			if _, err := tx.Exec(ctx, sqlFile("schedules.sql", schema)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("failed to install the bridge in schema %s: %w", schema, err)
	}
	return Inspect(ctx, db, schema)
}

// Uninstall removes everything Install created. With events still waiting
// in the outbox it refuses (ErrPending) unless force is set.
func Uninstall(ctx context.Context, db Beginner, schema string, force bool) error {
	schema, err := ResolveSchema(ctx, db, schema)
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('mercury_minion_install'))`); err != nil {
			return fmt.Errorf("failed to lock: %w", err)
		}
		outbox, err := tableExists(ctx, tx, schema, "mercury_minion_outbox")
		if err != nil {
			return err
		}
		if outbox && !force {
			var n int64
			q := `SELECT count(*) FROM ` + pgx.Identifier{schema, "mercury_minion_outbox"}.Sanitize()
			if err := tx.QueryRow(ctx, q).Scan(&n); err != nil {
				return fmt.Errorf("failed to count the outbox: %w", err)
			}
			if n > 0 {
				return fmt.Errorf("%w (%d): run the bridge until they are published, or uninstall with force to drop them", ErrPending, n)
			}
		}
		if _, err := tx.Exec(ctx, sqlFile("uninstall.sql", schema)); err != nil {
			return fmt.Errorf("failed to uninstall the bridge from schema %s: %w", schema, err)
		}
		return nil
	})
}

// Installation says what of the bridge is installed in a schema.
type Installation struct {
	Schema         string `json:"schema"`
	Outbox         bool   `json:"outbox"`          // the outbox table exists
	JobsTrigger    bool   `json:"jobs_trigger"`    // minion_jobs is captured
	WorkersTrigger bool   `json:"workers_trigger"` // minion_workers is remembered
	SchedulesTable bool   `json:"schedules_table"` // minion_schedules exists (Minion 12)
	SchedulesTrig  bool   `json:"schedules_trigger"`
}

// Complete reports whether everything the schema needs is installed.
func (in *Installation) Complete() bool {
	return in.Outbox && in.JobsTrigger && in.WorkersTrigger && (!in.SchedulesTable || in.SchedulesTrig)
}

// Inspect reports what of the bridge is installed in schema ("" as in
// Install).
func Inspect(ctx context.Context, q Querier, schema string) (*Installation, error) {
	schema, err := ResolveSchema(ctx, q, schema)
	if err != nil {
		return nil, err
	}
	in := &Installation{Schema: schema}
	if in.Outbox, err = tableExists(ctx, q, schema, "mercury_minion_outbox"); err != nil {
		return nil, err
	}
	if in.SchedulesTable, err = tableExists(ctx, q, schema, "minion_schedules"); err != nil {
		return nil, err
	}
	trigger := func(table, name string) (bool, error) {
		var ok bool
		err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_trigger
			WHERE tgrelid = to_regclass($1) AND tgname = $2 AND NOT tgisinternal)`,
			pgx.Identifier{schema, table}.Sanitize(), name).Scan(&ok)
		if err != nil {
			return false, fmt.Errorf("failed to look for trigger %s on %s: %w", name, table, err)
		}
		return ok, nil
	}
	if in.JobsTrigger, err = trigger("minion_jobs", "mercury_minion_capture"); err != nil {
		return nil, err
	}
	if in.WorkersTrigger, err = trigger("minion_workers", "mercury_minion_capture_worker"); err != nil {
		return nil, err
	}
	if in.SchedulesTable {
		if in.SchedulesTrig, err = trigger("minion_schedules", "mercury_minion_capture"); err != nil {
			return nil, err
		}
	}
	return in, nil
}
