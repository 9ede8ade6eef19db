package minion

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/mercury-broker/mercury/web/client"
)

// Message is one message for the broker.
type Message struct {
	Topic   string
	Payload []byte
	// Key orders delivery: messages with the same key are delivered one
	// after the other, in order; messages with different keys may be
	// delivered concurrently. The bridge uses the topic, so one job's
	// events keep their order.
	Key string
}

// Publisher delivers messages to a broker.
//
// Publish returns, for each message, the sequence number the broker
// confirmed it with, or 0 when it was not delivered, and an error when any
// was not. When a message is not delivered, no later message with the same
// key is either.
type Publisher interface {
	Publish(ctx context.Context, msgs []Message) ([]uint64, error)
}

// ErrNoConfirm: the broker accepted a message without confirming it with a
// sequence number, so the bridge cannot know it is stored.
var ErrNoConfirm = errors.New(`minion: the broker did not confirm with a sequence number: ` +
	`it needs a Mercury that answers POST with Accept: application/json with {"seq":N}`)

// PublishError is a refusal by the broker.
type PublishError struct {
	Topic  string
	Status int
	Body   string
}

func (e *PublishError) Error() string {
	return fmt.Sprintf("broker refused the message for %s: %d %s", e.Topic, e.Status, strings.TrimSpace(e.Body))
}

// HTTPPublisher publishes with HTTP POST to a Mercury broker, asking for
// confirms (Accept: application/json, answered with {"seq":N} once the
// message is stored; on a durable bus, once it is on disk).
type HTTPPublisher struct {
	// Broker is the broker's base URL: http://host:port (ws:// works too).
	Broker string
	// Pattern is "pub" (the default) or "bus".
	Pattern string
	// Client defaults to http.DefaultClient.
	Client *http.Client
	// Header is added to every request (say, Authorization).
	Header http.Header
	// Concurrency bounds the requests in flight, one per key; default 8.
	Concurrency int
}

var _ Publisher = (*HTTPPublisher)(nil)

// Publish posts each message and waits for its confirm.
func (p *HTTPPublisher) Publish(ctx context.Context, msgs []Message) ([]uint64, error) {
	seqs := make([]uint64, len(msgs))
	// Group by key, keeping each group's order.
	var order []string
	groups := map[string][]int{}
	for i, m := range msgs {
		if _, ok := groups[m.Key]; !ok {
			order = append(order, m.Key)
		}
		groups[m.Key] = append(groups[m.Key], i)
	}
	n := p.Concurrency
	if n <= 0 {
		n = 8
	}
	n = min(n, len(order))
	work := make(chan []int)
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for range n {
		wg.Go(func() {
			for idx := range work {
				for _, i := range idx {
					seq, err := p.post(ctx, msgs[i].Topic, msgs[i].Payload)
					if err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
						break // the rest of this key waits for the next attempt
					}
					seqs[i] = seq
				}
			}
		})
	}
	for _, k := range order {
		work <- groups[k]
	}
	close(work)
	wg.Wait()
	if len(errs) > 0 {
		return seqs, fmt.Errorf("failed to publish %d of %d messages: %w", countZero(seqs), len(msgs), errs[0])
	}
	return seqs, nil
}

func countZero(seqs []uint64) int {
	n := 0
	for _, s := range seqs {
		if s == 0 {
			n++
		}
	}
	return n
}

func (p *HTTPPublisher) post(ctx context.Context, topic string, payload []byte) (uint64, error) {
	pattern := p.Pattern
	if pattern == "" {
		pattern = "pub"
	}
	h := http.Header{}
	for k, v := range p.Header {
		h[k] = v
	}
	h.Set("Accept", "application/json")
	u := strings.TrimRight(client.HTTPURL(p.Broker), "/") + "/" + pattern + EscapeTopic(topic)
	resp, err := client.Post(ctx, p.Client, u, "application/json", payload, h)
	if err != nil {
		return 0, fmt.Errorf("failed to publish to %s: %w", topic, err)
	}
	if resp.Status != http.StatusOK {
		return 0, &PublishError{Topic: topic, Status: resp.Status, Body: string(resp.Body)}
	}
	var ok struct {
		Seq *uint64 `json:"seq"`
	}
	if len(strings.TrimSpace(string(resp.Body))) == 0 || json.Unmarshal(resp.Body, &ok) != nil || ok.Seq == nil {
		return 0, fmt.Errorf("%w (got %q for %s)", ErrNoConfirm, resp.Body, topic)
	}
	return *ok.Seq, nil
}

// EscapeTopic returns topic as a URL path, each segment escaped, so that
// a literal "%" in a segment (as Segment writes it) reaches the broker as
// such.
func EscapeTopic(topic string) string {
	segs := strings.Split(strings.Trim(topic, "/"), "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return "/" + strings.Join(segs, "/")
}
