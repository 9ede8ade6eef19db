package minion_test

import (
	"encoding/json"
	"testing"

	"github.com/mercury-broker/mercury/bus/minion"
	"github.com/mercury-broker/mercury/bus/minion/miniontest"
)

// TestBridgeCutsEventsTooBigForTheBroker: a job with 1.5 MB of arguments
// and then of result would make events over the broker's 1 MiB limit and
// stall the bridge; their biggest values are cut instead, and they reach the
// real broker.
func TestBridgeCutsEventsTooBigForTheBroker(t *testing.T) {
	db, conn := installed(t)
	broker := startBroker(t, 0)
	sub := subscribeAll(t, broker)
	b, _ := startBridge(t, db, &minion.HTTPPublisher{Broker: broker}, minion.Options{})
	var id int64
	if err := conn.QueryRow(ctxT(t), `INSERT INTO minion_jobs (args, delayed, priority, task, notes)
		VALUES (jsonb_build_array(repeat('a', 1500000)), NOW(), 0, 'big', '{"small":1}') RETURNING id`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctxT(t), `UPDATE minion_jobs SET result = to_jsonb(repeat('r', 1500000)), state = 'finished', finished = NOW() WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	miniontest.WaitFor(t, "both published", func() bool { return b.Stats().Published == 2 })
	var events []*minion.Event
	for range 2 {
		f, err := sub.Read(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		if len(f.Data) > minion.DefaultMaxEventSize {
			t.Fatalf("event of %d bytes", len(f.Data))
		}
		var e minion.Event
		if err := json.Unmarshal(f.Data, &e); err != nil {
			t.Fatal(err)
		}
		validate(t, &e)
		events = append(events, &e)
	}
	enq, fin := events[0], events[1]
	if !enq.Cut || string(enq.Job.Args) != `[{"mercury_cut":1500004}]` || string(enq.Job.Notes) != `{"small":1}` {
		t.Errorf("enqueued: cut %v, args %s, notes %s", enq.Cut, enq.Job.Args, enq.Job.Notes)
	}
	if !fin.Cut || string(fin.Job.Result) != `{"mercury_cut":1500002}` || string(fin.Changes["result"].New) != `{"mercury_cut":1500002}` ||
		string(fin.Changes["result"].Old) != "null" || string(fin.Changes["state"].New) != `"finished"` || fin.Type != "updated" { // inactive → finished is no Minion transition
		t.Errorf("finished: cut %v, result %s, changes %v", fin.Cut, fin.Job.Result, fin.Changes)
	}
	if small := jobEvents(t); small[0].Cut {
		t.Error("a small event was cut")
	}
}
