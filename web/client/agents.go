package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Request posts payload to a /req/ URL and returns the broker's answer:
// 200 with the answer (or, with ?all=1, every answer), 503 with
// no_responders, 504 with timeout, or another refusal.
func Request(ctx context.Context, rawURL string, payload []byte, opts *Options) (*Response, error) {
	if opts == nil {
		opts = &Options{}
	}
	return Post(ctx, opts.HTTPClient, rawURL, "", payload, opts.header())
}

// Presence is one subscription as GET /presence lists it.
type Presence struct {
	Event  string    `json:"event,omitempty"` // join or leave, in events
	Topic  string    `json:"topic"`
	User   *string   `json:"user"`
	Since  time.Time `json:"since"`
	Node   string    `json:"node,omitempty"`
	Remote string    `json:"remote,omitempty"`
	Conn   uint64    `json:"conn,omitempty"`
}

// ListPresence gets a /presence/ URL.
func ListPresence(ctx context.Context, rawURL string, opts *Options) ([]Presence, error) {
	if opts == nil {
		opts = &Options{}
	}
	resp, err := get(ctx, opts.HTTPClient, rawURL, opts.header())
	if err != nil {
		return nil, err
	}
	if resp.Status != http.StatusOK {
		return nil, &PostError{Status: resp.Status, Body: strings.TrimSpace(string(resp.Body))}
	}
	return decodePresence(resp.Body)
}

func decodePresence(body []byte) ([]Presence, error) {
	var list []Presence
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("failed to decode the list: %w", err)
	}
	return list, nil
}

// get makes a GET request to rawURL (ws:// and wss:// mapped to http://
// and https://).
func get(ctx context.Context, hc *http.Client, rawURL string, header http.Header) (*Response, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, HTTPURL(rawURL), nil)
	if err != nil {
		return nil, fmt.Errorf("failed to build the request: %w", err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("failed to read the response: %w", err)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: body}, nil
}

// RequestOptions configures Client.Request.
type RequestOptions struct {
	// Timeout is how long the broker waits for answers (its default: 5s).
	Timeout time.Duration
	// All collects every answer that comes within the timeout.
	All bool
}

// Request sends data to the agents subscribed at or below topic
// (docs/agents.md) and returns the first answer, or with All the JSON
// list of every answer ([{user, topic, data}]). A refusal is an *APIError:
// no_responders (503), timeout (504) …
func (c *Client) Request(ctx context.Context, topic string, data any, opts *RequestOptions) ([]byte, error) {
	if opts == nil {
		opts = &RequestOptions{}
	}
	payload, binary, err := encodeData(data)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	if opts.Timeout > 0 {
		q.Set("timeout", opts.Timeout.String())
	}
	if opts.All {
		q.Set("all", "1")
	}
	ct := "text/plain; charset=utf-8"
	if binary {
		ct = "application/octet-stream"
	}
	resp, err := c.do(ctx, http.MethodPost, HTTPURL(c.url("req", topic, q)), ct, "", payload)
	if err != nil {
		return nil, err
	}
	if resp.Status != http.StatusOK {
		return nil, errorOf(resp.Status, resp.Body, topic)
	}
	return resp.Body, nil
}

// Presence lists the subscriptions at or below topic.
func (c *Client) Presence(ctx context.Context, topic string) ([]Presence, error) {
	resp, err := c.do(ctx, http.MethodGet, HTTPURL(c.url("presence", topic, nil)), "", "", nil)
	if err != nil {
		return nil, err
	}
	if resp.Status != http.StatusOK {
		return nil, errorOf(resp.Status, resp.Body, topic)
	}
	return decodePresence(resp.Body)
}
