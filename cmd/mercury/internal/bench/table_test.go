package bench

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mercury-broker/mercury/cmd/mercury/internal/command"
)

func sampleOutput() benchOutput {
	run := func(label string, delivered int64, p99, cpu float64) *loadReport {
		writes := cpu / 10
		return &loadReport{
			Label: label, Scenario: "latency", Subscribers: 100, Publishers: 1, PublishVia: "ws",
			Size: 128, Rate: 2000, DurationS: 10, Layout: "one",
			Published: 20000, Expected: 2000000, Delivered: delivered, Loss: 2000000 - delivered,
			DeliveredPerSec: float64(delivered) / 10,
			Latency:         latencyReport{P50: 0.25, P90: 1.5, P99: p99, P999: 120, Max: 1234.5},
			Server:          &costReport{CPUPerDeliveryUS: cpu, Cores: cpu / 5, RSSBytes: 12_500_000, WritesPerDelivery: &writes},
			Generator:       costReport{CPUPerDeliveryUS: 2.5, Cores: 0.5},
		}
	}
	return benchOutput{
		Runs: []*loadReport{run("mercury", 2000000, 4, 3), run("baseline", 1999000, 80, 15)},
		Idle: []*idleReport{
			{Label: "mercury", Layout: "each", Conns: 15000, Opened: 15000, ServerRSSAfter: 150_000_000, BytesPerConn: 9500},
			{Label: "baseline", Layout: "each", Conns: 15000, Opened: 14990, ConnectErrors: 10, ServerRSSAfter: 800_000_000, BytesPerConn: 54000},
		},
	}
}

func TestWriteTable(t *testing.T) {
	var b bytes.Buffer
	writeTable(&b, sampleOutput(), false)
	want := `                                     mercury   baseline  mercury/baseline
latency: 100 subscribers, 1 ws publisher(s) at 2,000 msg/s, 128 B, layout one, raw, 10s
  published                           20,000     20,000              1.00
  delivered                        2,000,000  1,999,000              1.00
  loss                                     0      1,000              0.00
  delivered/s                        200,000    199,900              1.00
  latency p50 (ms)                     0.250      0.250              1.00
  latency p90 (ms)                      1.50       1.50              1.00
  latency p99 (ms)                      4.00       80.0              0.05
  latency p99.9 (ms)                     120        120              1.00
  latency max (ms)                     1,235      1,235              1.00
  server CPU per delivery (µs)          3.00       15.0              0.20
  server CPU (cores)                   0.600       3.00              0.20
  server write calls per delivery      0.300       1.50              0.20
  server RSS (MB)                       12.5       12.5              1.00
  bench CPU per delivery (µs)           2.50       2.50              1.00
  bench CPU (cores)                    0.500      0.500              1.00
  errors                                   0          0                 —
idle subscribers (15,000 connections, layout each)
  idle connections                    15,000     14,990              1.00
  connect errors                           0         10              0.00
  server RSS (MB)                        150        800              0.19
  memory per idle connection (KB)       9.50       54.0              0.18
`
	if got := b.String(); got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
}

func TestWriteTableMarkdown(t *testing.T) {
	var b bytes.Buffer
	writeTable(&b, sampleOutput(), true)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if lines[0] != "|  | mercury | baseline | mercury/baseline |" || lines[1] != "| --- | ---: | ---: | ---: |" {
		t.Fatalf("header:\n%s\n%s", lines[0], lines[1])
	}
	if !strings.HasPrefix(lines[2], "| **latency: 100 subscribers") {
		t.Fatalf("section row: %s", lines[2])
	}
	if lines[9] != "| latency p99 (ms) | 4.00 | 80.0 | 0.05 |" {
		t.Fatalf("p99 row: %s", lines[9])
	}
	for _, l := range lines {
		if strings.Count(l, "|") != 5 {
			t.Fatalf("row with the wrong number of cells: %s", l)
		}
	}
}

// TestWriteTableMissing: a server without a figure (no --pid) shows a
// dash, and so does its ratio.
func TestWriteTableMissing(t *testing.T) {
	out := sampleOutput()
	out.Runs[1].Server = nil
	out.Idle = nil
	var b bytes.Buffer
	writeTable(&b, out, false)
	found := false
	for _, line := range strings.Split(b.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, "  server CPU per delivery (µs)"); ok {
			found = true
			if f := strings.Fields(rest); len(f) != 3 || f[0] != "3.00" || f[1] != "—" || f[2] != "—" {
				t.Errorf("row without the baseline's figure: %q", line)
			}
		}
	}
	if !found {
		t.Errorf("no CPU row in:\n%s", b.String())
	}
}

