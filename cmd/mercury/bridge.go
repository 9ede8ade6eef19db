package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mercury-broker/mercury/bus/minion"
	"github.com/mercury-broker/mercury/cmd/mercury/internal/command"
)

const bridgeUsage = `mercury bridge minion [install|uninstall|status] --pg URL|--sqlite PATH [flags]

  mercury bridge minion install --pg URL     install the outbox and capture triggers (idempotent)
  mercury bridge minion uninstall --pg URL   remove everything install created
  mercury bridge minion status --pg URL      installation, outbox lag, running bridge, last event
  mercury bridge minion --pg URL --broker URL   publish every Minion job change as an event
  (--sqlite PATH instead of --pg URL: Minion on SQLite, Minion::Backend::SQLite)

Run 'mercury bridge minion ACTION --help' for an action's flags.

Examples:
  mercury bridge minion install --pg postgres://minion@db/app
  mercury bridge minion --pg postgres://minion@db/app --broker http://127.0.0.1:3000
  mercury bridge minion status --pg postgres://minion@db/app
  mercury bridge minion --sqlite /media/usb/minion.db --broker http://127.0.0.1:3000`

// runBridge runs `mercury bridge minion …`. Minion is the one kind of
// bridge so far; the kind is a word of its own so others can follow.
func runBridge(ctx context.Context, args []string, io command.Stdio) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(io.Err, "Usage: "+bridgeUsage)
		if len(args) == 0 {
			return command.UsageError("which bridge? (minion)")
		}
		return flag.ErrHelp
	}
	if args[0] != "minion" {
		return command.UsageError("unknown bridge %q: the one bridge is minion", args[0])
	}
	args = args[1:]
	action := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		action, args = args[0], args[1:]
	}
	switch action {
	case "install":
		return runBridgeInstall(ctx, args, io)
	case "uninstall":
		return runBridgeUninstall(ctx, args, io)
	case "status":
		return runBridgeStatus(ctx, args, io)
	case "run":
		return runBridgeMinion(ctx, args, io)
	}
	return command.UsageError("unknown action %q: want install, uninstall or status, or flags to run the bridge", action)
}

// pgFlags are the flags every bridge and audit command takes.
type pgFlags struct {
	url    *string
	schema *string
	sqlite *string
}

func addPGFlags(fs *flag.FlagSet) pgFlags {
	return pgFlags{
		url:    fs.String("pg", os.Getenv("MERCURY_PG"), "PostgreSQL `URL` of Minion's database, e.g. postgres://user@host/db (default $MERCURY_PG)"),
		schema: fs.String("schema", "", "`SCHEMA` of Minion's tables (default: where the search path finds minion_jobs)"),
		sqlite: fs.String("sqlite", "", "`PATH` of Minion's SQLite database, instead of --pg"),
	}
}

// sqlitePath returns --sqlite, or "" when PostgreSQL is meant; both at once
// is a usage error.
func (p pgFlags) sqlitePath(fs *flag.FlagSet) (string, error) {
	if *p.sqlite == "" {
		return "", nil
	}
	if command.Given(fs, "pg") {
		return "", command.UsageError("--pg and --sqlite: give one database")
	}
	if command.Given(fs, "schema") {
		return "", command.UsageError("--schema is for PostgreSQL; a SQLite database has one")
	}
	return *p.sqlite, nil
}

// openSQLite opens the --sqlite database, which must exist; a failure is
// exit code 3.
func openSQLite(path string) (*sql.DB, error) {
	db, err := minion.OpenSQLite(path, true)
	if err != nil {
		return nil, &command.ExitError{Code: command.ExitConnect, Err: err}
	}
	return db, nil
}

// connect opens the --pg database; a failure is exit code 3.
func (p pgFlags) connect(ctx context.Context) (*pgx.Conn, error) {
	if *p.url == "" {
		return nil, command.UsageError("--pg is required: the PostgreSQL URL of Minion's database")
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, *p.url)
	if err != nil {
		return nil, &command.ExitError{Code: command.ExitConnect, Err: fmt.Errorf("failed to connect to PostgreSQL: %w", err)}
	}
	return conn, nil
}

func noArgs(fs *flag.FlagSet) error {
	if fs.NArg() > 0 {
		return command.UsageError("unexpected argument %q", fs.Arg(0))
	}
	if fs.Lookup("pg") != nil {
		return refusePasswordFlag(fs, "pg", "", "MERCURY_PG")
	}
	return nil
}

