package test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestServeExposesMetricsAndLogs: the broker as shipped, with a durable bus
// and a work queue, reports its store's syncs and its queues to
// Prometheus, is ready, and logs its connections.
func TestServeExposesMetricsAndLogs(t *testing.T) {
	config := replayConfig(t, "buses:\n  /d:\n    durable: true\n  /jobs:\n    queue: {max_attempts: 3}\n")
	b := startBroker(t, "--config", config, "--data-dir", t.TempDir())
	sub := dial(t, b.WS+"/sub/d", nil)
	for range 3 {
		publishSeq(t, b.HTTP+"/pub/d", `{"n":1}`)
		readText(t, sub)
	}
	for range 2 {
		post(t, b.HTTP+"/push/jobs", "job")
	}

	resp, err := http.Get(b.HTTP + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/readyz: %d", resp.StatusCode)
	}

	resp, err = http.Get(b.HTTP + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics (%d) does not parse: %v\n%s", resp.StatusCode, err, body)
	}
	value := func(name, label, want string) float64 {
		t.Helper()
		f := fams[name]
		if f == nil {
			t.Fatalf("no %s", name)
		}
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if l.GetName() == label && l.GetValue() == want {
					if m.Counter != nil {
						return m.Counter.GetValue()
					}
					return m.Gauge.GetValue()
				}
			}
		}
		t.Fatalf("no %s{%s=%q}", name, label, want)
		return 0
	}
	if n := fams["mercury_store_sync_seconds"].GetMetric()[0].GetHistogram().GetSampleCount(); n < 3 {
		t.Errorf("store syncs observed: %d, want at least one per confirmed message (3)", n)
	}
	if got := value("mercury_messages_in_total", "bus", "/d"); got != 3 {
		t.Errorf("messages in on /d: %v", got)
	}
	if got := value("mercury_queue_depth", "queue", "/jobs"); got != 2 {
		t.Errorf("queue depth of /jobs: %v", got)
	}
	if got := value("mercury_connections", "pattern", "sub"); got != 1 {
		t.Errorf("sub connections: %v", got)
	}
	if fams["process_resident_memory_bytes"] == nil {
		t.Error("no process metrics")
	}

	sub.Close()
	waitFor(t, "the close logged", func() bool { return strings.Contains(b.logs.String(), `msg="connection closed"`) })
	logs := b.logs.String()
	for _, want := range []string{`msg="connection opened" id=1`, `pattern=sub topic=/d`, `msg="connection closed" id=1`, "messages_out=3"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
}
