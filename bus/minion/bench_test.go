package minion_test

import (
	"testing"
	"time"

	"github.com/mercury-broker/mercury/bus/minion"
	"github.com/mercury-broker/mercury/bus/minion/miniontest"
)

// BenchmarkBridgeWithoutBroker measures the bridge's own work per event:
// read the outbox, build and encode events, delete the rows, with a
// publisher that only counts. b.N jobs are enqueued in one transaction.
func BenchmarkBridgeWithoutBroker(b *testing.B) {
	db := miniontest.NewMinionDatabase(b)
	conn := miniontest.Connect(b, db)
	if _, err := minion.Install(ctxT(b), conn, ""); err != nil {
		b.Fatal(err)
	}
	pub := &collector{}
	bridge, _ := startBridge(b, db, pub, minion.Options{})
	miniontest.WaitFor(b, "the bridge active", func() bool { return bridge.Stats().Active })
	b.ResetTimer()
	if _, err := conn.Exec(ctxT(b), `INSERT INTO minion_jobs (args, delayed, priority, queue, task)
		SELECT jsonb_build_array(i), NOW(), 0, 'default', 'bench' FROM generate_series(1, $1) AS i`, b.N); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for bridge.Stats().Published < uint64(b.N) {
		time.Sleep(time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}
