package minion_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/mercury-broker/mercury/bus/minion"
	"github.com/mercury-broker/mercury/web/client"
)

// TestHTTPPublisherConfirmsInOrderPerKey publishes to Mercury's real web
// server: every message confirmed with its sequence number, each key's
// messages in order, concurrently across keys.
func TestHTTPPublisherConfirmsInOrderPerKey(t *testing.T) {
	url := startBroker(t, 0)
	sub, err := client.Dial(ctxT(t), client.URL(url, "sub", "/audit", nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.CloseNow()
	var msgs []minion.Message
	for i := range 40 {
		key := fmt.Sprintf("/audit/k%d", i%4)
		msgs = append(msgs, minion.Message{Topic: key, Key: key, Payload: []byte(fmt.Sprintf(`{"n":%d}`, i))})
	}
	p := &minion.HTTPPublisher{Broker: strings.Replace(url, "http://", "ws://", 1), Concurrency: 4}
	seqs, err := p.Publish(ctxT(t), msgs)
	if err != nil {
		t.Fatal(err)
	}
	last := map[string]uint64{}
	seen := map[uint64]bool{}
	for i, s := range seqs {
		if s == 0 || seen[s] || s <= last[msgs[i].Key] {
			t.Fatalf("message %d confirmed with seq %d after %d for its key", i, s, last[msgs[i].Key])
		}
		seen[s], last[msgs[i].Key] = true, s
	}
	got := map[string][]string{}
	for range msgs {
		f, err := sub.Read(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		var n int
		fmt.Sscanf(string(f.Data), `{"n":%d}`, &n)
		key := fmt.Sprintf("/audit/k%d", n%4)
		got[key] = append(got[key], string(f.Data))
	}
	for i, m := range msgs {
		if got[m.Key][i/4] != string(m.Payload) {
			t.Fatalf("key %s received %v out of order", m.Key, got[m.Key])
		}
	}
}

func TestHTTPPublisherReportsRefusals(t *testing.T) {
	url := startBroker(t, 0)
	p := &minion.HTTPPublisher{Broker: url}
	msgs := []minion.Message{
		{Topic: "/audit/a", Key: "a", Payload: []byte(`1`)},
		{Topic: "/audit/..", Key: "a", Payload: []byte(`2`)}, // refused: ".." segment
		{Topic: "/audit/a", Key: "a", Payload: []byte(`3`)},  // not tried: after a failure of its key
		{Topic: "/audit/b", Key: "b", Payload: []byte(`4`)},
	}
	seqs, err := p.Publish(ctxT(t), msgs)
	var pe *minion.PublishError
	if !errors.As(err, &pe) || pe.Status != 400 || pe.Topic != "/audit/.." || !strings.Contains(pe.Body, "topic") {
		t.Fatalf("Publish: %v, want a 400 refusal for /audit/..", err)
	}
	if seqs[0] == 0 || seqs[1] != 0 || seqs[2] != 0 || seqs[3] == 0 {
		t.Fatalf("seqs %v: want the first and last confirmed only", seqs)
	}
	p = &minion.HTTPPublisher{Broker: "http://127.0.0.1:1"}
	if _, err := p.Publish(ctxT(t), msgs[:1]); err == nil {
		t.Fatal("publishing to a closed port succeeded")
	}
}

func TestSegmentAndEscapedTopicsReachTheBroker(t *testing.T) {
	for name, want := range map[string]string{
		"default": "default", "a/b": "a%2Fb", "100%": "100%25", "": "%00", ".": "%2E", "..": "%2E%2E",
		"é t": "%C3%A9%20t", "mail:send@v2": "mail:send@v2",
	} {
		if got := minion.Segment(name); got != want {
			t.Errorf("Segment(%q) = %q, want %q", name, got, want)
		}
	}
	url := startBroker(t, 0)
	topic := "/audit/minion/" + minion.Segment("a/b") + "/" + minion.Segment("..") + "/1"
	sub, err := client.Dial(ctxT(t), url+"/sub"+minion.EscapeTopic(topic), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.CloseNow()
	other, err := client.Dial(ctxT(t), url+"/sub/audit/minion/a", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.CloseNow()
	p := &minion.HTTPPublisher{Broker: url}
	if _, err := p.Publish(ctxT(t), []minion.Message{{Topic: topic, Payload: []byte(`"x"`)}, {Topic: "/audit/minion/a", Payload: []byte(`"y"`)}}); err != nil {
		t.Fatal(err)
	}
	if f, err := sub.Read(ctxT(t)); err != nil || string(f.Data) != `"x"` {
		t.Fatalf("subscriber of %s: %q %v", topic, f.Data, err)
	}
	if f, err := other.Read(ctxT(t)); err != nil || string(f.Data) != `"y"` {
		t.Fatalf("the queue named a/b leaked into queue a: %q %v", f.Data, err)
	}
}
