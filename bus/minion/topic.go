package minion

import (
	"fmt"
	"strings"
)

// DefaultTopic is the topic under which the bridge publishes.
const DefaultTopic = "/audit/minion"

// Topic returns the topic of an event under base. The scheme is one topic
// per job, nested so that a prefix selects what a subscriber wants
// (subscriptions match by topic prefix, whole segments):
//
//	BASE/QUEUE/TASK/JOB             every event of one job
//	BASE/QUEUE/TASK/schedules/NAME  every event of one Minion 12 schedule
//	BASE                            truncations (Minion's reset)
//
// so /sub/BASE gets everything, /sub/BASE/QUEUE one queue,
// /sub/BASE/QUEUE/TASK one task in that queue and /sub/BASE/QUEUE/TASK/JOB
// one job. A job's event goes to the queue the job is in after the change
// (before it, for a deletion): a job retried into another queue continues
// under the new queue's topic, from its retried event on.
func Topic(base string, e *Event) string {
	base = strings.TrimRight(base, "/")
	switch {
	case e.Entity == "job" && e.JobID != nil:
		return fmt.Sprintf("%s/%s/%s/%d", base, Segment(*e.Queue), Segment(*e.Task), *e.JobID)
	case e.Entity == "schedule" && e.Schedule != nil:
		return fmt.Sprintf("%s/%s/%s/schedules/%s", base, Segment(*e.Queue), Segment(*e.Task), Segment(e.Schedule.Name))
	}
	return base
}

// Segment turns a queue, task or schedule name into one topic segment that
// Mercury accepts and that no other name maps to: letters, digits and
// "-._~:@+=," stay as they are; every other byte, "%" included, becomes
// %XX; "." and ".." (refused as segments) become "%2E" and "%2E%2E"; and
// the empty name, which PostgreSQL text cannot confuse with anything since
// it holds no NUL, becomes "%00".
func Segment(name string) string {
	switch name {
	case "":
		return "%00"
	case ".":
		return "%2E"
	case "..":
		return "%2E%2E"
	}
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		if isSegmentByte(c) {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

func isSegmentByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~:@+=,", c) >= 0
}
