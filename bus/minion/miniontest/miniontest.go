// Package miniontest gives tests a real PostgreSQL database of their own
// and a real Minion to drive it: driver.pl, run with Debian's
// libminion-perl and libmojo-pg-perl.
//
// Each test gets a fresh database, mercury_minion_<random>, dropped when
// the test ends, so tests and developers working at the same time never
// collide. Without PostgreSQL or Perl's Minion the tests are skipped,
// except when the environment variable CI is set, where they fail.
package miniontest

import (
	"bytes"
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

//go:embed driver.pl
var driver []byte

// AdminURL is the PostgreSQL URL used to create and drop the test
// databases: $MERCURY_TEST_PG, or postgres://postgres@127.0.0.1:5432/test.
func AdminURL() string {
	if u := os.Getenv("MERCURY_TEST_PG"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// missing skips t, or fails it when CI is set.
func missing(t testing.TB, what string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal(what)
	}
	t.Skip(what)
}

// NewDatabase creates an empty database for t and returns its URL; the
// database is dropped when t ends.
func NewDatabase(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		missing(t, "PostgreSQL is needed at "+AdminURL()+" (set MERCURY_TEST_PG): "+err.Error())
	}
	defer admin.Close(context.Background())
	b := make([]byte, 6)
	rand.Read(b)
	name := "mercury_minion_" + hex.EncodeToString(b)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("failed to create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admin, err := pgx.Connect(ctx, AdminURL())
		if err != nil {
			t.Errorf("failed to connect to drop %s: %v", name, err)
			return
		}
		defer admin.Close(context.Background())
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("failed to drop %s: %v", name, err)
		}
	})
	u, err := url.Parse(AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// Connect opens a connection to dbURL, closed when t ends.
func Connect(t testing.TB, dbURL string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("failed to connect to %s: %v", dbURL, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

var (
	minionOnce sync.Once
	minionErr  string
)

// RequireMinion skips t (fails it in CI) unless perl with Minion and
// Mojo::Pg is installed.
func RequireMinion(t testing.TB) {
	t.Helper()
	minionOnce.Do(func() {
		out, err := exec.Command("perl", "-MMinion", "-MMojo::Pg", "-e", "print $Minion::VERSION").CombinedOutput()
		if err != nil {
			minionErr = "Perl's Minion and Mojo::Pg are needed (apt-get install libminion-perl libmojo-pg-perl): " +
				err.Error() + ": " + string(bytes.TrimSpace(out))
		}
	})
	if minionErr != "" {
		missing(t, minionErr)
	}
}

// MinionDSN returns dbURL in the form Mojo::Pg takes.
func MinionDSN(dbURL string) string {
	if strings.HasPrefix(dbURL, "sqlite:") {
		return dbURL
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		return dbURL
	}
	u.Scheme = "postgresql"
	u.RawQuery = ""
	return u.String()
}

func driverPath(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "driver.pl")
	if err := os.WriteFile(p, driver, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Perl runs driver.pl against dbURL with args and decodes the JSON line it
// prints into v (when v is not nil).
func Perl(t testing.TB, dbURL string, v any, args ...string) {
	t.Helper()
	requireFor(t, dbURL)
	cmd := exec.Command("perl", append([]string{driverPath(t), MinionDSN(dbURL)}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("driver.pl %v: %v\n%s%s", args, err, stdout.String(), stderr.String())
	}
	if v == nil {
		return
	}
	lines := bytes.Split(bytes.TrimSpace(stdout.Bytes()), []byte("\n"))
	if err := json.Unmarshal(lines[len(lines)-1], v); err != nil {
		t.Fatalf("driver.pl %v printed %q: %v", args, stdout.String(), err)
	}
}

// Process is driver.pl running in the background.
type Process struct {
	Cmd    *exec.Cmd
	Stdout bytes.Buffer
	Stderr bytes.Buffer
	done   chan struct{}
	err    error
}

// Start runs driver.pl against dbURL with args in the background; it is
// killed when t ends if still running.
func Start(t testing.TB, dbURL string, args ...string) *Process {
	t.Helper()
	requireFor(t, dbURL)
	p := &Process{done: make(chan struct{})}
	p.Cmd = exec.Command("perl", append([]string{driverPath(t), MinionDSN(dbURL)}, args...)...)
	p.Cmd.Stdout, p.Cmd.Stderr = &p.Stdout, &p.Stderr
	if err := p.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.Cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Cmd.Process.Kill()
		<-p.done
	})
	return p
}

// Wait waits up to timeout for the process to exit successfully.
func (p *Process) Wait(t testing.TB, timeout time.Duration) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("driver.pl %v still running after %s:\n%s", p.Cmd.Args[2:], timeout, p.Stderr.String())
	}
	if p.err != nil {
		t.Fatalf("driver.pl %v: %v\n%s%s", p.Cmd.Args[2:], p.err, p.Stdout.String(), p.Stderr.String())
	}
}

// NewMinionDatabase creates a database (see NewDatabase) and lets Minion
// create its tables in it.
func NewMinionDatabase(t testing.TB) string {
	t.Helper()
	RequireMinion(t)
	db := NewDatabase(t)
	Perl(t, db, nil, "migrate")
	return db
}

// WaitFor polls cond every 10ms for up to 30s.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var (
	sqliteOnce sync.Once
	sqliteErr  string
)

// RequireMinionSQLite skips t (fails it in CI) unless perl with Minion's
// SQLite backend is installed.
func RequireMinionSQLite(t testing.TB) {
	t.Helper()
	sqliteOnce.Do(func() {
		out, err := exec.Command("perl", "-MMinion", "-MMinion::Backend::SQLite", "-e", "print $Minion::VERSION").CombinedOutput()
		if err != nil {
			sqliteErr = "Perl's Minion and its SQLite backend are needed (apt-get install libminion-perl libminion-backend-sqlite-perl): " +
				err.Error() + ": " + string(bytes.TrimSpace(out))
		}
	})
	if sqliteErr != "" {
		missing(t, sqliteErr)
	}
}

func requireFor(t testing.TB, dbURL string) {
	t.Helper()
	if strings.HasPrefix(dbURL, "sqlite:") {
		RequireMinionSQLite(t)
	} else {
		RequireMinion(t)
	}
}

// NewSQLiteMinion creates a SQLite database in a temporary directory, lets
// Minion create its tables in it, and returns its path. driver.pl takes it
// as "sqlite:" + path (see SQLiteDSN).
func NewSQLiteMinion(t testing.TB) string {
	t.Helper()
	RequireMinionSQLite(t)
	path := filepath.Join(t.TempDir(), "minion.db")
	Perl(t, SQLiteDSN(path), nil, "migrate")
	return path
}

// SQLiteDSN is the database name driver.pl takes for a SQLite file.
func SQLiteDSN(path string) string { return "sqlite:" + path }
