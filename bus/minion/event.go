package minion

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// SchemaVersion is the version of the event format, in every event's
// schema_version; event.schema.json describes it.
const SchemaVersion = 1

// Event types.
const (
	TypeEnqueued   = "enqueued"    // a job was inserted
	TypeStarted    = "started"     // a worker dequeued it: inactive → active
	TypeNoted      = "noted"       // only its notes changed
	TypeFinished   = "finished"    // active → finished
	TypeFailed     = "failed"      // → failed, by the job or its task
	TypeRetried    = "retried"     // back to inactive with one more retry (see Event.Retry)
	TypeRemoved    = "removed"     // deleted by id (Minion's remove_job)
	TypePurged     = "purged"      // deleted in bulk (repair: old finished or expired jobs)
	TypeWorkerLost = "worker_lost" // failed by repair: "Worker went away"
	TypeStuck      = "stuck"       // failed by repair: "Job appears stuck in queue"
	TypeUpdated    = "updated"     // any other change (say, an UPDATE by hand)
	TypeTruncated  = "truncated"   // the table was emptied (Minion's reset)

	TypeScheduled          = "scheduled"           // a schedule was created (Minion 12)
	TypeScheduleUpdated    = "schedule_updated"    // its definition changed
	TypeScheduleDispatched = "schedule_dispatched" // it enqueued a job
	TypeSchedulePaused     = "schedule_paused"
	TypeScheduleResumed    = "schedule_resumed"
	TypeUnscheduled        = "unscheduled" // it was deleted
)

// Retry kinds of a retried event.
const (
	RetryAutomatic = "automatic" // Minion retried a failed job with attempts left
	RetryManual    = "manual"    // someone called retry (or retry_job)
)

// Event is one change to one Minion job (or schedule, or table), complete
// enough that nobody needs to look the job up afterwards.
type Event struct {
	EventID       string `json:"event_id"` // UUID, the same on every delivery of this change
	SchemaVersion int    `json:"schema_version"`
	Type          string `json:"type"`
	Retry         string `json:"retry,omitempty"` // automatic or manual, for retried
	// Entity is "job", "schedule" or "table" (truncated).
	Entity      string                 `json:"entity"`
	JobID       *int64                 `json:"job_id"`
	ScheduleID  *int64                 `json:"schedule_id,omitempty"`
	Task        *string                `json:"task"`
	Queue       *string                `json:"queue"`
	StateBefore *string                `json:"state_before"`
	StateAfter  *string                `json:"state_after"`
	Changes     map[string]FieldChange `json:"changes"`
	// Job is the job after the change, or as it was when deleted.
	Job      *Job      `json:"job"`
	Schedule *Schedule `json:"schedule,omitempty"`
	Time     time.Time `json:"time"` // when the change happened
	DB       DBContext `json:"db"`
	Bridge   Origin    `json:"bridge"`
	// Cut is set when values were left out to fit the broker's message
	// size; each one left out reads {"mercury_cut": BYTES}.
	Cut bool `json:"cut,omitempty"`
}

// FieldChange is one changed column.
type FieldChange struct {
	Old json.RawMessage `json:"old"`
	New json.RawMessage `json:"new"`
}

// Job is a Minion job, every column of minion_jobs.
type Job struct {
	ID       int64           `json:"id"`
	Task     string          `json:"task"`
	Queue    string          `json:"queue"`
	State    string          `json:"state"`
	Args     json.RawMessage `json:"args"`
	Attempts int64           `json:"attempts"`
	Priority int64           `json:"priority"`
	Parents  []int64         `json:"parents"`
	Lax      bool            `json:"lax"`
	Notes    json.RawMessage `json:"notes"`
	Result   json.RawMessage `json:"result"`
	Delayed  *time.Time      `json:"delayed"`
	Expires  *time.Time      `json:"expires"`
	Created  *time.Time      `json:"created"`
	Started  *time.Time      `json:"started"`
	Finished *time.Time      `json:"finished"`
	Retried  *time.Time      `json:"retried"`
	Retries  int64           `json:"retries"`
	Worker   *Worker         `json:"worker"`
	// Extra holds columns this version does not know (a later Minion's),
	// and known columns whose value did not have the expected type.
	Extra map[string]json.RawMessage `json:"extra,omitempty"`
}

// Worker is the worker a job names, as it was at the moment of the change.
type Worker struct {
	ID   int64   `json:"id"`
	Host *string `json:"host"`
	PID  *int64  `json:"pid"`
	// Gone: the worker's row had already been deleted (it stopped, or repair
	// found it missing); host and pid are as it registered.
	Gone bool `json:"gone"`
}

