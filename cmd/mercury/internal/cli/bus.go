package cli

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"

	"github.com/mercury-broker/mercury/cmd/mercury/internal/command"
	"github.com/mercury-broker/mercury/web/client"
)

func RunBus(ctx context.Context, args []string, io command.Stdio) error {
	fs := command.NewFlagSet("bus", "TOPIC|URL [flags]",
		"mercury bus /room                          # a prompt: lines typed go to the other peers, theirs show above",
		"mercury bus /room --echo --show-topic      # also see your own lines come back",
		"echo '{\"hello\":1}' | mercury bus /room      # send the lines of standard input, then leave",
		"mercury bus /room --count 3 --timeout 1m < /dev/null   # listen for three messages",
	)
	conn := addConnFlags(fs, true)
	session := addSessionFlags(fs, "messages received")
	out := addOutputFlags(fs)
	echo := fs.Bool("echo", false, "also receive your own messages")
	pos, err := command.ParseArgs(fs, args, io)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return command.UsageError("want one topic or URL, got %d arguments (see mercury bus --help)", len(pos))
	}
	if err := firstError(session.check(), out.check()); err != nil {
		return err
	}
	opts, err := conn.options()
	if err != nil {
		return err
	}
	opts.Envelope = out.wantsEnvelope()
	q := url.Values{}
	if *echo {
		q.Set("echo", "1")
	}
	u, err := conn.target("bus", pos[0], q)
	if err != nil {
		return err
	}
	scr := newScreen("bus", io, conn.quiet)
	out.apply(scr)
	ctx, cancel := session.context(ctx)
	defer cancel()
	if opts.Envelope {
		if server, topic, _, ok := sdkTarget(u, "echo"); ok {
			p := &busPeer{scr: scr, count: session.count, listen: session.count > 0 || session.timeout > 0}
			err := p.run(ctx, io, sdkClient(server, opts, scr), u, topic, *echo)
			return session.outcome(ctx, p.received, err)
		}
	}
	c, err := dial(ctx, u, opts)
	if err != nil {
		return err
	}
	defer c.CloseNow()
	d := &duplex{
		scr:         scr,
		conn:        c,
		confirms:    opts.Envelope,
		errorFrames: !opts.Envelope,
		receives:    true,
		count:       session.count,
		listen:      session.count > 0 || session.timeout > 0,
	}
	err = d.runWithInput(ctx, io, u)
	return session.outcome(ctx, d.received, err)
}

// busPeer is bus in envelope mode: the Go client's Bus, which sends each
// line and waits for the broker's answer, and shows what the other peers
// send.
type busPeer struct {
	scr    *screen
	count  int  // leave after that many messages received
	listen bool // keep receiving after the end of the input

	mu                      sync.Mutex
	received, sent, refused int
}

func (p *busPeer) run(ctx context.Context, std command.Stdio, m *client.Client, u, topic string, echo bool) error {
	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	states := &sessionStates{scr: p.scr, url: u, cancel: cancel, quietFirst: true}
	var failure error // of the command itself: standard output closed
	bus := m.Bus(bctx, topic, &client.BusOptions{Echo: echo, OnState: states.on}, func(msg client.Message) error {
		env := messageEnvelope(msg)
		if err := p.scr.message(p.scr.fmt.envelope(env, envelopeFrame(env))); err != nil {
			failure = err
			return err
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.received++; p.count > 0 && p.received >= p.count {
			cancel()
		}
		return nil
	})
	in, closeInput, err := openInput(std, p.scr, u)
	if err != nil {
		bus.Close()
		return err
	}
	defer closeInput()
	listen := p.listen && !in.prompt // at the prompt, Ctrl-D or Ctrl-C leaves
	// The sender may stay blocked reading standard input after the
	// session ends (a read cannot be interrupted); the process exits then.
	sent := make(chan error, 1)
	go func() { sent <- p.send(bctx, bus, in) }()
	select {
	case err = <-sent:
		if err == nil && listen {
			<-bctx.Done()
		}
	case <-bctx.Done():
	}
	cancel()
	busErr := bus.Close()
	switch {
	case failure != nil:
		return failure
	case err != nil:
		return err
	case busErr != nil:
		return states.result(ctx, busErr)
	case states.failed != nil:
		return states.result(ctx, nil)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.refused > 0 {
		return &command.ExitError{Code: command.ExitRefused, Err: fmt.Errorf("the broker refused %d of %d messages", p.refused, p.sent)}
	}
	return nil
}

// send sends each line of the input and waits for its answer; empty
// lines are skipped.
func (p *busPeer) send(ctx context.Context, bus *client.Bus, in input) error {
	return eachLine(in.lines, func(n int, line string) (bool, error) {
		_, err := bus.Send(ctx, line)
		var refusal *client.APIError
		switch {
		case ctx.Err() != nil:
			return false, nil
		case errors.As(err, &refusal):
			p.mu.Lock()
			p.sent++
			p.refused++
			p.mu.Unlock()
			if in.prompt {
				p.scr.warn("refused: %v", refusal)
			} else {
				p.scr.warn("line %d refused: %v", n, refusal)
			}
		case err != nil:
			return false, err
		default:
			p.mu.Lock()
			p.sent++
			p.mu.Unlock()
		}
		return true, nil
	})
}
