package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Config configures a Client. The zero value is fine.
type Config struct {
	// Token is the credential (a JWT or an API key) sent with each
	// connection and request.
	Token string
	// GetToken, when set, fetches a credential: when there is none yet,
	// before a JWT expires (the new one is sent on every open connection
	// as {"$token":…}, so none is cut), and after a 401 or a 4401 close.
	GetToken func(ctx context.Context) (string, error)
	// Header is added to each handshake and request (Origin …).
	Header http.Header
	// HTTPClient makes the handshakes and requests; default
	// http.DefaultClient (see NewHTTPClient for TLS).
	HTTPClient *http.Client
	// Backoff is the first delay before reconnecting, doubled after each
	// failure up to MaxBackoff, with jitter; default 250ms and 30s.
	Backoff, MaxBackoff time.Duration
	// OnError hears of what goes wrong without ending anything: a token
	// GetToken could not fetch, an error frame the broker sent about no
	// message of ours.
	OnError func(error)
}

// Client is a broker's client: Subscribe, Pull and Bus each hold one
// WebSocket in envelope mode that reconnects by itself; Publish, Push,
// Request and Presence are HTTP requests. It is safe for concurrent use.
type Client struct {
	server string // ws:// or wss://, without a trailing slash
	cfg    Config

	mu    sync.Mutex
	token string
	// refreshing serialises calls of GetToken: many connections needing
	// a token at once share one.
	refreshing sync.Mutex
}

// New returns a client of the broker at server ("ws://127.0.0.1:3000";
// wss://, http:// and https:// too). It connects nothing yet.
func New(server string, cfg *Config) *Client {
	c := &Client{server: wsURL(strings.TrimRight(server, "/"))}
	if cfg != nil {
		c.cfg = *cfg
	}
	c.token = c.cfg.Token
	return c
}

func wsURL(u string) string {
	switch {
	case strings.HasPrefix(u, "http://"):
		return "ws://" + u[len("http://"):]
	case strings.HasPrefix(u, "https://"):
		return "wss://" + u[len("https://"):]
	}
	return u
}

// State is a connection's state, as OnState hears it.
type State string

const (
	StateConnecting   State = "connecting"   // the first connection is being opened
	StateOpen         State = "open"         // connected
	StateReconnecting State = "reconnecting" // lost; waiting to connect again
	StateClosed       State = "closed"       // ended for good
)

// Message is a message as a subscriber, a bus peer or a worker gets it.
type Message struct {
	Topic string
	Seq   uint64
	// Epoch names the life of the broker's sequence numbers Seq is from.
	Epoch string
	Time  time.Time
	// Data is the payload as published: JSON, text or, with Binary, bytes.
	Data   []byte
	Binary bool
}

// Position is where a subscription resumes after m: "EPOCH:SEQ" (SEQ
// alone without an epoch), for SubscribeOptions.Since.
func (m Message) Position() string {
	if m.Epoch == "" {
		return fmt.Sprint(m.Seq)
	}
	return fmt.Sprintf("%s:%d", m.Epoch, m.Seq)
}

// Decode unmarshals a JSON payload into v.
func (m Message) Decode(v any) error { return json.Unmarshal(m.Data, v) }

// Job is a message a worker pulled. ID stays the same across deliveries
// and broker restarts, so a worker can deduplicate by it; Attempt counts
// the deliveries.
type Job struct {
	Message
	ID      string
	Attempt int
}

// messageOf turns an envelope into the application's message.
func messageOf(e *Envelope) (Message, error) {
	p, binary, err := e.Payload()
	if err != nil {
		return Message{}, err
	}
	return Message{Topic: e.Topic, Seq: e.Seq, Epoch: e.Epoch, Time: e.Time, Data: p, Binary: binary}, nil
}

// Binary is a payload sent as a binary frame whatever its bytes.
type Binary []byte

// encodeData turns what Publish, Push or Send was given into a payload: a
// string or []byte as it is (text when it is UTF-8, as a POST is),
// Binary as bytes, json.RawMessage as it is, anything else as JSON.
func encodeData(data any) (payload []byte, binary bool, err error) {
	switch d := data.(type) {
	case string:
		return []byte(d), !utf8.ValidString(d), nil
	case []byte:
		return d, !utf8.Valid(d), nil
	case Binary:
		return d, true, nil
	case json.RawMessage:
		return d, false, nil
	}
	p, err := json.Marshal(data)
	if err != nil {
		return nil, false, fmt.Errorf("failed to encode the message as JSON: %w", err)
	}
	return p, false, nil
}

// ErrorCodeConnectionLost is the code of the error of a message sent on
// a connection that was lost before the broker answered: it may have been
// accepted, and is not sent again behind the caller's back.
const ErrorCodeConnectionLost = "connection_lost"

// onError reports err to Config.OnError.
func (c *Client) onError(err error) {
	if c.cfg.OnError != nil && err != nil {
		c.cfg.OnError(err)
	}
}

// currentToken returns the credential in use.
func (c *Client) currentToken() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.token
}