// TestBenchTableCommand reads JSON reports as --json writes them.
func TestBenchTableCommand(t *testing.T) {
	dir := t.TempDir()
	all := sampleOutput()
	var files []string
	for i, part := range []benchOutput{{Runs: all.Runs[:1], Idle: all.Idle[:1]}, {Runs: all.Runs[1:], Idle: all.Idle[1:]}} {
		var b bytes.Buffer
		if err := writeJSON(&b, part); err != nil {
			t.Fatal(err)
		}
		name := filepath.Join(dir, []string{"m.json", "b.json"}[i])
		if err := os.WriteFile(name, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, name)
	}
	var out, errOut bytes.Buffer
	code := command.Code(Run(context.Background(), append([]string{"table"}, files...), command.Stdio{Out: &out, Err: &errOut}))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var want bytes.Buffer
	writeTable(&want, all, false)
	if out.String() != want.String() {
		t.Errorf("table from files:\n%s\nwant:\n%s", out.String(), want.String())
	}
	if code := command.Code(Run(context.Background(), []string{"table", filepath.Join(dir, "none.json")}, command.Stdio{Out: &out, Err: &errOut})); code != command.ExitRefused {
		t.Errorf("a missing report: exit %d", code)
	}
}

func TestFormatting(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -1234: "-1,234", 199999.6: "200,000"} {
		if got := fmtCount(v); got != want {
			t.Errorf("fmtCount(%v) = %q, want %q", v, got, want)
		}
	}
	for v, want := range map[float64]string{0: "0", 0.01234: "0.0123", 1.234: "1.23", 12.34: "12.3", 123.4: "123", 12345.6: "12,346"} {
		if got := fmtFloat(v); got != want {
			t.Errorf("fmtFloat(%v) = %q, want %q", v, got, want)
		}
	}
	if fmtRatio(1, 0, true) != "—" || fmtRatio(1, 2, false) != "—" || fmtRatio(1, 4, true) != "0.25" {
		t.Error("fmtRatio")
	}
}

func TestBenchUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--size", "10"},
		{"--subs", "0"},
		{"--publish", "carrier-pigeon"},
		{"--layout", "star"},
		{"--layout", "tree", "--baseline"},
		{"--url", "http://x"},
		{"--rate", "-1"},
		{"extra"},
		{"idle", "--conns", "0"},
		{"idle", "--layout", "tree"},
		{"table"},
	} {
		var out, errOut bytes.Buffer
		if code := command.Code(Run(context.Background(), args, command.Stdio{Out: &out, Err: &errOut})); code != command.ExitUsage {
			t.Errorf("bench %v: exit %d, want %d (%s)", args, code, command.ExitUsage, errOut.String())
		}
	}
}

// TestWriteTableMedian: repeated runs of one scenario on one server show
// the median of each figure.
func TestWriteTableMedian(t *testing.T) {
	out := sampleOutput()
	out.Idle = nil
	for _, p99 := range []float64{1, 100} {
		r := *out.Runs[0]
		r.Latency.P99 = p99
		out.Runs = append(out.Runs, &r)
	}
	var b bytes.Buffer
	writeTable(&b, out, false)
	if !strings.Contains(b.String(), "10s (median of 3 runs)\n") {
		t.Errorf("no median note:\n%s", b.String())
	}
	// mercury's p99 values are 4, 1 and 100: the median is 4, and
	// the baseline's one run gives 80.
	for _, line := range strings.Split(b.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, "  latency p99 (ms)"); ok {
			if f := strings.Fields(rest); len(f) != 3 || f[0] != "4.00" || f[1] != "80.0" {
				t.Errorf("p99 row %q", line)
			}
		}
	}
	if v, ok := medianOf(nil, always(func(r *loadReport) float64 { return 1 })); ok || v != 0 {
		t.Error("median of nothing")
	}
	two := []*loadReport{{Published: 1}, {Published: 4}}
	if v, _ := medianOf(two, always(func(r *loadReport) float64 { return float64(r.Published) })); v != 2.5 {
		t.Errorf("median of 1 and 4 = %v", v)
	}
}
