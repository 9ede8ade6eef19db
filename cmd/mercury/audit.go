package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mercury-broker/mercury/bus/minion"
	"github.com/mercury-broker/mercury/cmd/mercury/internal/command"
)

// runAudit runs `mercury audit` (the logger), `mercury audit export` and
// `mercury audit job`.
func runAudit(ctx context.Context, args []string, io command.Stdio) error {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "export":
			return runAuditExport(ctx, args[1:], io)
		case "job":
			return runAuditJob(ctx, args[1:], io)
		}
		return command.UsageError("unknown audit command %q: want export or job, or flags to run the logger", args[0])
	}
	return runAuditLog(ctx, args, io)
}

// auditFlags are the flags every audit command takes.
func addAuditPGFlags(fs *flag.FlagSet) pgFlags {
	p := addPGFlags(fs)
	fs.Lookup("pg").Usage = "PostgreSQL `URL` of the audit log's database (default $MERCURY_PG)"
	fs.Lookup("schema").Usage = "`SCHEMA` of the audit tables"
	fs.Lookup("schema").DefValue = "public"
	fs.Lookup("sqlite").Usage = "`PATH` of a SQLite file for the audit log, instead of --pg (created when missing)"
	*p.schema = "public"
	return p
}

// auditReader reads the audit log in PostgreSQL or SQLite.
type auditReader struct {
	export    func(minion.ExportFilter, io.Writer) (int, error)
	jobEvents func(int64) ([]*minion.Event, error)
	close     func()
}

// openAuditLog opens the audit log --pg or --sqlite names.
func openAuditLog(ctx context.Context, fs *flag.FlagSet, pg pgFlags) (*auditReader, error) {
	path, err := pg.sqlitePath(fs)
	if err != nil {
		return nil, err
	}
	if path != "" {
		db, err := openSQLite(path)
		if err != nil {
			return nil, err
		}
		l := minion.SQLiteAuditLog{DB: db}
		return &auditReader{
			export:    func(f minion.ExportFilter, w io.Writer) (int, error) { return l.Export(ctx, f, w) },
			jobEvents: func(id int64) ([]*minion.Event, error) { return l.JobEvents(ctx, id) },
			close:     func() { db.Close() },
		}, nil
	}
	l, err := minion.NewAuditLog(*pg.schema)
	if err != nil {
		return nil, command.UsageError("%v", err)
	}
	conn, err := pg.connect(ctx)
	if err != nil {
		return nil, err
	}
	return &auditReader{
		export:    func(f minion.ExportFilter, w io.Writer) (int, error) { return l.Export(ctx, conn, f, w) },
		jobEvents: func(id int64) ([]*minion.Event, error) { return l.JobEvents(ctx, conn, id) },
		close:     func() { conn.Close(context.Background()) },
	}, nil
}

func runAuditLog(ctx context.Context, args []string, io command.Stdio) error {
	fs := command.NewFlagSet("audit", "--pg URL|--sqlite PATH [--broker URL] [--topic TOPIC] [flags]",
		"mercury audit --pg postgres://audit@db/audit --broker ws://127.0.0.1:3000 --topic /audit/minion",
		"mercury audit --sqlite /media/usb/audit.db --broker ws://127.0.0.1:3000",
		"mercury audit export --pg $DB --since 24h > events.jsonl",
		"mercury audit job --pg $DB 1234")
	pg := addAuditPGFlags(fs)
	broker := fs.String("broker", "ws://127.0.0.1:3000", "the broker's `URL` (ws:// or http://); default from MERCURY_URL")
	topic := fs.String("topic", minion.DefaultTopic, "`TOPIC` to keep, with everything under it")
	batch := fs.Int("batch", 200, "most `EVENTS` stored in one transaction")
	var header command.HeaderList
	fs.Var(&header, "header", "`NAME:VALUE` sent with the WebSocket handshake, e.g. Authorization (repeatable); MERCURY_TOKEN sets a bearer token")
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
		return command.UsageError("--pg or --sqlite is required: the audit log's database")
	}
	if !strings.HasPrefix(*topic, "/") {
		return command.UsageError("--topic %q: a topic starts with /", *topic)
	}
	logger, err := newLogger(io, *logLevel, *logFormat)
	if err != nil {
		return err
	}
	opts := minion.AuditOptions{
		Broker: *broker, Header: httpHeader(header), Topic: *topic, Schema: *pg.schema, Batch: *batch, Logger: logger,
	}
	var a *minion.Auditor
	if path != "" {
		opts.Schema = ""
		a, err = minion.NewSQLiteAuditor(path, opts)
	} else {
		a, err = minion.NewAuditor(*pg.url, opts)
	}
	if err != nil {
		return command.UsageError("%v", err)
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := a.Run(ctx); err != nil {
		return err
	}
	st := a.Stats()
	logger.Info("audit: stopped", "stored", st.Stored, "duplicates", st.Duplicates, "invalid", st.Invalid, "gaps", st.Gaps)
	return nil
}