// Schedule is a Minion 12 schedule, every column of minion_schedules.
type Schedule struct {
	ID       int64                      `json:"id"`
	Name     string                     `json:"name"`
	Cron     string                     `json:"cron"`
	Task     string                     `json:"task"`
	Queue    string                     `json:"queue"`
	Args     json.RawMessage            `json:"args"`
	Attempts int64                      `json:"attempts"`
	Priority int64                      `json:"priority"`
	Expire   *int64                     `json:"expire"`
	Lax      bool                       `json:"lax"`
	Notes    json.RawMessage            `json:"notes"`
	Paused   bool                       `json:"paused"`
	LastJob  *int64                     `json:"last_job"`
	Created  *time.Time                 `json:"created"`
	LastRun  *time.Time                 `json:"last_run"`
	NextRun  *time.Time                 `json:"next_run"`
	Extra    map[string]json.RawMessage `json:"extra,omitempty"`
}

// DBContext is where and by whom the change was made.
type DBContext struct {
	Database    string    `json:"database"`
	Schema      string    `json:"schema"`
	Table       string    `json:"table"`
	Operation   string    `json:"operation"` // INSERT, UPDATE, DELETE or TRUNCATE
	OutboxID    int64     `json:"outbox_id"`
	TxID        uint64    `json:"txid"`
	TxTime      time.Time `json:"tx_time"` // the transaction's start
	User        string    `json:"user"`
	Application string    `json:"application"`
	ClientAddr  *string   `json:"client_addr"` // null over a Unix socket
	BackendPID  int32     `json:"backend_pid"`
	Query       string    `json:"query"` // the statement, at most 2,000 characters
}

// Origin is the bridge that built the event.
type Origin struct {
	Instance string    `json:"instance"`
	Read     time.Time `json:"read"` // when the bridge read the change
}

// BuildInfo is what BuildEvent adds to a change.
type BuildInfo struct {
	Database string
	Schema   string
	Instance string
	Read     time.Time // zero: now
}

// BuildEvent turns an outbox row into an event. Columns it cannot read as
// expected end up in Extra rather than failing the event.
func BuildEvent(c Change, info BuildInfo) (*Event, error) {
	read := info.Read
	if read.IsZero() {
		read = time.Now()
	}
	e := &Event{
		EventID:       c.EventID,
		SchemaVersion: SchemaVersion,
		Changes:       map[string]FieldChange{},
		Time:          c.ClockTime.UTC(),
		DB: DBContext{
			Database:    info.Database,
			Schema:      info.Schema,
			Table:       c.Table,
			Operation:   c.Op,
			OutboxID:    c.ID,
			TxID:        c.TxID,
			TxTime:      c.TxTime.UTC(),
			User:        c.User,
			Application: c.Application,
			BackendPID:  c.BackendPID,
			Query:       c.Query,
		},
		Bridge: Origin{Instance: info.Instance, Read: read.UTC()},
	}
	if c.ClientAddr != "" {
		addr := c.ClientAddr
		e.DB.ClientAddr = &addr
	}
	if c.Op == "TRUNCATE" {
		e.Entity, e.Type = "table", TypeTruncated
		return e, nil
	}
	old, new, err := rowMaps(c)
	if err != nil {
		return nil, err
	}
	for _, col := range c.Changed {
		e.Changes[col] = FieldChange{Old: normalize(col, old[col]), New: normalize(col, new[col])}
	}
	switch c.Table {
	case "minion_schedules":
		return buildScheduleEvent(e, c, old, new), nil
	default:
		return buildJobEvent(e, c, old, new), nil
	}
}

func rowMaps(c Change) (old, new map[string]json.RawMessage, err error) {
	if c.Old != nil {
		if err := json.Unmarshal(c.Old, &old); err != nil {
			return nil, nil, fmt.Errorf("outbox row %d: the old row is not a JSON object: %w", c.ID, err)
		}
	}
	if c.New != nil {
		if err := json.Unmarshal(c.New, &new); err != nil {
			return nil, nil, fmt.Errorf("outbox row %d: the new row is not a JSON object: %w", c.ID, err)
		}
	}
	return old, new, nil
}

func buildJobEvent(e *Event, c Change, old, new map[string]json.RawMessage) *Event {
	e.Entity = "job"
	var before, after *Job
	if old != nil {
		before = parseJob(old, nil)
	}
	if new != nil {
		after = parseJob(new, c.Worker)
	} else {
		before = parseJob(old, c.Worker)
	}
	cur := after
	if cur == nil {
		cur = before
	}
	e.Job = cur
	e.JobID = &cur.ID
	e.Task, e.Queue = &cur.Task, &cur.Queue
	if before != nil {
		e.StateBefore = &before.State
	}
	if after != nil {
		e.StateAfter = &after.State
	}
	e.Type, e.Retry = deriveJobType(c, before, after)
	return e
}

