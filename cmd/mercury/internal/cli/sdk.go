package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mercury-broker/mercury/cmd/mercury/internal/command"
	"github.com/mercury-broker/mercury/web/client"
)

// sdkTarget splits a URL that target made into the broker and the topic
// the Go client takes; false when its query has more than known says
// the client can express.
func sdkTarget(rawURL string, known ...string) (server, topic string, q url.Values, ok bool) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", "", nil, false
	}
	q = u.Query()
	for k := range q {
		if !contains(known, k) {
			return "", "", nil, false
		}
	}
	_, rest, found := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	if !found || rest == "" {
		return "", "", nil, false
	}
	return u.Scheme + "://" + u.Host, "/" + rest, q, true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// sdkClient is the Go client for the broker at server, with the flags'
// credential, headers and TLS; what the broker says about no message of
// ours is told on scr.
func sdkClient(server string, opts *client.Options, scr *screen) *client.Client {
	return client.New(server, &client.Config{
		Token: opts.Token, Header: opts.Header, HTTPClient: opts.HTTPClient,
		Backoff: backoffFirst, MaxBackoff: backoffMax,
		OnError: func(err error) { scr.warn("the broker says: %v", err) },
	})
}

// sessionStates tells the states of a connection of the Go client on
// the screen, as the receiver does: the first connection must succeed at
// once (its failure ends the session, with fail), later ones are retried.
type sessionStates struct {
	scr    *screen
	url    string
	cancel context.CancelFunc
	// current, if set, is the URL a new connection goes to (a
	// subscription resumes with ?since=).
	current func() string
	// quietFirst: the first connection is told by someone else.
	quietFirst bool

	mu     sync.Mutex
	opened bool
	failed error // why the first connection failed
}

func (s *sessionStates) on(st client.State, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch st {
	case client.StateOpen:
		u := s.url
		if s.current != nil {
			u = s.current()
		}
		switch {
		case s.opened:
			s.scr.note("reconnected to %s", u)
		case !s.quietFirst:
			s.scr.note("connected to %s", u)
		}
		s.opened = true
	case client.StateReconnecting:
		var retry *client.RetryError
		if !errors.As(err, &retry) {
			retry = &client.RetryError{Err: err}
		}
		if !s.opened {
			s.failed = retry.Err
			s.cancel()
			return
		}
		why, _ := closedFailure(retry.Err)
		s.scr.note("%s; reconnecting in %s", why, retry.Delay.Round(time.Millisecond))
	}
}

// result turns how the client ended into the command's result.
func (s *sessionStates) result(ctx context.Context, err error) error {
	s.mu.Lock()
	failed, opened := s.failed, s.opened
	s.mu.Unlock()
	switch {
	case failed != nil:
		return dialFailure(ctx, s.url, failed)
	case err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return nil
	case !opened:
		return dialFailure(ctx, s.url, err)
	}
	var he *client.HandshakeError
	if errors.As(err, &he) {
		return dialFailure(ctx, s.url, err)
	}
	why, _ := closedFailure(err)
	return &command.ExitError{Code: command.ExitRefused, Err: errors.New(why)}
}

// jobEnvelope is a job as the broker sent it, for --json and --exec.
func jobEnvelope(job client.Job) *client.Envelope {
	e := messageEnvelope(job.Message)
	e.Attempt = job.Attempt
	if _, err := strconv.ParseUint(job.ID, 10, 64); err == nil {
		e.ID = json.RawMessage(job.ID)
	} else {
		e.ID, _ = json.Marshal(job.ID)
	}
	return e
}

// messageEnvelope is a message as the broker sent it, for --json.
func messageEnvelope(job client.Message) *client.Envelope {
	e := &client.Envelope{Topic: job.Topic, Seq: job.Seq, Epoch: job.Epoch, Time: job.Time}
	switch {
	case job.Binary:
		e.Data, _ = json.Marshal(base64.StdEncoding.EncodeToString(job.Data))
		e.Encoding = "base64"
	case json.Valid(job.Data):
		e.Data = json.RawMessage(job.Data)
	default:
		e.Data, _ = json.Marshal(string(job.Data))
		e.Encoding = "text"
	}
	return e
}

// envelopeFrame is e as a frame: id and attempt first, as the broker
// writes them.
func envelopeFrame(e *client.Envelope) []byte {
	b, _ := json.Marshal(struct {
		ID       json.RawMessage `json:"id,omitempty"`
		Attempt  int             `json:"attempt,omitempty"`
		Topic    string          `json:"topic"`
		Seq      uint64          `json:"seq"`
		Epoch    string          `json:"epoch,omitempty"`
		Time     time.Time       `json:"time"`
		Data     json.RawMessage `json:"data"`
		Encoding string          `json:"encoding,omitempty"`
	}{e.ID, e.Attempt, e.Topic, e.Seq, e.Epoch, e.Time, e.Data, e.Encoding})
	return b
}
