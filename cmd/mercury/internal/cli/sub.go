package cli

import (
	"context"
	"errors"
	"flag"
	"net/url"
	"sync"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/cmd/mercury/internal/command"
	"github.com/mercury-broker/mercury/web/client"
)

// outputFlags say how received messages are shown.
type outputFlags struct {
	envelope  bool
	raw       bool
	showTopic bool
	json      bool
}

func addOutputFlags(fs *flag.FlagSet) *outputFlags {
	o := &outputFlags{}
	fs.BoolVar(&o.envelope, "envelope", false, "envelope mode: each message comes with its topic, sequence number and time (and sub resumes after a reconnection with no gap)")
	fs.BoolVar(&o.raw, "raw", false, "print each message exactly as received, without reformatting")
	fs.BoolVar(&o.showTopic, "show-topic", false, "print each message's topic before it (implies --envelope)")
	fs.BoolVar(&o.json, "json", false, "print each message as one JSON object per line: topic, seq, time, data (implies --envelope)")
	return o
}

func (o *outputFlags) check() error {
	if o.raw && o.json {
		return command.UsageError("--raw and --json are exclusive")
	}
	if o.raw && o.showTopic {
		return command.UsageError("--raw prints frames as received: use --json or leave out --raw to see topics")
	}
	return nil
}

// wantsEnvelope reports whether the output needs envelope mode.
func (o *outputFlags) wantsEnvelope() bool { return o.envelope || o.showTopic || o.json }

// apply sets the screen's format from the flags.
func (o *outputFlags) apply(scr *screen) {
	scr.fmt.raw, scr.fmt.json, scr.fmt.showTopic = o.raw, o.json, o.showTopic
}

func RunSub(ctx context.Context, args []string, io command.Stdio) error {
	fs := command.NewFlagSet("sub", "TOPIC|URL [flags]",
		"mercury sub /livesys                        # everything under /livesys, until Ctrl-C",
		"mercury sub /livesys --show-topic           # with the topic of each message",
		"mercury sub /jobs/42/result --count 1 --timeout 30s   # wait for one message",
		"mercury sub /livesys --since 1017 --json    # replay after seq 1017, then live, as JSON lines",
		"mercury sub wss://broker.example.com/sub/livesys --token \"$TOKEN\"",
		"mercury sub /livesys | jq .cmd              # in a pipe: one compact message per line",
		"mercury sub /livesys/42 --reply-exec 'uptime'   # an agent: answers each request with uptime's output",
	)
	conn := addConnFlags(fs, true)
	session := addSessionFlags(fs, "messages")
	out := addOutputFlags(fs)
	since := fs.String("since", "", "first replay the kept messages after sequence number `SEQ` (or EPOCH:SEQ), then continue live")
	replyExec := fs.String("reply-exec", "", "answer each request with the output of `CMD` (run by sh, the request's data on its standard input; a failure answers {\"error\":…})")
	pos, err := command.ParseArgs(fs, args, io)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return command.UsageError("want one topic or URL, got %d arguments (see mercury sub --help)", len(pos))
	}
	if err := firstError(session.check(), out.check()); err != nil {
		return err
	}
	var from broker.Position
	if *since != "" {
		if from, err = broker.ParsePosition(*since); err != nil {
			return command.UsageError("--since %q: want a sequence number, or EPOCH:SEQ", *since)
		}
	}
	opts, err := conn.options()
	if err != nil {
		return err
	}
	opts.Envelope = out.wantsEnvelope() || *replyExec != "" // requests come to envelope subscribers only
	scr := newScreen("sub", io, conn.quiet)
	out.apply(scr)

	ctx, cancel := session.context(ctx)
	defer cancel()

	if opts.Envelope && *replyExec == "" {
		if u, err := conn.target("sub", pos[0], nil); err == nil {
			if server, topic, _, ok := sdkTarget(u); ok {
				return runSubscriber(ctx, scr, session, sdkClient(server, opts, scr), u, topic, *since, from)
			}
		}
	}

	// In envelope mode the last sequence number seen is where a new
	// connection resumes: no gap and no duplicate across a reconnection.
	var (
		mu       sync.Mutex
		last     = from // with its epoch: a broker that started afresh says so
		resume   = *since != ""
		received int
	)
	r := &receiver{scr: scr, opts: opts}
	r.url = func() (string, error) {
		q := url.Values{}
		mu.Lock()
		if resume {
			q.Set("since", last.String())
		}
		if !opts.Envelope {
			resume = false // without sequence numbers, a reconnection cannot resume
		}
		mu.Unlock()
		return conn.target("sub", pos[0], q)
	}
	if !opts.Envelope {
		r.reconnected = func() {
			scr.warn("messages published while disconnected were missed (--envelope resumes without a gap)")
		}
	}
	r.handle = func(ctx context.Context, c *client.Conn, f client.Frame) error {
		if *replyExec != "" {
			if handled, err := answerRequest(ctx, c, *replyExec, f, io); handled {
				return err
			}
		}
		var line []byte
		if opts.Envelope {
			in, err := client.ParseIncoming(f.Data)
			switch {
			case err != nil:
				scr.warn("%v", err)
				return nil
			case in.Gap != nil:
				reportGap(scr, in.Gap)
				return nil
			case in.Error != nil:
				scr.warn("the broker says: %v", in.Error)
				return nil
			case in.Message == nil:
				return nil
			}
			mu.Lock()
			last, resume = broker.Position{Seq: in.Message.Seq, Epoch: in.Message.Epoch}, true
			mu.Unlock()
			line = scr.fmt.envelope(in.Message, f.Data)
		} else {
			line = scr.fmt.frame(f)
		}
		if err := scr.message(line); err != nil {
			return &handlerError{err}
		}
		received++
		if session.count > 0 && received >= session.count {
			return errEnough
		}
		return nil
	}
	err = r.run(ctx)
	return session.outcome(ctx, received, err)
}