func buildScheduleEvent(e *Event, c Change, old, new map[string]json.RawMessage) *Event {
	e.Entity = "schedule"
	var before, after *Schedule
	if old != nil {
		before = parseSchedule(old)
	}
	if new != nil {
		after = parseSchedule(new)
	}
	cur := after
	if cur == nil {
		cur = before
	}
	e.Schedule = cur
	e.ScheduleID = &cur.ID
	e.Task, e.Queue = &cur.Task, &cur.Queue
	e.Type = deriveScheduleType(c, before, after)
	return e
}

// fields decodes the columns of a row into typed fields; what does not
// decode stays in extra.
type fields struct {
	row   map[string]json.RawMessage
	extra map[string]json.RawMessage
	known map[string]bool
}

func newFields(row map[string]json.RawMessage) *fields {
	return &fields{row: row, extra: map[string]json.RawMessage{}, known: map[string]bool{}}
}

func (f *fields) get(name string, dst any) {
	f.known[name] = true
	raw, ok := f.row[name]
	if !ok || isNull(raw) {
		return
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		f.extra[name] = raw
	}
}

func (f *fields) time(name string) *time.Time {
	var s *string
	f.get(name, &s)
	if s == nil {
		return nil
	}
	t, err := parseTime(*s)
	if err != nil {
		f.extra[name] = f.row[name]
		return nil
	}
	return &t
}

func (f *fields) json(name string) json.RawMessage {
	f.known[name] = true
	raw, ok := f.row[name]
	if !ok {
		return json.RawMessage("null")
	}
	return raw
}

func (f *fields) rest() map[string]json.RawMessage {
	for k, v := range f.row {
		if !f.known[k] {
			f.extra[k] = v
		}
	}
	if len(f.extra) == 0 {
		return nil
	}
	return f.extra
}

func parseJob(row map[string]json.RawMessage, worker json.RawMessage) *Job {
	f := newFields(row)
	j := &Job{}
	f.get("id", &j.ID)
	f.get("task", &j.Task)
	f.get("queue", &j.Queue)
	f.get("state", &j.State)
	j.Args = f.json("args")
	f.get("attempts", &j.Attempts)
	f.get("priority", &j.Priority)
	f.get("parents", &j.Parents)
	if j.Parents == nil {
		j.Parents = []int64{}
	}
	f.get("lax", &j.Lax)
	j.Notes = f.json("notes")
	j.Result = f.json("result")
	j.Delayed = f.time("delayed")
	j.Expires = f.time("expires")
	j.Created = f.time("created")
	j.Started = f.time("started")
	j.Finished = f.time("finished")
	j.Retried = f.time("retried")
	f.get("retries", &j.Retries)
	var wid *int64
	f.get("worker", &wid)
	if wid != nil {
		j.Worker = &Worker{ID: *wid}
		if worker != nil {
			// A failure here leaves host and pid null: the id is known anyway.
			_ = json.Unmarshal(worker, j.Worker)
			j.Worker.ID = *wid
		}
	}
	j.Extra = f.rest()
	return j
}

func parseSchedule(row map[string]json.RawMessage) *Schedule {
	f := newFields(row)
	s := &Schedule{}
	f.get("id", &s.ID)
	f.get("name", &s.Name)
	f.get("cron", &s.Cron)
	f.get("task", &s.Task)
	f.get("queue", &s.Queue)
	s.Args = f.json("args")
	f.get("attempts", &s.Attempts)
	f.get("priority", &s.Priority)
	f.get("expire", &s.Expire)
	f.get("lax", &s.Lax)
	s.Notes = f.json("notes")
	f.get("paused", &s.Paused)
	f.get("last_job", &s.LastJob)
	s.Created = f.time("created")
	s.LastRun = f.time("last_run")
	s.NextRun = f.time("next_run")
	s.Extra = f.rest()
	return s
}

// timeColumns are the timestamp columns of Minion's tables, normalised to
// UTC RFC 3339 in changes as in the job.
var timeColumns = map[string]bool{
	"delayed": true, "expires": true, "created": true, "started": true, "finished": true, "retried": true,
	"last_run": true, "next_run": true,
}

// normalize returns a column's value for FieldChange: null when absent,
// timestamps in UTC like the job's fields.
func normalize(col string, raw json.RawMessage) json.RawMessage {
	if raw == nil {
		return json.RawMessage("null")
	}
	if !timeColumns[col] || isNull(raw) {
		return raw
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return raw
	}
	t, err := parseTime(s)
	if err != nil {
		return raw
	}
	b, _ := json.Marshal(t)
	return b
}

// parseTime reads a timestamp as to_jsonb writes it
// ("2026-11-24T11:00:00.123456+00:00") and returns it in UTC.
func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}

func isNull(raw json.RawMessage) bool {
	return bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}
