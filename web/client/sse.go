package client

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
)

// stream receives over Server-Sent Events (GET /sub/T with Accept:
// text/event-stream, envelopes) until the stream ends. A stream cannot
// take a fresh token in-band: the broker ends it when its token expires,
// and the next connection has a fresh one.
func (s *subscription) stream(ctx context.Context, opened opened) error {
	q := s.pos.query()
	if q == nil {
		q = map[string][]string{}
	}
	q.Set("envelope", "1")
	opts := s.c.dialOptions(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, HTTPURL(s.c.url("sub", s.topic, q)), nil)
	if err != nil {
		return err
	}
	for k, vs := range opts.header() {
		req.Header[k] = vs
	}
	req.Header.Set("Accept", "text/event-stream")
	hc := s.c.cfg.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	// The broker sends the stream's headers with its first event.
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		err := errorOf(resp.StatusCode, body, s.topic)
		if resp.StatusCode == http.StatusUnauthorized {
			s.c.freshToken(ctx, opts.Token)
		}
		return err
	}
	opened()
	return s.readEvents(ctx, bufio.NewReader(resp.Body), opts.Token)
}

// readEvents reads events until the stream ends.
func (s *subscription) readEvents(ctx context.Context, r *bufio.Reader, token string) error {
	var event string
	var data []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		switch {
		case line == "":
			if len(data) > 0 {
				if err := s.event(ctx, event, []byte(strings.Join(data, "\n")), token); err != nil {
					return err
				}
			}
			event, data = "", nil
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(line[len("data:"):], " "))
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(line[len("event:"):])
		}
	}
}

func (s *subscription) event(ctx context.Context, event string, data []byte, token string) error {
	switch event {
	case "gap":
		var g Gap
		if err := json.Unmarshal(data, &g); err != nil {
			s.c.onError(err)
			return nil
		}
		s.gap(g)
	case "error":
		e := parseAPIError(data)
		if e == nil {
			return nil
		}
		if e.Code == "token_expired" {
			// The stream ends now: the next one gets a fresh token.
			s.c.freshToken(ctx, token)
			return nil
		}
		s.c.onError(e)
	case "", "message":
		var e Envelope
		if err := json.Unmarshal(data, &e); err != nil || e.Seq == 0 {
			return nil
		}
		return s.deliver(&e)
	}
	return nil
}