// parseSince reads a time: RFC 3339, a date (2026-11-24, midnight UTC),
// or a duration back from now (24h).
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q: want a time (2026-11-24T11:00:00Z, 2026-11-24) or a duration back from now (24h)", s)
}

func runAuditExport(ctx context.Context, args []string, io command.Stdio) error {
	fs := command.NewFlagSet("audit export", "--pg URL|--sqlite PATH [--since T] [--until T] [--job ID] [--task T] [--queue Q] [--type T] > events.jsonl",
		"mercury audit export --pg $DB --since 24h > events.jsonl",
		"mercury audit export --pg $DB --since 2026-11-01 --until 2026-12-01 --task email")
	pg := addAuditPGFlags(fs)
	since := fs.String("since", "", "events from this `TIME` on: 2026-11-24T11:00:00Z, 2026-11-24, or a duration back from now (24h)")
	until := fs.String("until", "", "events before this `TIME` (same forms)")
	job := fs.Int64("job", 0, "only job `ID`")
	task := fs.String("task", "", "only `TASK`")
	queue := fs.String("queue", "", "only `QUEUE`")
	typ := fs.String("type", "", "only events of `TYPE` (enqueued, started, failed …)")
	if err := command.ParseFlags(fs, args, io); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	f := minion.ExportFilter{Task: *task, Queue: *queue, Type: *typ}
	now := time.Now()
	var err error
	if *since != "" {
		if f.Since, err = parseSince(*since, now); err != nil {
			return command.UsageError("--since %v", err)
		}
	}
	if *until != "" {
		if f.Until, err = parseSince(*until, now); err != nil {
			return command.UsageError("--until %v", err)
		}
	}
	if *job != 0 {
		f.JobID = job
	}
	l, err := openAuditLog(ctx, fs, pg)
	if err != nil {
		return err
	}
	defer l.close()
	n, err := l.export(f, io.Out)
	if err != nil {
		return err
	}
	fmt.Fprintf(io.Err, "%d events\n", n)
	return nil
}

func runAuditJob(ctx context.Context, args []string, io command.Stdio) error {
	fs := command.NewFlagSet("audit job", "--pg URL|--sqlite PATH ID",
		"mercury audit job --pg $DB 1234", "mercury audit job --sqlite /media/usb/audit.db 1234")
	pg := addAuditPGFlags(fs)
	asJSON := fs.Bool("json", false, "print the events as JSON lines instead of a timeline")
	// The id may come before the flags: mercury audit job 1234 --pg URL.
	var id string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	if err := command.ParseFlags(fs, args, io); err != nil {
		return err
	}
	if id == "" && fs.NArg() > 0 {
		id = fs.Arg(0)
		if fs.NArg() > 1 {
			return command.UsageError("unexpected argument %q", fs.Arg(1))
		}
	} else if err := noArgs(fs); err != nil {
		return err
	}
	if id == "" {
		return command.UsageError("which job? mercury audit job --pg URL ID")
	}
	jobID, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return command.UsageError("job id %q: want a number", id)
	}
	l, err := openAuditLog(ctx, fs, pg)
	if err != nil {
		return err
	}
	defer l.close()
	if *asJSON {
		n, err := l.export(minion.ExportFilter{JobID: &jobID}, io.Out)
		if err == nil && n == 0 {
			err = fmt.Errorf("%w for job %d", minion.ErrNoEvents, jobID)
		}
		return err
	}
	events, err := l.jobEvents(jobID)
	if err != nil {
		if errors.Is(err, minion.ErrNoEvents) {
			return fmt.Errorf("no events for job %d in the audit log", jobID)
		}
		return err
	}
	return minion.WriteTimeline(io.Out, events)
}
