package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/mercury-broker/mercury/cmd/mercury/internal/command"
	"github.com/mercury-broker/mercury/web/client"
)

// Exit codes of mercury req.
const (
	ExitTimeout      = 3 // no answer in time
	ExitNoResponders = 4 // nobody could answer
)

// RunReq sends a request and prints the answer, or every answer.
func RunReq(ctx context.Context, args []string, io command.Stdio) error {
	fs := command.NewFlagSet("req", "TOPIC [DATA] [flags]",
		`mercury req /livesys/42 '{"cmd":"uptime"}'         # one agent's answer`,
		`mercury req /livesys '"hostname?"' --all --timeout 3s  # every agent's answer, one per line`,
		`echo '{"cmd":"df"}' | mercury req /livesys/42         # the request from standard input`,
		"Exit status: 0 answered, 3 no answer in time, 4 no responders.")
	cf := addConnFlags(fs, true)
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for answers (at most 60s)")
	all := fs.Bool("all", false, "gather every answer until the timeout, one JSON line each")
	pos, err := command.ParseArgs(fs, args, io)
	if err != nil {
		return err
	}
	if len(pos) < 1 || len(pos) > 2 {
		return command.UsageError("want TOPIC [DATA]")
	}
	var data []byte
	if len(pos) == 2 {
		data = []byte(pos[1])
	} else if data, err = readAll(io.In); err != nil {
		return err
	}
	q := url.Values{"timeout": {timeout.String()}}
	if *all {
		q.Set("all", "1")
	}
	u, err := cf.target("req", pos[0], q)
	if err != nil {
		return err
	}
	opts, err := cf.options()
	if err != nil {
		return err
	}
	resp, err := client.Request(ctx, u, data, opts)
	if err != nil {
		return &command.ExitError{Code: command.ExitConnect, Err: err}
	}
	if resp.Status != 200 {
		return reqFailure(resp)
	}
	if !*all {
		io.Out.Write(resp.Body)
		if !bytes.HasSuffix(resp.Body, []byte("\n")) {
			fmt.Fprintln(io.Out)
		}
		return nil
	}
	var answers []json.RawMessage
	if err := json.Unmarshal(resp.Body, &answers); err != nil {
		return fmt.Errorf("failed to decode the answers: %w", err)
	}
	for _, a := range answers {
		fmt.Fprintf(io.Out, "%s\n", a)
	}
	return nil
}

// reqFailure turns a refused request into its error and exit code.
func reqFailure(resp *client.Response) error {
	e := client.ParseError(resp.Body)
	if e == nil {
		return fmt.Errorf("HTTP %d: %.200s", resp.Status, resp.Body)
	}
	err := errors.New(e.Message)
	switch e.Code {
	case "timeout":
		return &command.ExitError{Code: ExitTimeout, Err: err}
	case "no_responders":
		return &command.ExitError{Code: ExitNoResponders, Err: err}
	}
	return fmt.Errorf("%s: %w", e.Code, err)
}

// readAll reads a request from standard input.
func readAll(r io.Reader) ([]byte, error) {
	if r == nil {
		return nil, command.UsageError("no DATA and no standard input")
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("failed to read standard input: %w", err)
	}
	return bytes.TrimSuffix(b, []byte("\n")), nil
}
