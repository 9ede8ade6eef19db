package test

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strconv"
	"testing"
)

// benchReport is the part of `mercury bench --json` the tests check.
type benchReport struct {
	Runs []struct {
		Label       string `json:"label"`
		Subscribers int    `json:"subscribers"`
		Published   int64  `json:"published"`
		Expected    int64  `json:"expected"`
		Delivered   int64  `json:"delivered"`
		Loss        int64  `json:"loss"`
		Unexpected  int64  `json:"unexpected"`
		Latency     struct {
			P50, P99, Max float64
		} `json:"latency_ms"`
		Errors struct {
			Connect, Disconnect, Publish int64
			First                        string
		} `json:"errors"`
		Server *struct {
			CPUSeconds       float64 `json:"cpu_seconds"`
			CPUPerDeliveryUS float64 `json:"cpu_per_delivery_us"`
			RSSBytes         int64   `json:"rss_bytes"`
		} `json:"server"`
	} `json:"runs"`
	Idle []struct {
		Label          string  `json:"label"`
		Opened         int     `json:"opened"`
		ConnectErrors  int     `json:"connect_errors"`
		ServerRSSAfter int64   `json:"server_rss_after"`
		BytesPerConn   float64 `json:"bytes_per_conn"`
	} `json:"idle"`
}

func runBench(t *testing.T, args ...string) benchReport {
	t.Helper()
	cmd := exec.Command(mercuryBin, append([]string{"bench"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("mercury bench %v: %v\n%s", args, err, stderr.String())
	}
	var rep benchReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("mercury bench %v printed %q: %v", args, stdout.String(), err)
	}
	return rep
}

// TestBenchReportAddsUp runs mercury bench against a real broker for a
// second and checks the report is consistent: every message published to
// the one topic reaches every subscriber, nothing is lost or duplicated,
// no errors. No figure is judged: speed belongs to benchmarks.
func TestBenchReportAddsUp(t *testing.T) {
	for _, mode := range [][]string{
		{"--publish", "ws"},
		{"--publish", "http", "--pubs", "2"},
		{"--publish", "ws", "--envelope"},
	} {
		t.Run(mode[1], func(t *testing.T) {
			b := startBroker(t)
			pid := strconv.Itoa(b.cmd.Process.Pid)
			rep := runBench(t, append([]string{"--url", b.WS, "--subs", "3", "--rate", "100", "--duration", "1s",
				"--drain", "10s", "--pid", pid, "--json", "--quiet"}, mode...)...)
			if len(rep.Runs) != 1 {
				t.Fatalf("%d runs", len(rep.Runs))
			}
			checkRun(t, rep, 0, 3)
			if s := rep.Runs[0].Server; s == nil || s.RSSBytes <= 0 || s.CPUSeconds < 0 {
				t.Errorf("server cost with --pid: %+v", s)
			}
		})
	}
}

// TestBenchBaseline runs the same load against the broker and the
// baseline server the bench starts itself.
func TestBenchBaseline(t *testing.T) {
	b := startBroker(t)
	rep := runBench(t, "--url", b.WS, "--subs", "2", "--rate", "100", "--duration", "1s", "--drain", "10s",
		"--layout", "each", "--baseline", "--pid", strconv.Itoa(b.cmd.Process.Pid), "--json", "--quiet")
	if len(rep.Runs) != 2 || rep.Runs[0].Label != "mercury" || rep.Runs[1].Label != "baseline" {
		t.Fatalf("runs: %+v", rep.Runs)
	}
	for i := range rep.Runs {
		checkRun(t, rep, i, 1) // a topic per subscriber
		if rep.Runs[i].Server == nil {
			t.Errorf("%s: no server cost", rep.Runs[i].Label)
		}
	}
}

// TestBenchTree publishes to leaves of a hierarchy: each message reaches
// its leaf, its group and the root.
func TestBenchTree(t *testing.T) {
	b := startBroker(t)
	rep := runBench(t, "--url", b.WS, "--subs", "10", "--rate", "100", "--duration", "1s", "--drain", "10s",
		"--layout", "tree", "--json", "--quiet")
	checkRun(t, rep, 0, 3)
}

func checkRun(t *testing.T, rep benchReport, i int, perMessage int64) {
	t.Helper()
	r := rep.Runs[i]
	if r.Published == 0 {
		t.Fatalf("%s: nothing published", r.Label)
	}
	if r.Expected != r.Published*perMessage {
		t.Errorf("%s: expected %d deliveries for %d messages, want %d each", r.Label, r.Expected, r.Published, perMessage)
	}
	if r.Delivered+r.Loss != r.Expected || r.Loss != 0 || r.Unexpected != 0 {
		t.Errorf("%s: delivered %d + loss %d, unexpected %d; want %d", r.Label, r.Delivered, r.Loss, r.Unexpected, r.Expected)
	}
	if e := r.Errors; e.Connect+e.Disconnect+e.Publish != 0 {
		t.Errorf("%s: errors %+v", r.Label, e)
	}
	if r.Latency.P50 <= 0 || r.Latency.Max < r.Latency.P99 || r.Latency.P99 < r.Latency.P50 {
		t.Errorf("%s: latencies %+v", r.Label, r.Latency)
	}
}

// TestBenchIdle opens idle subscribers and reads the broker's memory.
func TestBenchIdle(t *testing.T) {
	b := startBroker(t)
	rep := runBench(t, "idle", "--url", b.WS, "--conns", "50", "--settle", "100ms",
		"--pid", strconv.Itoa(b.cmd.Process.Pid), "--json")
	if len(rep.Idle) != 1 {
		t.Fatalf("idle: %+v", rep)
	}
	r := rep.Idle[0]
	if r.Opened != 50 || r.ConnectErrors != 0 || r.ServerRSSAfter <= 0 {
		t.Errorf("idle report %+v", r)
	}
}