func runBridgeInstall(ctx context.Context, args []string, io command.Stdio) error {
	fs := command.NewFlagSet("bridge minion install", "--pg URL [--schema SCHEMA] | --sqlite PATH",
		"mercury bridge minion install --pg postgres://minion@db/app",
		"mercury bridge minion install --sqlite /media/usb/minion.db")
	pg := addPGFlags(fs)
	if err := command.ParseFlags(fs, args, io); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	path, err := pg.sqlitePath(fs)
	if err != nil {
		return err
	}
	if path != "" {
		db, err := openSQLite(path)
		if err != nil {
			return err
		}
		defer db.Close()
		if _, err := minion.InstallSQLite(ctx, db); err != nil {
			return err
		}
		fmt.Fprintf(io.Out, "installed in %s: outbox mercury_minion_outbox, triggers on minion_jobs and minion_workers\n", path)
		return nil
	}
	conn, err := pg.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	in, err := minion.Install(ctx, conn, *pg.schema)
	if err != nil {
		return err
	}
	fmt.Fprintf(io.Out, "installed in schema %s: outbox mercury_minion_outbox, triggers on minion_jobs and minion_workers", in.Schema)
	if in.SchedulesTrig {
		fmt.Fprint(io.Out, " and minion_schedules")
	}
	fmt.Fprintln(io.Out)
	return nil
}

func runBridgeUninstall(ctx context.Context, args []string, io command.Stdio) error {
	fs := command.NewFlagSet("bridge minion uninstall", "--pg URL [--schema SCHEMA] | --sqlite PATH [--force]",
		"mercury bridge minion uninstall --pg postgres://minion@db/app")
	pg := addPGFlags(fs)
	force := fs.Bool("force", false, "uninstall even with events still waiting in the outbox (they are lost)")
	if err := command.ParseFlags(fs, args, io); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	path, err := pg.sqlitePath(fs)
	if err != nil {
		return err
	}
	uninstall := func() error { return nil }
	if path != "" {
		db, err := openSQLite(path)
		if err != nil {
			return err
		}
		defer db.Close()
		uninstall = func() error { return minion.UninstallSQLite(ctx, db, *force) }
	} else {
		conn, err := pg.connect(ctx)
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		uninstall = func() error { return minion.Uninstall(ctx, conn, *pg.schema, *force) }
	}
	if err := uninstall(); err != nil {
		if errors.Is(err, minion.ErrPending) {
			return fmt.Errorf("%w (add --force to drop them)", err)
		}
		return err
	}
	fmt.Fprintln(io.Out, "uninstalled")
	return nil
}

