package nats

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/broker"
)

// TestQueueFullRefusesPush: a push to a queue at its limit is refused with
// ErrQueueFull and what waits stays, on the cluster's NATS and on the one
// the machines run (2.9, the first to keep a full subject's messages:
// DiscardNewPerSubject).
func TestQueueFullRefusesPush(t *testing.T) {
	t.Run("cluster", func(t *testing.T) {
		c := cluster(t)
		bp, err := Connect(Options{URLs: c.URLs(), Name: clusterName(), QueueLimit: 3, Logger: testLogger(), Timeout: 3 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer bp.Close()
		checkQueueFull(t, bp)
	})
	t.Run("system", func(t *testing.T) {
		checkQueueFull(t, systemNATSWith(t, Options{QueueLimit: 3}))
	})
}

func checkQueueFull(t *testing.T, bp *Backplane) {
	t.Helper()
	qp := broker.QueuePolicy{TTL: time.Hour}
	for i := range 3 {
		if err := bp.Push(msg("/full/q", fmt.Sprint(i)), qp, broker.PushOptions{}); err != nil {
			t.Fatalf("push %d: %v", i, err)
		}
	}
	if err := bp.Push(msg("/full/q", "over"), qp, broker.PushOptions{}); !errors.Is(err, broker.ErrQueueFull) {
		t.Fatalf("a push over the limit: %v, want ErrQueueFull", err)
	}
	// Another queue has room of its own.
	if err := bp.Push(msg("/full/other", "x"), qp, broker.PushOptions{}); err != nil {
		t.Fatalf("push to another queue: %v", err)
	}
	stats, err := bp.QueueStats()
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range stats {
		if st.Topic == "/full/q" && st.Waiting != 3 {
			t.Fatalf("the full queue holds %d messages, want its first 3", st.Waiting)
		}
	}
}
