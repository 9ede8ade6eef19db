package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/mercury-broker/mercury/cmd/mercury/internal/command"
	"github.com/mercury-broker/mercury/web/client"
)

func RunPub(ctx context.Context, args []string, io command.Stdio) error {
	return runSender(ctx, "pub", args, io,
		"mercury pub /livesys/42 '{\"cmd\":\"reboot\"}'    # one message; every subscriber of /livesys/42 or /livesys gets it",
		"mercury pub /livesys/42                        # a prompt: each line typed is a message",
		"tail -f events.log | mercury pub /events       # each line of standard input is a message",
		"mercury pub /audit --envelope < lines.txt      # insist on the broker's confirmation of every line",
		"mercury pub ws://127.0.0.1:3000/pub/livesys/42 hello",
	)
}

// runSender is pub and push: they differ only in where messages go.
func runSender(ctx context.Context, pattern string, args []string, io command.Stdio, examples ...string) error {
	fs := command.NewFlagSet(pattern, "TOPIC|URL [MESSAGE...] [flags]", examples...)
	conn := addConnFlags(fs, true)
	session := addSessionFlags(fs, "")
	envelope := fs.Bool("envelope", false, "require envelope mode, where the broker confirms every message (used anyway when the broker offers it)")
	asJSON := fs.Bool("json", false, "print {\"seq\":N} for each message the broker accepted")
	pos, err := command.ParseArgs(fs, args, io)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return command.UsageError("want a topic or URL, then the messages (or none, to send lines of standard input)")
	}
	if err := session.check(); err != nil {
		return err
	}
	opts, err := conn.options()
	if err != nil {
		return err
	}
	scr := newScreen(pattern, io, conn.quiet)
	ctx, cancel := session.context(ctx)
	defer cancel()

	accepted := func(seq uint64) {
		switch {
		case *asJSON:
			scr.message(marshalLine(map[string]uint64{"seq": seq}))
		case scr.fmt.pretty:
			scr.note("accepted, seq %d", seq)
		}
	}

	if len(pos) > 1 {
		// Messages on the command line go by POST: one answer each.
		u, err := conn.target(pattern, pos[0], nil)
		if err != nil {
			return err
		}
		return postEach(ctx, scr, pattern, u, pos[1:], opts, *envelope, accepted)
	}

	u, err := conn.target(pattern, pos[0], nil)
	if err != nil {
		return err
	}
	if *envelope {
		opts.Envelope = true
	} else {
		opts.Subprotocols = []string{client.EnvelopeSubprotocol}
	}
	c, err := dial(ctx, u, opts)
	if err != nil {
		return err
	}
	defer c.CloseNow()
	d := &duplex{
		scr:         scr,
		conn:        c,
		confirms:    c.Subprotocol() == client.EnvelopeSubprotocol,
		errorFrames: true,
		accepted:    accepted,
	}
	return d.runWithInput(ctx, io, u)
}

// postEach sends each message by POST, with the Go client when the URL
// is a topic's; the broker's refusals are told and make the command fail
// at the end.
func postEach(ctx context.Context, scr *screen, pattern, u string, messages []string, opts *client.Options, needSeq bool, accepted func(uint64)) error {
	send := func(m string) (uint64, error) { return client.PublishURL(ctx, u, []byte(m), false, opts) }
	if server, topic, _, ok := sdkTarget(u); ok {
		c := sdkClient(server, opts, scr)
		send = func(m string) (uint64, error) {
			if pattern == "push" {
				return c.Push(ctx, topic, m)
			}
			return c.Publish(ctx, topic, m)
		}
	}
	refused := 0
	for _, m := range messages {
		seq, err := send(m)
		var pe *client.PostError
		var api *client.APIError
		switch {
		case errors.As(err, &pe):
			refused++
			scr.warn("the broker refused the message: %s", refusal(pe.Status, pe.Body, pe.API()))
			continue
		case errors.As(err, &api):
			refused++
			scr.warn("the broker refused the message: %s", refusal(api.Status, api.Message, nil))
			continue
		case errors.Is(err, client.ErrNoEnvelope) && !needSeq:
			continue // accepted, by a broker that gives no sequence number
		case errors.Is(err, client.ErrNoEnvelope) || (err == nil && seq == 0 && needSeq):
			return &command.ExitError{Code: command.ExitRefused, Err: errors.New(u + ": the broker does not speak envelope mode: it gave no sequence number")}
		case err != nil:
			return &command.ExitError{Code: command.ExitConnect, Err: &explained{msg: "cannot connect to " + u + ": " + unwrapDial(err).Error(), err: err}}
		}
		if seq > 0 {
			accepted(seq)
		}
	}
	if refused > 0 {
		return &command.ExitError{Code: command.ExitRefused, Err: fmt.Errorf("the broker refused %d of %d messages", refused, len(messages))}
	}
	return nil
}

// runWithInput runs the session with lines from the prompt, when both
// ends are a terminal, or else from standard input.
func (d *duplex) runWithInput(ctx context.Context, io command.Stdio, u string) error {
	in, closeInput, err := openInput(io, d.scr, u)
	if err != nil {
		return err
	}
	defer closeInput()
	d.input = in.lines
	d.lineNumbers = !in.prompt
	if in.prompt {
		d.listen = false // at the prompt, Ctrl-D or Ctrl-C leaves
	}
	return d.run(ctx)
}

// input is where the lines to send come from.
type input struct {
	lines  lineSource
	prompt bool // a person at the prompt, not a pipe
}

// openInput opens the prompt, when both ends are a terminal, or else
// standard input, and says so.
func openInput(io command.Stdio, scr *screen, u string) (input, func(), error) {
	in, out, isTTY := interactive(io)
	if !isTTY {
		scr.note("connected to %s", u)
		return input{lines: newLineReader(io.In)}, func() {}, nil
	}
	p, historyErr, err := startPrompt(in, out)
	if err != nil {
		return input{}, nil, err
	}
	scr.usePrompt(p)
	if historyErr != nil {
		scr.warn("%v", historyErr)
	}
	scr.note("connected to %s; Ctrl-D to leave", u)
	return input{lines: p, prompt: true}, func() { p.Close() }, nil
}
