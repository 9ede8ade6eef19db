package minion_test

import (
	"slices"
	"testing"

	"github.com/mercury-broker/mercury/bus/minion"
	"github.com/mercury-broker/mercury/bus/minion/miniontest"
)

// TestScenarioEvents runs the real Minion through enqueue (arguments,
// parents, priorities, a delay, notes), a real worker performing jobs
// (finish, fail with an automatic retry, a manual retry into another queue,
// notes while running), a removal, a lost worker repaired, a stuck job,
// purges and a reset, and checks every event field by field and against
// event.schema.json, in the order the changes happened.
func TestScenarioEvents(t *testing.T) {
	db, conn := installed(t)
	s := miniontest.RunScenario(t, db)
	events := drain(t, conn)
	s.Check(t, events)
	if got := s.Order(events); !slices.Equal(got, miniontest.ExpectedOrder) {
		t.Errorf("events in this order:\n%q\nwant:\n%q", got, miniontest.ExpectedOrder)
	}
	for _, e := range events {
		want := "/audit/minion"
		if e.Job != nil {
			want = "/audit/minion/" + e.Job.Queue + "/" + e.Job.Task + "/" + itoa(e.Job.ID)
		}
		if got := minion.Topic(minion.DefaultTopic, e); got != want {
			t.Errorf("%s event of job %v: topic %s, want %s", e.Type, e.JobID, got, want)
		}
	}
}