// needsToken reports whether a connection should get a token first:
// there is none yet, or it is about to expire.
func (c *Client) needsToken() bool {
	if c.cfg.GetToken == nil {
		return false
	}
	tok := c.currentToken()
	exp := jwtExpiry(tok)
	return tok == "" || (!exp.IsZero() && time.Until(exp) < time.Second)
}

// freshToken asks GetToken for a token to replace old; when another
// connection already replaced it, that one is used.
func (c *Client) freshToken(ctx context.Context, old string) string {
	if c.cfg.GetToken == nil {
		return c.currentToken()
	}
	c.refreshing.Lock()
	defer c.refreshing.Unlock()
	if tok := c.currentToken(); tok != old {
		return tok
	}
	tok, err := c.cfg.GetToken(ctx)
	if err != nil {
		c.onError(fmt.Errorf("failed to get a token: %w", err))
		return old
	}
	c.mu.Lock()
	c.token = tok
	c.mu.Unlock()
	return tok
}

// tokenForDial returns the token for a new connection, fetched first
// when needed.
func (c *Client) tokenForDial(ctx context.Context) string {
	if c.needsToken() {
		return c.freshToken(ctx, c.currentToken())
	}
	return c.currentToken()
}

// refreshDelay is how long before a JWT's expiry a fresh one is sent: a
// quarter of its life left, at least 1s and at most a minute.
func refreshDelay(exp time.Time) time.Duration {
	left := time.Until(exp)
	return max(0, left-min(time.Minute, max(time.Second, left/4)))
}

// keepTokenFresh sends a fresh token on conn before the one in use
// expires, until ctx ends: a JWT's expiry is known, so no connection is
// cut for it.
func (c *Client) keepTokenFresh(ctx context.Context, conn *Conn) {
	if c.cfg.GetToken == nil {
		return
	}
	sent := c.currentToken()
	for {
		exp := jwtExpiry(sent)
		if exp.IsZero() {
			return // not a JWT: it is refreshed after a 4401 close
		}
		// At most one refresh a second: a GetToken that hands back a token
		// about to expire is not called in a loop (the broker closes with
		// 4401 then, and the next connection gets a token).
		t := time.NewTimer(max(time.Second, refreshDelay(exp)))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		tok := c.freshToken(ctx, sent)
		if tok == sent {
			if ctx.Err() != nil {
				return
			}
			// GetToken failed: try again in a second, while it is valid.
			if !sleepCtx(ctx, time.Second) {
				return
			}
			continue
		}
		frame, _ := json.Marshal(map[string]string{"$token": tok})
		if err := conn.WriteText(ctx, string(frame)); err != nil {
			return // the connection is gone; the next one has the token
		}
		sent = tok
	}
}

// sleepCtx sleeps for d; false when ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// jwtExpiry returns a JWT's exp, or zero when token is not a JWT.
func jwtExpiry(token string) time.Time {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}
	}
	b, err := decodeSegment(parts[1])
	if err != nil {
		return time.Time{}
	}
	var claims struct {
		Exp *float64 `json:"exp"`
	}
	if json.Unmarshal(b, &claims) != nil || claims.Exp == nil {
		return time.Time{}
	}
	return time.Unix(int64(*claims.Exp), 0)
}

func decodeSegment(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// dialOptions are the options of a new connection, with the current
// token.
func (c *Client) dialOptions(ctx context.Context) *Options {
	return &Options{Header: c.cfg.Header, HTTPClient: c.cfg.HTTPClient, Token: c.tokenForDial(ctx), Envelope: true}
}

// url returns the URL of pattern and topic.
func (c *Client) url(pattern, topic string, q map[string][]string) string {
	return URL(c.server, pattern, topic, q)
}

// errorOf turns an HTTP refusal into the broker's error, with its status.
func errorOf(status int, body []byte, topic string) *APIError {
	if e := parseAPIError(body); e != nil {
		e.Status = status
		if e.Topic == "" {
			e.Topic = topic
		}
		return e
	}
	msg := strings.TrimSpace(string(body))
	if msg == "" {
		msg = http.StatusText(status)
	}
	return &APIError{Code: fmt.Sprintf("http_%d", status), Topic: topic, Message: msg, Status: status}
}

// do makes one HTTP call with the client's credential; after a 401 with
// GetToken set it tries once more with a fresh token.
func (c *Client) do(ctx context.Context, method, rawURL, contentType, accept string, body []byte) (*Response, error) {
	tok := c.tokenForDial(ctx)
	for try := 0; ; try++ {
		h := (&Options{Header: c.cfg.Header, Token: tok}).header()
		if h == nil {
			h = http.Header{}
		}
		if accept != "" {
			h.Set("Accept", accept)
		}
		var resp *Response
		var err error
		if method == http.MethodPost {
			resp, err = Post(ctx, c.cfg.HTTPClient, rawURL, contentType, body, h)
		} else {
			resp, err = get(ctx, c.cfg.HTTPClient, rawURL, h)
		}
		if err != nil || resp.Status != http.StatusUnauthorized || c.cfg.GetToken == nil || try > 0 {
			return resp, err
		}
		tok = c.freshToken(ctx, tok)
	}
}

// isFinal reports whether err ends a Subscribe, Pull or Bus for good.
func isFinal(err error) bool {
	var fe fnError
	return errors.As(err, &fe) || final(err)
}
