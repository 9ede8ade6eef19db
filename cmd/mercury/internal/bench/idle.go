package bench

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/mercury-broker/mercury/cmd/mercury/internal/command"
)

// idleConfig is what `mercury bench idle` opens and measures.
type idleConfig struct {
	layout     string
	root       string
	conns      int
	settle     time.Duration
	broadcasts int // messages to every subscriber, one after the other (layout one)
	sources    sourceAddrs
}

// runBenchIdle opens many subscribers that receive nothing, reports what
// each costs the server in resident memory and how fast they connected,
// and then how long one message takes to reach them all.
func runBenchIdle(ctx context.Context, args []string, io command.Stdio) error {
	fs := command.NewFlagSet("bench idle", "[flags]",
		"mercury bench idle --conns 10000 --pid $(pidof mercury)",
		"mercury bench idle --conns 15000 --pid $(pidof mercury) --baseline",
		"mercury bench idle --conns 19000 --layout one --broadcasts 5 --pid $(pidof mercury)   # and the time to reach them all",
		"mercury bench idle --conns 60000 --source-addrs 4 --layout one   # past one address's ~28,000 ephemeral ports",
	)
	url := fs.String("url", "ws://127.0.0.1:3000", "the broker, `ws://HOST:PORT`")
	conns := fs.Int("conns", 1000, "idle subscribers to open")
	layoutName := fs.String("layout", layoutEach, "topics: each (a topic per subscriber) or one (all on one topic: then broadcasts are measured)")
	root := fs.String("topic", "/bench/idle", "the topic the layout starts at")
	var pids pidList
	fs.Var(&pids, "pid", "the server's process `ID` (repeatable; its children count too), to report its memory")
	baseline := fs.Bool("baseline", false, "also measure a minimal broadcast server on the same WebSocket library, and print ratios")
	label := fs.String("label", "mercury", "the server's name in reports")
	settle := fs.Duration("settle", 3*time.Second, "how long to wait after the last connection before measuring")
	broadcasts := fs.Int("broadcasts", defaultBroadcasts, "with --layout one: after measuring memory, publish `N` messages to the topic, one after the other, each timed until every subscriber has it")
	var sources sourceAddrs
	fs.Var(&sources, "source-addrs", "dial from `N` loopback addresses in turn (127.0.0.1 to 127.0.0.N) or from a comma-separated list, past the ~28,000 ephemeral ports of one address")
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
	case *broadcasts < 0:
		return command.UsageError("--broadcasts %d: want 0 or more", *broadcasts)
	case *broadcasts > 0 && *layoutName != layoutOne && command.Given(fs, "broadcasts"):
		return command.UsageError("--broadcasts: a broadcast reaches every subscriber only with --layout one")
	}
	cfg := idleConfig{layout: *layoutName, root: *root, conns: *conns, settle: *settle, broadcasts: *broadcasts, sources: sources}
	if cfg.layout != layoutOne {
		cfg.broadcasts = 0
	}
	pubConns := 0
	if cfg.broadcasts > 0 {
		pubConns = 1
	}
	if err := raiseFileLimit(cfg.conns + pubConns); err != nil {
		return err
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
		rep, err := measureIdle(ctx, t, cfg, io)
		if err != nil {
			return fmt.Errorf("%s: %w", t.label, err)
		}
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

// measureIdle opens cfg.conns idle subscribers on t, measures the
// server's memory before and after and the rate they connected at, then
// times the broadcasts.
func measureIdle(ctx context.Context, t target, cfg idleConfig, io command.Stdio) (*idleReport, error) {
	l, err := newLayout(cfg.layout, cfg.root, cfg.conns, t.hierarchical)
	if err != nil {
		return nil, command.UsageError("--layout: %v", err)
	}
	rep := &idleReport{Label: t.label, URL: t.url, Layout: cfg.layout, Conns: cfg.conns, SourceAddrs: max(1, len(cfg.sources))}
	var before procSample
	if len(t.pids) > 0 {
		if before, err = sampleProcs(t.pids); err != nil {
			return nil, fmt.Errorf("failed to measure the server: %w", err)
		}
	}
	urls := make([]string, cfg.conns)
	for i, topic := range l.subTopics {
		urls[i] = targetURL(t.url, "sub", topic, false)
	}
	hc := benchHTTPClient(0, cfg.sources)
	defer hc.CloseIdleConnections()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	conns, errs, first := dialAll(ctx, hc, urls, 1<<20)
	connectTime := time.Since(start)
	defer closeAll(conns) // before cancel: no close handshakes to wait for
	var open []*idleSub
	for _, c := range conns {
		if c != nil {
			open = append(open, &idleSub{ws: c})
		}
	}
	rep.Opened = len(open)
	rep.ConnectErrors = errs
	if first != nil {
		rep.FirstError = first.Error()
	}
	if rep.Opened == 0 {
		return nil, &command.ExitError{Code: command.ExitConnect, Err: fmt.Errorf("no subscriber could connect: %w", first)}
	}
	rep.ConnectSeconds = connectTime.Seconds()
	rep.ConnectsPerSec = float64(rep.Opened) / connectTime.Seconds()
	fmt.Fprintf(io.Err, "%s: %d idle subscribers open in %.1fs (%.0f/s), %d failed\n",
		t.label, rep.Opened, connectTime.Seconds(), rep.ConnectsPerSec, rep.ConnectErrors)
	// Read on, so the server's pings are answered (and broadcasts timed).
	b := newBroadcaster(open, cfg.broadcasts)
	stopReading := b.startReading(ctx)
	defer stopReading()
	select {
	case <-time.After(cfg.settle):
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
	if cfg.broadcasts > 0 {
		pub, err := dialWS(ctx, hc, targetURL(t.url, "pub", l.pubTopics[0], false), 1<<20)
		if err != nil {
			return nil, &command.ExitError{Code: command.ExitConnect, Err: err}
		}
		defer pub.CloseNow()
		pub.CloseRead(ctx) // a raw publisher gets no answers; errors close it
		if rep.Broadcasts, err = b.run(ctx, pub, io); err != nil {
			return nil, err
		}
		rep.Broadcast = medianBroadcast(rep.Broadcasts)
	}
	return rep, nil
}
