package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/mercury-broker/mercury/cmd/mercury/internal/command"
)

// benchSubcommands are the commands under `mercury bench`; the load run
// is the default.
var benchSubcommands = map[string]func(ctx context.Context, args []string, io command.Stdio) error{
	"idle":            runBenchIdle,
	"table":           runBenchTable,
	"baseline-server": runBaselineServer, // started by --baseline; not in the usage
}

// runBench puts a load of subscribers and publishers on a broker and
// reports deliveries, latency and the server's cost.
func Run(ctx context.Context, args []string, io command.Stdio) error {
	if len(args) > 0 {
		if sub, ok := benchSubcommands[args[0]]; ok {
			return sub(ctx, args[1:], io)
		}
	}
	fs := command.NewFlagSet("bench", "[flags] | idle [flags] | table REPORT.json…",
		"mercury bench --subs 100 --rate 2000 --duration 10s --pid $(pidof mercury)",
		"mercury bench --subs 100 --rate 2000 --baseline           # also against a minimal coder/websocket server",
		"mercury bench --layout each --pubs 4 --publish http --json > run.json",
		"mercury bench --url ws://b2:3000 --pub-url ws://b1:3000  # across two brokers of a cluster",
		"mercury bench idle --conns 10000 --pid $(pidof mercury)   # memory per idle subscriber",
		"mercury bench idle --conns 60000 --source-addrs 4 --layout one   # past one address's ephemeral ports",
		"mercury bench table mercury.json baseline.json nchan.json # reports side by side",
	)
	url := fs.String("url", "ws://127.0.0.1:3000", "the broker, `ws://HOST:PORT`; several brokers of a cluster comma-separated: subscribers are spread over them")
	pubURL := fs.String("pub-url", "", "where publishers connect, `ws://HOST:PORT` (comma-separated: spread); default: --url (to measure across brokers, give another broker of the cluster)")
	subs := fs.Int("subs", 100, "subscribers")
	pubs := fs.Int("pubs", 1, "publishers")
	via := fs.String("publish", "ws", "how publishers send, `MODE`: ws (a WebSocket per topic) or http (POST)")
	size := fs.Int("size", 128, fmt.Sprintf("message size in `BYTES` (at least %d: each carries a run id and a timestamp)", minPayloadSize))
	rate := fs.Float64("rate", 0, "messages per second per publisher; 0: as fast as the server takes them")
	duration := fs.Duration("duration", 10*time.Second, "how long to publish")
	layoutName := fs.String("layout", layoutOne, "topics: one (every subscriber on one topic), each (a topic per subscriber), tree (a three-level hierarchy; publishes reach a leaf, its group and the root)")
	root := fs.String("topic", "/bench", "the topic the layout starts at")
	envelope := fs.Bool("envelope", false, "connect with ?envelope=1 (frames carry the payload in \"data\")")
	var pids pidList
	fs.Var(&pids, "pid", "the server's process `ID` (repeatable; its children count too), to report its CPU per delivered message")
	baseline := fs.Bool("baseline", false, "also run the same load against a minimal broadcast server on the same WebSocket library, and print ratios")
	label := fs.String("label", "mercury", "the server's name in reports")
	scenario := fs.String("scenario", "", "a name for this load in reports")
	drain := fs.Duration("drain", 2*time.Second, "after publishing, how long to wait without a delivery before counting the rest as lost")
	jsonOut := fs.Bool("json", false, "print the report as JSON")
	quiet := fs.Bool("quiet", false, "no progress line on stderr")
	cpuProfile := fs.String("cpuprofile", "", "write the bench's own CPU profile to `FILE` (to keep the load generator cheap)")
	var sources sourceAddrs
	fs.Var(&sources, "source-addrs", "dial from `N` loopback addresses in turn (127.0.0.1 to 127.0.0.N) or from a comma-separated list, past the ~28,000 ephemeral ports of one address")
	if err := command.ParseFlags(fs, args, io); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return command.UsageError("unexpected argument %q", fs.Arg(0))
	}
	switch {
	case *subs < 1:
		return command.UsageError("--subs %d: want at least 1", *subs)
	case *pubs < 1:
		return command.UsageError("--pubs %d: want at least 1", *pubs)
	case *via != "ws" && *via != "http":
		return command.UsageError("--publish %q: want ws or http", *via)
	case *size < minPayloadSize:
		return command.UsageError("--size %d: want at least %d (each message carries a run id and a timestamp)", *size, minPayloadSize)
	case *rate < 0:
		return command.UsageError("--rate %g: want 0 (as fast as possible) or more", *rate)
	case *duration <= 0:
		return command.UsageError("--duration %v: want more than 0", *duration)
	case *drain <= 0:
		return command.UsageError("--drain %v: want more than 0", *drain)
	}
	subURLs, pubURLs := strings.Split(*url, ","), strings.Split(*pubURL, ",")
	if *pubURL == "" {
		pubURLs = subURLs
	}
	for _, u := range append(append([]string(nil), subURLs...), pubURLs...) {
		if !strings.HasPrefix(u, "ws://") && !strings.HasPrefix(u, "wss://") {
			return command.UsageError("--url/--pub-url %q: want ws://HOST:PORT", u)
		}
	}
	l, err := newLayout(*layoutName, *root, *subs, !*baseline)
	if err != nil {
		if *baseline {
			return command.UsageError("--layout: %v: the baseline only has exact topics; use --layout one or each", err)
		}
		return command.UsageError("--layout: %v", err)
	}
	pubConns := 0 // POST reuses a few kept-alive connections
	if *via == "ws" {
		pubConns = max(*pubs, len(l.pubTopics)) // a connection per topic a publisher sends to
	}
	if err := raiseFileLimit(*subs + pubConns); err != nil {
		return err
	}

	cfg := loadConfig{
		scenario: *scenario, subs: *subs, pubs: *pubs, publishVia: *via, size: *size, rate: *rate,
		duration: *duration, layout: *layoutName, root: *root, envelope: *envelope, drain: *drain,
		sources: sources,
	}
	if !*quiet {
		cfg.progress = io.Err
	}
	targets := []target{{label: *label, url: *url, subURLs: subURLs, pubURLs: pubURLs, pids: pids, hierarchical: true}}
	if *baseline {
		bp, err := startBaseline(io.Err)
		if err != nil {
			return err
		}
		defer bp.stop()
		targets = append(targets, target{label: "baseline", url: bp.url, pids: []int{bp.pid()}})
	}
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	var out benchOutput
	for _, t := range targets {
		rep, err := runLoad(ctx, cfg, t)
		if err != nil {
			return fmt.Errorf("%s: %w", t.label, err)
		}
		out.Runs = append(out.Runs, rep)
	}
	if *jsonOut {
		return writeJSON(io.Out, out)
	}
	writeTable(io.Out, out, false)
	writeFirstErrors(io.Out, out)
	return nil
}

// startCPUProfile profiles this process into file until stop is called.
func startCPUProfile(file string) (stop func(), err error) {
	f, err := os.Create(file)
	if err != nil {
		return nil, fmt.Errorf("failed to create the CPU profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("failed to start the CPU profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// writeFirstErrors says what went wrong first in each run that had errors.
func writeFirstErrors(w io.Writer, out benchOutput) {
	for _, r := range out.Runs {
		if r.Errors.First != "" {
			fmt.Fprintf(w, "%s: first error: %s\n", r.Label, r.Errors.First)
		}
	}
}
