package nats

import (
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/broker"
)

// systemNATS connects to the NATS server installed on the machine (env
// MERCURY_TEST_NATS, default nats://127.0.0.1:4222; Debian's is 2.9) under
// a cluster name of its own, removed when the test ends. Without that
// server the test is skipped, or fails when CI is set.
func systemNATS(t *testing.T) *Backplane {
	t.Helper()
	return systemNATSWith(t, Options{})
}

// systemNATSWith is systemNATS with options; their URLs, Name, Logger and
// Timeout are the test's.
func systemNATSWith(t *testing.T, opts Options) *Backplane {
	t.Helper()
	url := os.Getenv("MERCURY_TEST_NATS")
	if url == "" {
		url = "nats://127.0.0.1:4222"
	}
	if c, err := net.DialTimeout("tcp", strings.TrimPrefix(url, "nats://"), time.Second); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no NATS server at %s: %v", url, err)
		}
		t.Skipf("no NATS server at %s: %v", url, err)
	} else {
		c.Close()
	}
	name := fmt.Sprintf("sys%d-%d", os.Getpid()%100000, names.Add(1))
	opts.URLs, opts.Name, opts.Logger, opts.Timeout = []string{url}, name, testLogger(), 3*time.Second
	bp, err := Connect(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := bp.reqCtx()
		defer cancel()
		for _, s := range []string{bp.stream, bp.queueStream, bp.deadStream} {
			bp.js.DeleteStream(ctx, s)
		}
		for _, b := range []string{"_QUEUE_INFO", "_UNCOUNTED", "_PULLERS"} {
			bp.js.DeleteKeyValue(ctx, bp.stream+b)
		}
		bp.Close()
	})
	return bp
}

// TestReplayOnSystemNATS: replay of a topic and the topics below it works
// on the NATS server the machines run, which before 2.10 takes only one
// subject filter per consumer.
func TestReplayOnSystemNATS(t *testing.T) {
	bp := systemNATS(t)
	if v, _ := parseVersion(bp.nc.ConnectedServerVersion()); !v.atLeast(v2_10) && !bp.oneFilter.Load() {
		t.Fatalf("connected to NATS %s without choosing one filter per consumer", bp.nc.ConnectedServerVersion())
	}
	for _, m := range []struct{ topic, payload string }{
		{"/r/a", "1"}, {"/r/a/b", "2"}, {"/r/ab", "no"}, {"/r/a", "3"}, {"/r", "no"}, {"/r/a/b/c", "4"},
	} {
		if err := bp.Publish(msg(m.topic, m.payload), broker.KindPublish, broker.Origin{Node: "n"}); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	var seqs []uint64
	if _, err := bp.Replay("/r/a", 0, 1<<40, func(m *broker.Message) {
		got = append(got, string(m.Topic)+"="+string(m.Payload))
		seqs = append(seqs, m.Seq)
	}); err != nil {
		t.Fatalf("replay: %v", err)
	}
	if fmt.Sprint(got) != "[/r/a=1 /r/a/b=2 /r/a=3 /r/a/b/c=4]" {
		t.Fatalf("replayed %v", got)
	}
	// From a position, up to another.
	got = got[:0]
	if _, err := bp.Replay("/r/a", seqs[0], seqs[2], func(m *broker.Message) {
		got = append(got, string(m.Topic)+"="+string(m.Payload))
	}); err != nil {
		t.Fatalf("replay: %v", err)
	}
	if fmt.Sprint(got) != "[/r/a/b=2 /r/a=3]" {
		t.Fatalf("replayed (%d, %d]: %v", seqs[0], seqs[2], got)
	}
}
