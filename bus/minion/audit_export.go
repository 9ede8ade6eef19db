package minion

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// ErrNoEvents: the audit log has no event for what was asked.
var ErrNoEvents = errors.New("minion: no events in the audit log")

// ExportFilter selects events; zero fields select everything.
type ExportFilter struct {
	Since, Until time.Time // the change's time: Since <= time < Until
	JobID        *int64
	Task, Queue  string
	Type         string
}

// Export writes the selected events as JSON lines, in the order the
// changes happened (time, then the broker's sequence number), and returns
// how many it wrote.
func (l *AuditLog) Export(ctx context.Context, q Querier, f ExportFilter, w io.Writer) (int, error) {
	where := []string{"TRUE"}
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if !f.Since.IsZero() {
		add("time >= $%d", f.Since)
	}
	if !f.Until.IsZero() {
		add("time < $%d", f.Until)
	}
	if f.JobID != nil {
		add("job_id = $%d", *f.JobID)
	}
	if f.Task != "" {
		add("task = $%d", f.Task)
	}
	if f.Queue != "" {
		add("queue = $%d", f.Queue)
	}
	if f.Type != "" {
		add("type = $%d", f.Type)
	}
	rows, err := q.Query(ctx, `SELECT event FROM `+l.events+` WHERE `+strings.Join(where, " AND ")+` ORDER BY time, seq`, args...)
	if err != nil {
		return 0, fmt.Errorf("failed to read the audit log: %w", err)
	}
	defer rows.Close()
	return writeEventLines(w, rows)
}

// eventRows are the rows of a query for events, from PostgreSQL or SQLite.
type eventRows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// writeEventLines writes each event of rows as one line of w (JSON Lines)
// and returns how many it wrote.
func writeEventLines(w io.Writer, rows eventRows) (int, error) {
	bw := bufio.NewWriter(w)
	n := 0
	for rows.Next() {
		var ev []byte
		if err := rows.Scan(&ev); err != nil {
			return n, fmt.Errorf("failed to read an event: %w", err)
		}
		bw.Write(ev)
		bw.WriteByte('\n')
		n++
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("failed to read the audit log: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return n, fmt.Errorf("failed to write: %w", err)
	}
	return n, nil
}

// JobEvents returns one job's events in the order they happened.
func (l *AuditLog) JobEvents(ctx context.Context, q Querier, jobID int64) ([]*Event, error) {
	rows, err := q.Query(ctx, `SELECT event FROM `+l.events+` WHERE job_id = $1 ORDER BY time, seq`, jobID)
	if err != nil {
		return nil, fmt.Errorf("failed to read the audit log: %w", err)
	}
	defer rows.Close()
	var out []*Event
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return nil, fmt.Errorf("failed to read an event: %w", err)
		}
		var e Event
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, fmt.Errorf("failed to decode an event of job %d: %w", jobID, err)
		}
		out = append(out, &e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("failed to read the audit log: %w", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w for job %d", ErrNoEvents, jobID)
	}
	return out, nil
}

// WriteTimeline writes a job's events as a timeline people read: one line
// per change, with what matters for its type.
func WriteTimeline(w io.Writer, events []*Event) error {
	bw := bufio.NewWriter(w)
	for i, e := range events {
		j := e.Job
		if j == nil {
			continue
		}
		if i == 0 || e.Type == TypeEnqueued {
			if i > 0 {
				fmt.Fprintf(bw, "\n(job ids start again after a reset: another job %d)\n", j.ID)
			}
			fmt.Fprintf(bw, "job %d  task %s  queue %s\n", j.ID, j.Task, j.Queue)
			fmt.Fprintf(bw, "  args %s  priority %d  attempts %d", compact(j.Args), j.Priority, j.Attempts)
			if len(j.Parents) > 0 {
				fmt.Fprintf(bw, "  parents %v", j.Parents)
			}
			if j.Lax {
				fmt.Fprint(bw, "  lax")
			}
			fmt.Fprintln(bw)
			fmt.Fprintln(bw)
		}
		typ := e.Type
		if e.Retry != "" {
			typ += " (" + e.Retry + ")"
		}
		line := fmt.Sprintf("%s  %-20s %s", e.Time.UTC().Format("2006-01-02 15:04:05.000000Z"), typ, timelineDetail(e))
		fmt.Fprintln(bw, strings.TrimRight(line, " "))
	}
	return bw.Flush()
}

func timelineDetail(e *Event) string {
	j := e.Job
	var parts []string
	add := func(format string, args ...any) { parts = append(parts, fmt.Sprintf(format, args...)) }
	switch e.Type {
	case TypeEnqueued:
		if j.Created != nil && j.Delayed != nil && j.Delayed.Sub(*j.Created) > time.Second {
			add("delayed until %s", j.Delayed.UTC().Format(time.RFC3339))
		}
		if j.Expires != nil {
			add("expires %s", j.Expires.UTC().Format(time.RFC3339))
		}
		if n := compact(j.Notes); n != "{}" {
			add("notes %s", n)
		}
	case TypeStarted:
		add("attempt %d", j.Retries+1)
		add("worker %s", workerText(j.Worker))
	case TypeNoted:
		add("notes %s", compact(j.Notes))
	case TypeFinished, TypeFailed, TypeWorkerLost, TypeStuck:
		add("result %s", compact(j.Result))
		if j.Started != nil && j.Finished != nil && e.Type != TypeStuck {
			add("after %s", j.Finished.Sub(*j.Started).Round(time.Millisecond))
		}
		if e.Type == TypeWorkerLost {
			add("worker %s", workerText(j.Worker))
		}
	case TypeRetried:
		for _, col := range []string{"queue", "priority", "attempts", "parents"} {
			if c, ok := e.Changes[col]; ok {
				add("%s %s → %s", col, compact(c.Old), compact(c.New))
			}
		}
		if j.Delayed != nil && j.Retried != nil && j.Delayed.Sub(*j.Retried) > time.Second {
			add("delayed until %s", j.Delayed.UTC().Format(time.RFC3339))
		}
	case TypeRemoved, TypePurged:
		add("was %s", j.State)
	case TypeUpdated:
		for col, c := range e.Changes {
			add("%s %s → %s", col, compact(c.Old), compact(c.New))
		}
	}
	if e.Type == TypeRemoved || e.Type == TypeUpdated || e.Retry == RetryManual {
		by := e.DB.User
		if e.DB.Application != "" {
			by += " (" + e.DB.Application + ")"
		}
		if e.DB.ClientAddr != nil {
			by += " from " + *e.DB.ClientAddr
		}
		add("by %s", by)
	}
	return strings.Join(parts, "  ")
}

func workerText(w *Worker) string {
	if w == nil {
		return "none"
	}
	s := fmt.Sprintf("%d", w.ID)
	if w.Host != nil && w.PID != nil {
		s += fmt.Sprintf(" (%s pid %d)", *w.Host, *w.PID)
	}
	if w.Gone {
		s += " gone"
	}
	return s
}

// compact returns raw JSON on one line, as short as it gets.
func compact(raw json.RawMessage) string {
	var v any
	if len(raw) == 0 || json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
	return strings.TrimSuffix(b.String(), "\n")
}
