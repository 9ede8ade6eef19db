package nats

import (
	"context"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/broker"
)

// TestStreamSizedFromBuses: the message stream keeps as long as the
// longest history and as many messages as the histories need, and follows
// a reload.
func TestStreamSizedFromBuses(t *testing.T) {
	c := cluster(t)
	nodes := startNodes(t, c, 1, []broker.Policy{
		{Bus: "/a", History: broker.History{Messages: 100, Age: 2 * time.Hour}},
		{Bus: "/b", History: broker.History{Messages: 50, Age: 3 * time.Hour}},
	})
	bp := nodes[0].bp
	limits := func() (time.Duration, int64, int) {
		t.Helper()
		st, err := bp.js.Stream(context.Background(), bp.stream)
		if err != nil {
			t.Fatal(err)
		}
		cfg := st.CachedInfo().Config
		return cfg.MaxAge, cfg.MaxMsgs, cfg.Replicas
	}
	age, msgs, replicas := limits()
	if age != 3*time.Hour || msgs != 4*150 || replicas != 3 {
		t.Fatalf("age %v, messages %d, replicas %d", age, msgs, replicas)
	}
	// A reload: a durable bus with the default history, and one kept by
	// count only (no age limit then).
	ps, err := broker.NewPolicies([]broker.Policy{{Bus: "/d", Durable: true}, {Bus: "/e", History: broker.History{Messages: 10}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := nodes[0].b.SetPolicies(ps); err != nil {
		t.Fatal(err)
	}
	age, msgs, _ = limits()
	if age != 0 || msgs != int64(4*(broker.DefaultDurableHistory.Messages+10)) {
		t.Fatalf("after the reload: age %v, messages %d", age, msgs)
	}
	// No history at all: an hour, for the brokers' feeds to catch up.
	if err := nodes[0].b.SetPolicies(nil); err != nil {
		t.Fatal(err)
	}
	if age, msgs, _ = limits(); age != minStreamAge || msgs != -1 {
		t.Fatalf("without history: age %v, messages %d", age, msgs)
	}
}