func runBridgeStatus(ctx context.Context, args []string, io command.Stdio) error {
	fs := command.NewFlagSet("bridge minion status", "--pg URL [--schema SCHEMA] | --sqlite PATH [--json]",
		"mercury bridge minion status --pg postgres://minion@db/app")
	pg := addPGFlags(fs)
	asJSON := fs.Bool("json", false, "print the status as JSON")
	if err := command.ParseFlags(fs, args, io); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	path, err := pg.sqlitePath(fs)
	if err != nil {
		return err
	}
	var st *minion.Status
	if path != "" {
		db, err := openSQLite(path)
		if err != nil {
			return err
		}
		defer db.Close()
		if st, err = minion.ReadSQLiteStatus(ctx, db); err != nil {
			return err
		}
	} else {
		conn, err := pg.connect(ctx)
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		if st, err = minion.ReadStatus(ctx, conn, *pg.schema); err != nil {
			return err
		}
	}
	if *asJSON {
		enc := json.NewEncoder(io.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	printStatus(io, st)
	if !st.Installation.Outbox {
		return errors.New("the bridge is not installed")
	}
	return nil
}

func printStatus(io command.Stdio, st *minion.Status) {
	in := st.Installation
	yes := func(b bool) string {
		if b {
			return "captured"
		}
		return "NOT captured"
	}
	fmt.Fprintf(io.Out, "schema:     %s\n", in.Schema)
	if !in.Outbox {
		fmt.Fprintln(io.Out, "installed:  no (run: mercury bridge minion install)")
		return
	}
	fmt.Fprintf(io.Out, "installed:  minion_jobs %s, minion_workers %s", yes(in.JobsTrigger), yes(in.WorkersTrigger))
	if in.SchedulesTable {
		fmt.Fprintf(io.Out, ", minion_schedules %s", yes(in.SchedulesTrig))
	}
	fmt.Fprintln(io.Out)
	l := st.Lag
	fmt.Fprintf(io.Out, "outbox:     %d waiting, %d ready to publish", l.Depth, l.Ready)
	if l.Depth > 0 {
		fmt.Fprintf(io.Out, ", oldest %s old", l.OldestAge.Round(time.Millisecond))
	}
	fmt.Fprintln(io.Out)
	if a := st.Active; a != nil {
		fmt.Fprintf(io.Out, "bridge:     running (backend pid %d, %q from %s, since %s)\n", a.PID, a.Application, a.ClientAddr,
			a.Since.UTC().Format(time.RFC3339))
	} else {
		fmt.Fprintln(io.Out, "bridge:     none running")
	}
	if c := st.Cursor; c != nil {
		fmt.Fprintf(io.Out, "published:  %d events; the last, %s (seq %d), by %s at %s\n", c.Published, c.EventID, c.Seq,
			c.Instance, c.Updated.UTC().Format(time.RFC3339))
	} else {
		fmt.Fprintln(io.Out, "published:  nothing yet")
	}
}

// brokerFromEnv gives the audit log and the bridge the defaults of the
// other commands: the broker from MERCURY_URL unless --broker is given,
// and a bearer token from MERCURY_TOKEN unless a header sets
// Authorization.
func brokerFromEnv(fs *flag.FlagSet, broker *string, header *command.HeaderList) {
	if env := os.Getenv("MERCURY_URL"); env != "" && !command.Given(fs, "broker") {
		*broker = env
	}
	token := os.Getenv("MERCURY_TOKEN")
	if token == "" {
		return
	}
	for _, kv := range *header {
		if strings.EqualFold(kv[0], "Authorization") {
			return
		}
	}
	*header = append(*header, [2]string{"Authorization", "Bearer " + token})
}

// httpHeader turns --header flags into an http.Header.
func httpHeader(h command.HeaderList) http.Header {
	out := http.Header{}
	for _, kv := range h {
		out.Add(kv[0], kv[1])
	}
	return out
}

func runBridgeMinion(ctx context.Context, args []string, io command.Stdio) error {
	fs := command.NewFlagSet("bridge minion", "--pg URL|--sqlite PATH --broker URL [flags]",
		"mercury bridge minion --pg postgres://minion@db/app --broker http://127.0.0.1:3000",
		"mercury bridge minion --sqlite /media/usb/minion.db --broker http://127.0.0.1:3000",
		"mercury bridge minion --pg $DB --broker http://mercury:3000 --compat-bus /jobs   # also the old notifier's frames")
	pg := addPGFlags(fs)
	broker := fs.String("broker", "http://127.0.0.1:3000", "the broker's `URL` (http:// or ws://); default from MERCURY_URL")
	topic := fs.String("topic", minion.DefaultTopic, "base `TOPIC` of the events")
	compat := fs.String("compat-bus", "", "also send the old notifier's [id,\"enqueue\"|\"dequeue\"|\"finished\"|\"failed\"] frames to this bus `TOPIC`, e.g. /jobs")
	instance := fs.String("instance", "", "`NAME` of this bridge in events and logs (default host/pid)")
	batch := fs.Int("batch", 500, "most `ROWS` read and published at once")
	maxEvent := fs.Int("max-event-size", minion.DefaultMaxEventSize, "largest event in `BYTES`, the broker's --max-message-size; bigger events have their biggest values cut")
	concurrency := fs.Int("concurrency", 8, "most publish requests in flight (one per job)")
	poll := fs.Duration("poll-interval", 5*time.Second, "how long to wait for a NOTIFY (on SQLite: a change) before looking at the outbox anyway")
	lagEvery := fs.Duration("lag-interval", 10*time.Second, "how often the outbox lag is measured and logged")
	var header command.HeaderList
	fs.Var(&header, "header", "`NAME:VALUE` sent with every request to the broker, e.g. Authorization (repeatable); MERCURY_TOKEN sets a bearer token")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logFormat := fs.String("log-format", "text", "text or json")
	if err := command.ParseFlags(fs, args, io); err != nil {
		return err
	}
	brokerFromEnv(fs, broker, &header)
	if err := noArgs(fs); err != nil {
		return err
	}
	path, err := pg.sqlitePath(fs)
	if err != nil {
		return err
	}
	if path == "" && *pg.url == "" {
		return command.UsageError("--pg or --sqlite is required: Minion's database")
	}
	if path == "" {
		if _, err := pgx.ParseConfig(*pg.url); err != nil {
			return command.UsageError("--pg: %v", err)
		}
	}
	if !strings.HasPrefix(*topic, "/") {
		return command.UsageError("--topic %q: a topic starts with /", *topic)
	}
	logger, err := newLogger(io, *logLevel, *logFormat)
	if err != nil {
		return err
	}
	opts := minion.Options{
		Schema:       *pg.schema,
		Topic:        *topic,
		Instance:     *instance,
		Batch:        *batch,
		MaxEventSize: *maxEvent,
		PollInterval: *poll,
		LagInterval:  *lagEvery,
		Logger:       logger,
	}
	if *compat != "" {
		opts.Compat = &minion.HTTPPublisher{Broker: *broker, Pattern: "bus", Header: httpHeader(header)}
		opts.CompatTopic = *compat
	}
	pub := &minion.HTTPPublisher{Broker: *broker, Header: httpHeader(header), Concurrency: *concurrency}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	b := minion.New(*pg.url, pub, opts)
	if path != "" {
		b = minion.NewSQLite(path, pub, opts)
	}
	if err := b.Run(ctx); err != nil {
		return err
	}
	st := b.Stats()
	logger.Info("minion bridge: stopped", "published", st.Published, "failures", st.Failures)
	return nil
}
