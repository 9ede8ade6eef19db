package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mercury-broker/mercury/cmd/mercury/internal/command"
	"github.com/mercury-broker/mercury/web/client"
)

// dialTimeout bounds one connection attempt.
const dialTimeout = 10 * time.Second

// dial connects to rawURL, mapping failures to exit codes: a refused
// handshake (401, 404, 503 …) or envelope mode refused exits 1, anything
// else that keeps us from connecting exits 3.
func dial(ctx context.Context, rawURL string, opts *client.Options) (*client.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	c, err := client.Dial(dctx, rawURL, opts)
	if err == nil {
		return c, nil
	}
	return nil, dialFailure(ctx, rawURL, err)
}

// dialFailure explains why a connection to rawURL could not be made.
func dialFailure(ctx context.Context, rawURL string, err error) error {
	var he *client.HandshakeError
	switch {
	case errors.As(err, &he):
		return &command.ExitError{Code: command.ExitRefused, Err: &explained{
			msg: fmt.Sprintf("the broker refused %s: %s", rawURL, refusal(he.Status, he.Body, he.API())), err: err}}
	case errors.Is(err, client.ErrNoEnvelope):
		return &command.ExitError{Code: command.ExitRefused, Err: fmt.Errorf("%s: the broker does not speak envelope mode (needed by --envelope, --show-topic, --json and --ack)", rawURL)}
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, context.DeadlineExceeded):
		return &command.ExitError{Code: command.ExitConnect, Err: fmt.Errorf("cannot connect to %s: no answer within %s", rawURL, dialTimeout)}
	}
	return &command.ExitError{Code: command.ExitConnect, Err: fmt.Errorf("cannot connect to %s: %v", rawURL, unwrapDial(err))}
}

// explained is an error told in our own words, keeping its cause.
type explained struct {
	msg string
	err error
}

func (e *explained) Error() string { return e.msg }
func (e *explained) Unwrap() error { return e.err }

// unwrapDial drops the layers of "failed to WebSocket dial: failed to
// send handshake request: Get …:" around the network's error, which say
// what the URL already says.
func unwrapDial(err error) error {
	var op *net.OpError
	if errors.As(err, &op) {
		return op
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// refusal says plainly what an HTTP refusal means.
func refusal(status int, body string, api *client.APIError) string {
	msg := strings.TrimSpace(body)
	if api != nil {
		msg = api.Message
	}
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	s := fmt.Sprintf("%d %s", status, http.StatusText(status))
	// Plain-text refusals often repeat the status: "426 Upgrade Required: …",
	// "404 page not found".
	msg = strings.TrimPrefix(msg, s+": ")
	msg = strings.TrimPrefix(msg, strconv.Itoa(status)+" ")
	if msg != "" && !strings.EqualFold(msg, http.StatusText(status)) {
		s += ": " + msg
	}
	return s
}

// retryable reports whether a dial failure may pass when tried again:
// the broker is unreachable or temporarily unavailable.
func retryable(err error) bool {
	var ee *command.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	if ee.Code == command.ExitConnect {
		return true
	}
	var he *client.HandshakeError
	return errors.As(err, &he) && (he.Status == http.StatusServiceUnavailable || he.Status >= 500)
}

// closedFailure explains a connection that ended while in use, and
// reports whether it was the broker refusing something (a close code
// other than going away, or one of Mercury's 4xxx codes) rather than the
// connection being lost.
func closedFailure(err error) (explanation string, refused bool) {
	status := client.CloseStatus(err)
	reason := client.CloseReason(err)
	switch {
	case status == -1:
		return "connection lost: " + err.Error(), false
	case status == 1000:
		return "the broker closed the connection", false
	case status == 1001 || status == 1006 || status == 1011 || status == 1012 || status == 1013:
		return fmt.Sprintf("the broker closed the connection: %d %s", status, reason), false
	case status == 1008 && reason == "slow consumer":
		return "the broker closed the connection: 1008 slow consumer (messages arrived faster than they were read)", false
	}
	if reason == "" {
		reason = "no reason given"
	}
	return fmt.Sprintf("the broker closed the connection: %d %s", status, reason), true
}
