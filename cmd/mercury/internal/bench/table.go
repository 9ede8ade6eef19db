package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/mercury-broker/mercury/cmd/mercury/internal/command"
)

// runBenchTable prints the reports of several `mercury bench --json`
// runs side by side, with the ratio of the first server to each other.
func runBenchTable(_ context.Context, args []string, io command.Stdio) error {
	fs := command.NewFlagSet("bench table", "[flags] REPORT.json…",
		"mercury bench table mercury.json baseline.json nchan.json",
		"mercury bench table --markdown run.json idle.json",
	)
	markdown := fs.Bool("markdown", false, "print a Markdown table")
	if err := command.ParseFlags(fs, args, io); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return command.UsageError("give at least one report written by 'mercury bench --json'")
	}
	var all benchOutput
	for _, name := range fs.Args() {
		b, err := os.ReadFile(name)
		if err != nil {
			return fmt.Errorf("failed to read a report: %w", err)
		}
		var out benchOutput
		if err := json.Unmarshal(b, &out); err != nil {
			return fmt.Errorf("failed to read the report %s: %w", name, err)
		}
		all.Runs = append(all.Runs, out.Runs...)
		all.Idle = append(all.Idle, out.Idle...)
	}
	writeTable(io.Out, all, *markdown)
	return nil
}

// metric is one row of a load table.
type metric struct {
	name   string
	value  func(r *loadReport) (float64, bool) // false: not measured
	format func(float64) string
}

func always(f func(r *loadReport) float64) func(r *loadReport) (float64, bool) {
	return func(r *loadReport) (float64, bool) { return f(r), true }
}

func ifServer(f func(c *costReport) float64) func(r *loadReport) (float64, bool) {
	return func(r *loadReport) (float64, bool) {
		if r.Server == nil {
			return 0, false
		}
		return f(r.Server), true
	}
}

var loadMetrics = []metric{
	{"published", always(func(r *loadReport) float64 { return float64(r.Published) }), fmtCount},
	{"delivered", always(func(r *loadReport) float64 { return float64(r.Delivered) }), fmtCount},
	{"loss", always(func(r *loadReport) float64 { return float64(r.Loss) }), fmtCount},
	{"delivered/s", always(func(r *loadReport) float64 { return r.DeliveredPerSec }), fmtCount},
	{"latency p50 (ms)", always(func(r *loadReport) float64 { return r.Latency.P50 }), fmtFloat},
	{"latency p90 (ms)", always(func(r *loadReport) float64 { return r.Latency.P90 }), fmtFloat},
	{"latency p99 (ms)", always(func(r *loadReport) float64 { return r.Latency.P99 }), fmtFloat},
	{"latency p99.9 (ms)", always(func(r *loadReport) float64 { return r.Latency.P999 }), fmtFloat},
	{"latency max (ms)", always(func(r *loadReport) float64 { return r.Latency.Max }), fmtFloat},
	{"server CPU per delivery (µs)", ifServer(func(c *costReport) float64 { return c.CPUPerDeliveryUS }), fmtFloat},
	{"server CPU (cores)", ifServer(func(c *costReport) float64 { return c.Cores }), fmtFloat},
	{"server write calls per delivery", func(r *loadReport) (float64, bool) {
		if r.Server == nil || r.Server.WritesPerDelivery == nil {
			return 0, false
		}
		return *r.Server.WritesPerDelivery, true
	}, fmtFloat},
	{"server RSS (MB)", ifServer(func(c *costReport) float64 { return float64(c.RSSBytes) / 1e6 }), fmtFloat},
	{"bench CPU per delivery (µs)", always(func(r *loadReport) float64 { return r.Generator.CPUPerDeliveryUS }), fmtFloat},
	{"bench CPU (cores)", always(func(r *loadReport) float64 { return r.Generator.Cores }), fmtFloat},
	{"errors", always(func(r *loadReport) float64 { return float64(r.Errors.total()) }), fmtCount},
}

// idleMetric is one row of an idle table.
type idleMetric struct {
	name   string
	value  func(r *idleReport) (float64, bool)
	format func(float64) string
}

