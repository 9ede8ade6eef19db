package web

import (
	"fmt"
	"testing"
	"time"
)

// A connection outlives its pings and the write timeout: a deadline set
// for one write (the library's ping, a blocking write) must not fail the
// next write of a connection that was merely quiet meanwhile. The client
// never pings; the server pings every 150ms and bounds each write by
// 50ms, so each ping's deadline has passed well before the next message
// (as with the defaults: a ping every 30s, writes bounded by 10s).
func TestQuietConnectionOutlivesPingsAndWriteTimeout(t *testing.T) {
	ts := startServer(t, Options{PingInterval: 150 * time.Millisecond, WriteTimeout: 50 * time.Millisecond})
	sub := ts.dial(t, "sub", "/quiet")
	bus := ts.dial(t, "bus", "/quiet")
	ts.waitSubscribed(t, 1)
	ts.waitPeers(t, 1)
	for i := range 4 {
		time.Sleep(400 * time.Millisecond) // a ping or two, each write's deadline long past
		msg := fmt.Sprint("after quiet ", i)
		if resp := post(t, ts, "pub", "/quiet", "", msg); resp.Status != 200 {
			t.Fatalf("publish: %d %s", resp.Status, resp.Body)
		}
		if got := sub.nextText(t); got != msg {
			t.Fatalf("subscriber got %q, want %q", got, msg)
		}
		if resp := post(t, ts, "bus", "/quiet", "", msg); resp.Status != 200 {
			t.Fatalf("bus: %d %s", resp.Status, resp.Body)
		}
		if got := bus.nextText(t); got != msg {
			t.Fatalf("bus peer got %q, want %q", got, msg)
		}
	}
}
