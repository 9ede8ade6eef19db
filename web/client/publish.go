package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// PostError is an HTTP error status the broker answered a POST with.
type PostError struct {
	Status int
	Body   string
}

func (e *PostError) Error() string {
	msg := strings.TrimSpace(e.Body)
	if api := e.API(); api != nil {
		msg = api.Error()
	}
	return fmt.Sprintf("%d %s: %s", e.Status, http.StatusText(e.Status), msg)
}

// API returns the broker's JSON error in the body, or nil.
func (e *PostError) API() *APIError { return parseAPIError([]byte(e.Body)) }

// Publish sends payload to rawURL (/pub, /bus or /push; ws:// and wss://
// are mapped to http:// and https://) by POST, as one message, binary or
// text. It returns the message's sequence number when the broker tells it
// (brokers with envelope support do), 0 otherwise, and a *PostError when
// the broker refused the message.
func Publish(ctx context.Context, rawURL string, payload []byte, binary bool, opts *Options) (seq uint64, err error) {
	if opts == nil {
		opts = &Options{}
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, HTTPURL(rawURL), bytes.NewReader(payload))
	if err != nil {
		return 0, fmt.Errorf("failed to build the request: %w", err)
	}
	for k, vs := range opts.header() {
		req.Header[k] = vs
	}
	req.Header.Set("Accept", "application/json")
	if binary {
		req.Header.Set("Content-Type", "application/octet-stream")
	} else {
		req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, fmt.Errorf("failed to read the response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, &PostError{Status: resp.StatusCode, Body: string(body)}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return 0, nil // a broker without envelope support
	}
	var answer struct {
		Seq uint64 `json:"seq"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return 0, fmt.Errorf("failed to decode the answer %.100q: %w", body, err)
	}
	return answer.Seq, nil
}