func hasServer(f func(r *idleReport) float64) func(r *idleReport) (float64, bool) {
	return func(r *idleReport) (float64, bool) { return f(r), r.ServerRSSAfter > 0 }
}

var idleMetrics = []idleMetric{
	{"idle connections", func(r *idleReport) (float64, bool) { return float64(r.Opened), true }, fmtCount},
	{"connect errors", func(r *idleReport) (float64, bool) { return float64(r.ConnectErrors), true }, fmtCount},
	{"server RSS (MB)", hasServer(func(r *idleReport) float64 { return float64(r.ServerRSSAfter) / 1e6 }), fmtFloat},
	{"memory per idle connection (KB)", hasServer(func(r *idleReport) float64 { return r.BytesPerConn / 1e3 }), fmtFloat},
	{"connections opened per second", func(r *idleReport) (float64, bool) { return r.ConnectsPerSec, r.ConnectsPerSec > 0 }, fmtCount},
	{"broadcast reached", hasBroadcast(func(b *broadcastReport) float64 { return float64(b.Received) }), fmtCount},
	{"broadcast p50 (ms)", hasBroadcast(func(b *broadcastReport) float64 { return b.P50MS }), fmtFloat},
	{"broadcast p99 (ms)", hasBroadcast(func(b *broadcastReport) float64 { return b.P99MS }), fmtFloat},
	{"broadcast last (ms)", hasBroadcast(func(b *broadcastReport) float64 { return b.LastMS }), fmtFloat},
}

// hasBroadcast reads a figure of the median broadcast, when there was one.
func hasBroadcast(f func(b *broadcastReport) float64) func(r *idleReport) (float64, bool) {
	return func(r *idleReport) (float64, bool) {
		if r.Broadcast == nil {
			return 0, false
		}
		return f(r.Broadcast), true
	}
}

// writeTable prints the runs as one table: a column per server, in the
// order they first appear, then the first server's ratio to each other;
// a block of rows per scenario.
func writeTable(w io.Writer, out benchOutput, markdown bool) {
	var labels []string
	seen := map[string]bool{}
	addLabel := func(l string) {
		if !seen[l] {
			seen[l] = true
			labels = append(labels, l)
		}
	}
	for _, r := range out.Runs {
		addLabel(r.Label)
	}
	for _, r := range out.Idle {
		addLabel(r.Label)
	}
	header := []string{""}
	header = append(header, labels...)
	for _, l := range labels[min(1, len(labels)):] {
		header = append(header, labels[0]+"/"+l)
	}
	rows := [][]string{header}

	var scenarios []string
	byScenario := map[string]map[string][]*loadReport{}
	for _, r := range out.Runs {
		s := scenarioOf(r)
		if byScenario[s] == nil {
			byScenario[s] = map[string][]*loadReport{}
			scenarios = append(scenarios, s)
		}
		byScenario[s][r.Label] = append(byScenario[s][r.Label], r)
	}
	for _, s := range scenarios {
		rounds := 0
		for _, runs := range byScenario[s] {
			rounds = max(rounds, len(runs))
		}
		heading := s
		if rounds > 1 {
			heading += fmt.Sprintf(" (median of %d runs)", rounds)
		}
		rows = append(rows, []string{heading})
		for _, m := range loadMetrics {
			vals := make([]float64, len(labels))
			oks := make([]bool, len(labels))
			for i, l := range labels {
				vals[i], oks[i] = medianOf(byScenario[s][l], m.value)
			}
			rows = append(rows, tableRow(m.name, vals, oks, m.format))
		}
	}
	if len(out.Idle) > 0 {
		idle := map[string]*idleReport{}
		for _, r := range out.Idle {
			idle[r.Label] = r
		}
		rows = append(rows, []string{fmt.Sprintf("idle subscribers (%s)", idleScenario(out.Idle[0]))})
		for _, m := range idleMetrics {
			vals := make([]float64, len(labels))
			oks := make([]bool, len(labels))
			for i, l := range labels {
				if r := idle[l]; r != nil {
					vals[i], oks[i] = m.value(r)
				}
			}
			if !slices.Contains(oks, true) {
				continue // a figure no run measured (reports of older benches, no broadcast)
			}
			rows = append(rows, tableRow(m.name, vals, oks, m.format))
		}
	}
	if markdown {
		writeMarkdown(w, rows)
	} else {
		writeAligned(w, rows)
	}
}

