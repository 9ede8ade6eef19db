package cli

import (
	"context"

	"github.com/mercury-broker/mercury/cmd/mercury/internal/command"
)

func RunConnect(ctx context.Context, args []string, io command.Stdio) error {
	fs := command.NewFlagSet("connect", "URL [flags]",
		"mercury connect ws://127.0.0.1:3000/sub/livesys          # like wscat -c",
		"mercury connect 'ws://127.0.0.1:3000/sub/livesys?envelope=1'",
		"mercury connect wss://echo.example.com --subprotocol chat --header 'Origin: https://example.com'",
		"printf 'a\\nb\\n' | mercury connect ws://127.0.0.1:3000/bus/room   # send two lines, then leave",
	)
	conn := addConnFlags(fs, false)
	session := addSessionFlags(fs, "messages received")
	raw := fs.Bool("raw", false, "print each message exactly as received, without reformatting")
	asJSON := fs.Bool("json", false, "print each message as {\"data\":…} on one line")
	var subprotocols command.RepeatedFlag
	fs.Var(&subprotocols, "subprotocol", "WebSocket subprotocol `NAME` to offer (repeatable)")
	pos, err := command.ParseArgs(fs, args, io)
	if err != nil {
		return err
	}
	if len(pos) != 1 || !isURL(pos[0]) {
		return command.UsageError("want one URL (ws://, wss://, http:// or https://) (see mercury connect --help)")
	}
	if err := session.check(); err != nil {
		return err
	}
	if *raw && *asJSON {
		return command.UsageError("--raw and --json are exclusive")
	}
	opts, err := conn.options()
	if err != nil {
		return err
	}
	opts.Subprotocols = subprotocols
	scr := newScreen("connect", io, conn.quiet)
	scr.fmt.raw, scr.fmt.json = *raw, *asJSON
	ctx, cancel := session.context(ctx)
	defer cancel()
	c, err := dial(ctx, pos[0], opts)
	if err != nil {
		return err
	}
	defer c.CloseNow()
	if p := c.Subprotocol(); p != "" {
		scr.note("subprotocol %s", p)
	}
	d := &duplex{
		scr:      scr,
		conn:     c,
		receives: true,
		count:    session.count,
		listen:   session.count > 0 || session.timeout > 0,
	}
	err = d.runWithInput(ctx, io, pos[0])
	return session.outcome(ctx, d.received, err)
}