// reportGap tells that part of a replay is no longer kept.
func reportGap(scr *screen, g *client.Gap) {
	if scr.fmt.json {
		scr.message(marshalLine(map[string]*client.Gap{"gap": g}))
		return
	}
	if g.Reset {
		scr.warn("reset: the broker's sequence numbers started afresh (epoch %s, a restart without a data directory): replaying all it keeps", g.Epoch)
		if g.To == 0 {
			return
		}
	}
	scr.warn("gap: messages %d to %d are no longer kept by the broker", g.From, g.To)
}

func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// runSubscriber is sub in envelope mode: the Go client's Subscribe,
// which resumes from the last message seen after a reconnection.
func runSubscriber(ctx context.Context, scr *screen, session *sessionFlags, m *client.Client, u, topic, since string, from broker.Position) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	last, resume := from, since != ""
	states := &sessionStates{scr: scr, url: u, cancel: cancel, current: func() string {
		mu.Lock()
		defer mu.Unlock()
		if !resume {
			return u
		}
		return u + "?" + url.Values{"since": {last.String()}}.Encode()
	}}
	received := 0
	opts := &client.SubscribeOptions{Since: since, OnState: states.on, Transport: client.TransportWebSocket,
		OnGap: func(g client.Gap) { reportGap(scr, &g) }}
	err := m.Subscribe(sctx, topic, opts, func(msg client.Message) error {
		mu.Lock()
		last, resume = broker.Position{Seq: msg.Seq, Epoch: msg.Epoch}, true
		mu.Unlock()
		env := messageEnvelope(msg)
		if err := scr.message(scr.fmt.envelope(env, envelopeFrame(env))); err != nil {
			return &handlerError{err}
		}
		if received++; session.count > 0 && received >= session.count {
			return errEnough
		}
		return nil
	})
	var he *handlerError
	switch {
	case errors.Is(err, errEnough):
		err = nil
	case errors.As(err, &he):
		return he.err
	default:
		err = states.result(ctx, err)
	}
	return session.outcome(ctx, received, err)
}