// medianOf returns the median of a metric over the runs that have it: the
// servers run one after the other on a shared machine, and repeating the
// rounds and taking medians keeps one disturbed run from deciding a ratio.
func medianOf(runs []*loadReport, value func(*loadReport) (float64, bool)) (float64, bool) {
	var vs []float64
	for _, r := range runs {
		if v, ok := value(r); ok {
			vs = append(vs, v)
		}
	}
	if len(vs) == 0 {
		return 0, false
	}
	slices.Sort(vs)
	n := len(vs)
	if n%2 == 1 {
		return vs[n/2], true
	}
	return (vs[n/2-1] + vs[n/2]) / 2, true
}

// tableRow formats one metric for every server, then the ratios.
func tableRow(name string, vals []float64, oks []bool, format func(float64) string) []string {
	row := []string{name}
	for i, v := range vals {
		if oks[i] {
			row = append(row, format(v))
		} else {
			row = append(row, "—")
		}
	}
	for i := 1; i < len(vals); i++ {
		row = append(row, fmtRatio(vals[0], vals[i], oks[0] && oks[i]))
	}
	return row
}

// scenarioOf names the load a run put on its server.
func scenarioOf(r *loadReport) string {
	rate := "as fast as possible"
	if r.Rate > 0 {
		rate = "at " + fmtCount(r.Rate) + " msg/s"
	}
	mode := "raw"
	if r.Envelope {
		mode = "envelope"
	}
	desc := fmt.Sprintf("%d subscribers, %d %s publisher(s) %s, %d B, layout %s, %s, %gs",
		r.Subscribers, r.Publishers, r.PublishVia, rate, r.Size, r.Layout, mode, r.DurationS)
	if r.Scenario != "" {
		return r.Scenario + ": " + desc
	}
	return desc
}

func idleScenario(r *idleReport) string {
	return fmt.Sprintf("%s connections, layout %s", fmtCount(float64(r.Conns)), r.Layout)
}

func fmtRatio(a, b float64, ok bool) string {
	if !ok || b == 0 || math.IsNaN(a/b) {
		return "—"
	}
	return strconv.FormatFloat(a/b, 'f', 2, 64)
}

// fmtCount prints a whole number with thousands separators.
func fmtCount(v float64) string {
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// fmtFloat prints three significant digits, at least.
func fmtFloat(v float64) string {
	switch a := math.Abs(v); {
	case a == 0:
		return "0"
	case a >= 100:
		return fmtCount(v)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	decimals := 2 - int(math.Floor(math.Log10(math.Abs(v))))
	return strconv.FormatFloat(v, 'f', decimals, 64)
}

// writeAligned prints rows as columns: the first left-aligned, the others
// right-aligned; a row of one cell is a section heading.
func writeAligned(w io.Writer, rows [][]string) {
	widths := map[int]int{}
	for _, r := range rows {
		if len(r) == 1 {
			continue
		}
		for i, c := range r {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	for _, r := range rows {
		if len(r) == 1 {
			fmt.Fprintf(w, "%s\n", r[0])
			continue
		}
		var b strings.Builder
		for i, c := range r {
			padding := strings.Repeat(" ", widths[i]-len([]rune(c)))
			if i == 0 {
				b.WriteString("  " + c + padding)
			} else {
				b.WriteString("  " + padding + c)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

// writeMarkdown prints rows as a Markdown table; section headings become
// bold rows.
func writeMarkdown(w io.Writer, rows [][]string) {
	cols := len(rows[0])
	line := func(cells []string) {
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
	line(rows[0])
	sep := make([]string, cols)
	sep[0] = "---"
	for i := 1; i < cols; i++ {
		sep[i] = "---:"
	}
	line(sep)
	for _, r := range rows[1:] {
		if len(r) == 1 {
			cells := make([]string, cols)
			cells[0] = "**" + r[0] + "**"
			line(cells)
			continue
		}
		line(r)
	}
}
