package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/coder/websocket"
)

// Options configures a connection. The zero value is fine.
type Options struct {
	Header       http.Header  // extra handshake headers (Origin, Authorization …)
	Subprotocols []string     // offered WebSocket subprotocols
	HTTPClient   *http.Client // for the handshake and POST; default http.DefaultClient (see NewHTTPClient for TLS)
	// Token, when set, is sent as "Authorization: Bearer <token>".
	Token string
	// Envelope asks for envelope mode (subprotocol mercury.v1): Dial fails
	// with ErrNoEnvelope when the broker does not agree to it.
	Envelope bool
	// ReadLimit caps one incoming message in bytes; default 64 MiB.
	ReadLimit int64
}

// header returns the handshake or request headers the options ask for.
func (o *Options) header() http.Header {
	h := o.Header.Clone()
	if o.Token != "" {
		if h == nil {
			h = http.Header{}
		}
		h.Set("Authorization", "Bearer "+o.Token)
	}
	return h
}

// Frame is one WebSocket message.
type Frame struct {
	Binary bool
	Data   []byte
}

// Conn is a WebSocket connection to a broker. Read must be called from
// one goroutine at a time; the other methods are safe for concurrent use.
type Conn struct {
	ws *websocket.Conn
}

// URL builds the URL of pattern ("sub", "pub", "bus", "push", "pull") and
// topic on server ("ws://host:port" or "http://host:port"), with an
// optional query.
func URL(server, pattern, topic string, query url.Values) string {
	u := strings.TrimRight(server, "/") + "/" + pattern + "/" + strings.TrimLeft(topic, "/")
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	return u
}

// Dial opens a WebSocket connection to rawURL (ws://, wss://, http:// or
// https://).
func Dial(ctx context.Context, rawURL string, opts *Options) (*Conn, error) {
	if opts == nil {
		opts = &Options{}
	}
	subprotocols := opts.Subprotocols
	if opts.Envelope {
		subprotocols = append([]string{EnvelopeSubprotocol}, subprotocols...)
	}
	ws, resp, err := websocket.Dial(ctx, rawURL, &websocket.DialOptions{
		HTTPClient:   opts.HTTPClient,
		HTTPHeader:   opts.header(),
		Subprotocols: subprotocols,
	})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, handshakeError(resp, err)
		}
		return nil, err
	}
	if opts.Envelope && ws.Subprotocol() != EnvelopeSubprotocol {
		ws.Close(websocket.StatusNormalClosure, "")
		return nil, ErrNoEnvelope
	}
	limit := opts.ReadLimit
	if limit == 0 {
		limit = 64 << 20
	}
	ws.SetReadLimit(limit)
	return &Conn{ws: ws}, nil
}

// HandshakeError is a handshake the broker refused with an HTTP status.
type HandshakeError struct {
	Status int
	Body   string
	Err    error
}

func (e *HandshakeError) Error() string {
	return fmt.Sprintf("handshake refused: %d %s: %s", e.Status, http.StatusText(e.Status), strings.TrimSpace(e.Body))
}

func (e *HandshakeError) Unwrap() error { return e.Err }

// API returns the broker's JSON error in the body, or nil when the body is
// not one (a plain-text refusal such as "Origin check failed").
func (e *HandshakeError) API() *APIError { return parseAPIError([]byte(e.Body)) }

func handshakeError(resp *http.Response, err error) error {
	var body []byte
	if resp.Body != nil {
		body, _ = io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
	}
	return &HandshakeError{Status: resp.StatusCode, Body: string(body), Err: err}
}

// Read returns the next message.
func (c *Conn) Read(ctx context.Context) (Frame, error) {
	typ, data, err := c.ws.Read(ctx)
	if err != nil {
		return Frame{}, err
	}
	return Frame{Binary: typ == websocket.MessageBinary, Data: data}, nil
}

// WriteText sends a text message.
func (c *Conn) WriteText(ctx context.Context, s string) error {
	return c.ws.Write(ctx, websocket.MessageText, []byte(s))
}

// WriteBinary sends a binary message.
func (c *Conn) WriteBinary(ctx context.Context, p []byte) error {
	return c.ws.Write(ctx, websocket.MessageBinary, p)
}

// Subprotocol returns the subprotocol the broker chose.
func (c *Conn) Subprotocol() string { return c.ws.Subprotocol() }

// Close closes the connection normally.
func (c *Conn) Close() error {
	return c.ws.Close(websocket.StatusNormalClosure, "")
}

// CloseNow closes the connection without a close handshake.
func (c *Conn) CloseNow() error { return c.ws.CloseNow() }

// CloseStatus returns the close code in err, or -1 when err is not a close.
func CloseStatus(err error) int { return int(websocket.CloseStatus(err)) }

// CloseReason returns the close reason in err, or "".
func CloseReason(err error) string {
	var ce websocket.CloseError
	if ok := asCloseError(err, &ce); ok {
		return ce.Reason
	}
	return ""
}

// Response is the broker's answer to a POST.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Post sends body to rawURL (http:// or https://; ws:// and wss:// are
// mapped to them) as one message.
func Post(ctx context.Context, hc *http.Client, rawURL, contentType string, body []byte, header http.Header) (*Response, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, HTTPURL(rawURL), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("failed to read the response: %w", err)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// HTTPURL maps ws:// and wss:// to http:// and https://.
func HTTPURL(u string) string {
	switch {
	case strings.HasPrefix(u, "ws://"):
		return "http://" + u[len("ws://"):]
	case strings.HasPrefix(u, "wss://"):
		return "https://" + u[len("wss://"):]
	}
	return u
}

func asCloseError(err error, ce *websocket.CloseError) bool {
	return errors.As(err, ce)
}
