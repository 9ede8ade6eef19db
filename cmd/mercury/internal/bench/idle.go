package bench

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/mercury-broker/mercury/cmd/mercury/internal/command"
)

// runBenchIdle opens many subscribers that receive nothing and reports
// what each costs the server in resident memory.
func runBenchIdle(ctx context.Context, args []string, io command.Stdio) error {
	fs := command.NewFlagSet("bench idle", "[flags]",
		"mercury bench idle --conns 10000 --pid $(pidof mercury)",
		"mercury bench idle --conns 15000 --pid $(pidof mercury) --baseline",
	)
	url := fs.String("url", "ws://127.0.0.1:3000", "the broker, `ws://HOST:PORT`")
	conns := fs.Int("conns", 1000, "idle subscribers to open")
	layoutName := fs.String("layout", layoutEach, "topics: each (a topic per subscriber) or one")
	root := fs.String("topic", "/bench/idle", "the topic the layout starts at")
	var pids pidList
	fs.Var(&pids, "pid", "the server's process `ID` (repeatable; its children count too), to report its memory")
	baseline := fs.Bool("baseline", false, "also measure a minimal broadcast server on the same WebSocket library, and print ratios")
	label := fs.String("label", "mercury", "the server's name in reports")
	settle := fs.Duration("settle", 3*time.Second, "how long to wait after the last connection before measuring")
	jsonOut := fs.Bool("json", false, "print the report as JSON")
	if err := command.ParseFlags(fs, args, io); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return command.UsageError("unexpected argument %q", fs.Arg(0))
	}
	switch {
	case *conns < 1:
		return command.UsageError("--conns %d: want at least 1", *conns)
	case *layoutName != layoutEach && *layoutName != layoutOne:
		return command.UsageError("--layout %q: want each or one", *layoutName)
	case !strings.HasPrefix(*url, "ws://") && !strings.HasPrefix(*url, "wss://"):
		return command.UsageError("--url %q: want ws://HOST:PORT", *url)
	}

	targets := []target{{label: *label, url: *url, pids: pids, hierarchical: true}}
	if *baseline {
		bp, err := startBaseline(io.Err)
		if err != nil {
			return err
		}
		defer bp.stop()
		targets = append(targets, target{label: "baseline", url: bp.url, pids: []int{bp.pid()}})
	}
	var out benchOutput
	for _, t := range targets {
		rep, err := measureIdle(ctx, t, *layoutName, *root, *conns, *settle)
		if err != nil {
			return fmt.Errorf("%s: %w", t.label, err)
		}
		fmt.Fprintf(io.Err, "%s: %d idle subscribers open, %d failed\n", t.label, rep.Opened, rep.ConnectErrors)
		out.Idle = append(out.Idle, rep)
	}
	if *jsonOut {
		return writeJSON(io.Out, out)
	}
	writeTable(io.Out, out, false)
	for _, r := range out.Idle {
		if r.FirstError != "" {
			fmt.Fprintf(io.Out, "%s: first error: %s\n", r.Label, r.FirstError)
		}
	}
	return nil
}

// measureIdle opens n idle subscribers on t and measures the server's
// memory before and after.
func measureIdle(ctx context.Context, t target, layoutName, root string, n int, settle time.Duration) (*idleReport, error) {
	l, err := newLayout(layoutName, root, n, t.hierarchical)
	if err != nil {
		return nil, command.UsageError("--layout: %v", err)
	}
	rep := &idleReport{Label: t.label, URL: t.url, Layout: layoutName, Conns: n}
	var before procSample
	if len(t.pids) > 0 {
		if before, err = sampleProcs(t.pids); err != nil {
			return nil, fmt.Errorf("failed to measure the server: %w", err)
		}
	}
	urls := make([]string, n)
	for i, topic := range l.subTopics {
		urls[i] = targetURL(t.url, "sub", topic, false)
	}
	hc := benchHTTPClient(0)
	defer hc.CloseIdleConnections()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	conns, errs, first := dialAll(ctx, hc, urls, 1<<20)
	defer closeAll(conns) // before cancel: no close handshakes to wait for
	for _, c := range conns {
		if c != nil {
			// Read on, so the server's pings are answered.
			c.CloseRead(ctx)
			rep.Opened++
		}
	}
	rep.ConnectErrors = errs
	if first != nil {
		rep.FirstError = first.Error()
	}
	if rep.Opened == 0 {
		return nil, &command.ExitError{Code: command.ExitConnect, Err: fmt.Errorf("no subscriber could connect: %w", first)}
	}
	select {
	case <-time.After(settle):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if len(t.pids) > 0 {
		after, err := sampleProcs(t.pids)
		if err != nil {
			return nil, fmt.Errorf("failed to measure the server: %w", err)
		}
		rep.ServerRSSBefore, rep.ServerRSSAfter = before.rss, after.rss
		rep.BytesPerConn = float64(after.rss-before.rss) / float64(rep.Opened)
	}
	self, err := sampleSelf()
	if err != nil {
		return nil, fmt.Errorf("failed to measure the bench: %w", err)
	}
	rep.GeneratorRSS = self.rss
	return rep, nil
}
