package test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestServeIdleSubscribersKeepSmallStacks: mercury serve, as users run it,
// holds an idle subscriber that answers pings as browsers do (a masked
// empty pong) on a reader goroutine whose stack stays at 2 KB: the stack
// memory it reports to Prometheus grows about 2 KB per such connection
// (about 4 KB when the reader waits inside the WebSocket library).
func TestServeIdleSubscribersKeepSmallStacks(t *testing.T) {
	// The race detector makes every stack bigger: measure a normal build,
	// also when the tests run with -race (as CI runs them).
	bin := mercuryBin
	if raceEnabled {
		bin = filepath.Join(t.TempDir(), "mercury")
		build := exec.Command("go", "build", "-o", bin, "../cmd/mercury")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			t.Fatalf("build mercury without -race: %v", err)
		}
	}
	// Enough connections that what the runtime keeps besides their
	// readers is small beside theirs. Pings every second: at 100 ms, with
	// ten times the pings and pongs, on a busy machine the stacks grew up
	// to 3.3 KB per connection in some runs, with still about one
	// goroutine per connection (some readers' stacks grew to 4 KB).
	const conns = 1000
	b := startBrokerBin(t, bin, nil, "--listen", "127.0.0.1:0", "--ping-interval", "1s",
		"--max-connections", "2000", "--max-connections-per-ip", "0", "--pprof", "127.0.0.1:0")
	var pprofURL string
	pprofRE := regexp.MustCompile(`msg="profiler listening" addr=(http://\S+/debug/pprof/)`)
	waitFor(t, "the profiler listening", func() bool {
		m := pprofRE.FindStringSubmatch(b.logs.String())
		if m != nil {
			pprofURL = m[1]
		}
		return m != nil
	})
	// gauge is the value of the gauge name, with the label name and value
	// in label if given.
	gauge := func(body []byte, name string, label ...string) float64 {
		t.Helper()
		parser := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("/metrics does not parse: %v", err)
		}
		for _, m := range fams[name].GetMetric() {
			if len(label) == 0 {
				return m.GetGauge().GetValue()
			}
			for _, l := range m.GetLabel() {
				if l.GetName() == label[0] && l.GetValue() == label[1] {
					return m.GetGauge().GetValue()
				}
			}
		}
		t.Fatalf("/metrics has no %s %v", name, label)
		return 0
	}
	// stacks is the broker's stack memory after two collections (asked for
	// through the profiler's heap?gc=1): the runtime keeps the stacks of
	// goroutines that came and went (handshakes, pings) until a collection
	// frees them, and those grow with the load on the machine.
	stacks := func() float64 {
		t.Helper()
		getURL(t, pprofURL+"heap?gc=1")
		getURL(t, pprofURL+"heap?gc=1")
		return gauge(getURL(t, b.HTTP+"/metrics"), "go_memstats_stack_inuse_bytes")
	}
	before := stacks()

	// Each subscriber answers every ping from the moment it is open: a
	// ping not answered within the pong timeout (20 s) closes it.
	var wg sync.WaitGroup
	var peers []*rawConn
	t.Cleanup(func() {
		for _, p := range peers {
			p.Close()
		}
		wg.Wait()
	})
	pinged := make(chan struct{}, conns)
	for i := range conns {
		p := rawDial(t, b.Listen, fmt.Sprintf("/sub/idle/%d", i))
		peers = append(peers, p)
		wg.Add(1)
		go func() {
			defer wg.Done()
			pings := 0
			for {
				op, payload, err := p.readFrame()
				if err != nil {
					return // closed at the end of the test, or by the broker
				}
				if op != 0x9 {
					continue
				}
				// A masked pong echoing the ping (empty), as browsers answer.
				if _, err := p.Write(frame(true, 0xa, payload)); err != nil {
					return
				}
				// The broker pings again only once it took the pong: two
				// pings mean it took one.
				if pings++; pings == 2 {
					pinged <- struct{}{}
				}
			}
		}()
	}
	timeout := time.After(2 * time.Minute)
	for i := range conns {
		select {
		case <-pinged:
		case <-timeout:
			t.Fatalf("%d of %d connections pinged twice within 2 minutes", i, conns)
		}
	}
	after := stacks()
	perConn := (after - before) / conns
	t.Logf("stack memory %.0f bytes before, %.0f after %d idle subscribers: %.0f bytes per connection", before, after, conns, perConn)
	if perConn > 3072 {
		t.Fatalf("stack memory grew %.0f bytes per idle subscriber, want about 2048", perConn)
	}
	if open := gauge(getURL(t, b.HTTP+"/metrics"), "mercury_connections", "pattern", "sub"); open != conns {
		t.Fatalf("%v subscribers open, want %d", open, conns)
	}
}
