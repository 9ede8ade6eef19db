package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/broker/store"
	"github.com/mercury-broker/mercury/web/client"
)

// queueSystem is what the queue model runs against: one broker or
// several, reached over the wire only.
type queueSystem interface {
	// wsURL is a WebSocket URL on one of the brokers, and which.
	wsURL(pattern, topic string, q url.Values) (string, int)
	// httpBase is the HTTP base URL of one of the brokers.
	httpBase() string
	// restart stops one of the brokers (gracefully, or killed) and starts
	// it again on the same data; it says which.
	restart() (int, error)
	close() error
}

// modelSystem is the in-process system under test of the queue model: a
// real server on a loopback port over a broker with a durable Pebble
// store in dir. A restart shuts it down as `mercury serve` does and opens
// a new broker on the same directory.
type modelSystem struct {
	dir      string
	policies *broker.Policies

	store  *store.Durable
	broker *broker.Broker
	server *Server
	http   *httptest.Server
	base   string // http://127.0.0.1:port
}

func startModelSystem(dir string, policies *broker.Policies) (*modelSystem, error) {
	sys := &modelSystem{dir: dir, policies: policies}
	return sys, sys.open()
}

func (sys *modelSystem) open() error {
	st, err := store.OpenDurable(sys.dir)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := broker.Open(broker.Options{Store: st, Policies: sys.policies, Logger: log})
	if err != nil {
		st.Close()
		return err
	}
	s, err := New(b, Options{Logger: log})
	if err != nil {
		b.Close()
		st.Close()
		return err
	}
	sys.store, sys.broker, sys.server = st, b, s
	sys.http = httptest.NewServer(s)
	sys.base = sys.http.URL
	return nil
}

// close shuts down in the order `mercury serve` does: connections, then
// the broker, then the store.
func (sys *modelSystem) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sys.server.Shutdown(ctx)
	sys.http.Close()
	sys.broker.Close()
	return sys.store.Close()
}

func (sys *modelSystem) restart() (int, error) {
	if err := sys.close(); err != nil {
		return 0, fmt.Errorf("failed to close the store: %w", err)
	}
	return 0, sys.open()
}

func (sys *modelSystem) wsURL(pattern, topic string, q url.Values) (string, int) {
	return client.URL("ws"+strings.TrimPrefix(sys.base, "http"), pattern, topic, q), 0
}

func (sys *modelSystem) httpBase() string { return sys.base }

// modelPush sends one message over HTTP and returns its id once confirmed.
func modelPush(base, topic string, body []byte) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := client.Post(ctx, nil, client.URL(base, "push", topic, nil), "application/json", body,
		http.Header{"Accept": {"application/json"}})
	if err != nil {
		return 0, err
	}
	if resp.Status != http.StatusOK {
		return 0, fmt.Errorf("push answered %d %s", resp.Status, resp.Body)
	}
	var answer struct{ Seq uint64 }
	if err := json.Unmarshal(resp.Body, &answer); err != nil || answer.Seq == 0 {
		return 0, fmt.Errorf("push answered %q: %v", resp.Body, err)
	}
	return answer.Seq, nil
}

// modelQueueStats returns topic's entry of GET /api/queues; ok is false
// when the queue does not exist.
func modelQueueStats(base, topic string) (stats broker.QueueStats, ok bool, err error) {
	var all []struct {
		Topic    string `json:"topic"`
		Pullers  int    `json:"pullers"`
		Waiting  int    `json:"waiting"`
		InFlight int    `json:"in_flight"`
	}
	if err := getJSON(base+"/api/queues", &all); err != nil {
		return stats, false, err
	}
	for _, q := range all {
		if q.Topic == topic {
			return broker.QueueStats{Topic: broker.Topic(q.Topic), Pullers: q.Pullers, Waiting: q.Waiting, InFlight: q.InFlight}, true, nil
		}
	}
	return stats, false, nil
}

// modelDeadLetters returns GET /api/queues/dead for topic; none when the
// queue does not exist.
func modelDeadLetters(base, topic string) ([]deadLetterEntry, error) {
	var dead []deadLetterEntry
	err := getJSON(base+"/api/queues/dead?topic="+url.QueryEscape(topic), &dead)
	if se, ok := err.(statusError); ok && se == http.StatusNotFound {
		return nil, nil
	}
	return dead, err
}

type statusError int

func (e statusError) Error() string { return fmt.Sprintf("HTTP status %d", int(e)) }

func getJSON(url string, v any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, resp.Body)
		return statusError(resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
