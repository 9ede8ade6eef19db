package cli

import (
	"context"
	"net/url"

	"github.com/mercury-broker/mercury/cmd/mercury/internal/command"
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
