package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
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
	hc := opts.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, HTTPURL(rawURL), nil)
	if err != nil {
		return nil, fmt.Errorf("failed to build the request: %w", err)
	}
	for k, vs := range opts.header() {
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
	if resp.StatusCode != http.StatusOK {
		return nil, &PostError{Status: resp.StatusCode, Body: strings.TrimSpace(string(body))}
	}
	var list []Presence
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("failed to decode the list: %w", err)
	}
	return list, nil
}
