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

// PublishURL sends payload to rawURL (/pub, /bus or /push; ws:// and wss://
// are mapped to http:// and https://) by POST, as one message, binary or
// text. It returns the message's sequence number when the broker tells it
// (brokers with envelope support do), 0 otherwise, and a *PostError when
// the broker refused the message.
func PublishURL(ctx context.Context, rawURL string, payload []byte, binary bool, opts *Options) (seq uint64, err error) {
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

// Publish publishes data to topic and returns its sequence number once
// the broker accepted it (on a durable bus, once it is on disk), or the
// broker's refusal as an *APIError (Code, Topic, Message, Status); an
// error wrapping ErrNoEnvelope when the broker accepted it without a
// sequence number (a broker older than envelope mode). data
// is a string or []byte sent as it is (text when it is UTF-8), Binary
// for bytes sent as binary, or anything else as JSON.
func (c *Client) Publish(ctx context.Context, topic string, data any) (seq uint64, err error) {
	return c.post(ctx, "pub", topic, data)
}

// Push queues data on topic for exactly one worker (see Pull), and
// returns its sequence number once the broker accepted it, as Publish.
func (c *Client) Push(ctx context.Context, topic string, data any) (seq uint64, err error) {
	return c.post(ctx, "push", topic, data)
}

// post sends one message by POST and reads its sequence number. A POST
// whose answer was lost is not sent again: it may have been accepted.
func (c *Client) post(ctx context.Context, pattern, topic string, data any) (uint64, error) {
	payload, binary, err := encodeData(data)
	if err != nil {
		return 0, err
	}
	ct := "text/plain; charset=utf-8"
	if binary {
		ct = "application/octet-stream"
	}
	resp, err := c.do(ctx, http.MethodPost, HTTPURL(c.url(pattern, topic, nil)), ct, "application/json", payload)
	if err != nil {
		return 0, err
	}
	if resp.Status != http.StatusOK {
		return 0, errorOf(resp.Status, resp.Body, topic)
	}
	var answer struct {
		Seq uint64 `json:"seq"`
	}
	if err := json.Unmarshal(resp.Body, &answer); err != nil || answer.Seq == 0 {
		// Accepted, but with no sequence number to tell.
		return 0, fmt.Errorf("%w: it gave no sequence number (%.100q)", ErrNoEnvelope, resp.Body)
	}
	return answer.Seq, nil
}
