package web

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/web/client"
)

func TestTwoSubscribersBothGetAPublish(t *testing.T) {
	ts := startServer(t, Options{})
	a, b := ts.dial(t, "sub", "/news"), ts.dial(t, "sub", "/news")
	pub := ts.dial(t, "pub", "/news")
	pub.send(t, "over websocket")
	for _, s := range []*peer{a, b} {
		if got := s.nextText(t); got != "over websocket" {
			t.Fatalf("got %q", got)
		}
	}
	if resp := post(t, ts, "pub", "/news", "", "over http"); resp.Status != 200 || len(resp.Body) != 0 {
		t.Fatalf("POST = %d %q, want 200 with an empty body", resp.Status, resp.Body)
	}
	for _, s := range []*peer{a, b} {
		if got := s.nextText(t); got != "over http" {
			t.Fatalf("got %q", got)
		}
	}
}

func TestHierarchy(t *testing.T) {
	ts := startServer(t, Options{})
	parent := ts.dial(t, "sub", "/foo")
	child := ts.dial(t, "sub", "/foo/bar")
	lookalike := ts.dial(t, "sub", "/foobar")
	short := ts.dial(t, "sub", "/fo")

	post(t, ts, "pub", "/foo/bar", "", "child")
	post(t, ts, "pub", "/foo", "", "parent")
	post(t, ts, "pub", "/foo/bar/baz", "", "grandchild")

	for _, want := range []string{"child", "parent", "grandchild"} {
		if got := parent.nextText(t); got != want {
			t.Fatalf("/sub/foo got %q, want %q", got, want)
		}
	}
	for _, want := range []string{"child", "grandchild"} {
		if got := child.nextText(t); got != want {
			t.Fatalf("/sub/foo/bar got %q, want %q", got, want)
		}
	}
	lookalike.nothing(t)
	short.nothing(t)
}

func TestPercentEncodedSlashIsASeparatorAndQueryIsNotTopic(t *testing.T) {
	ts := startServer(t, Options{})
	sub := ts.dialURL(t, ts.ws+"/sub/foo?x=1", nil)
	resp, err := client.Post(context.Background(), nil, ts.http.URL+"/pub/foo%2Fbar?y=2", "", []byte("encoded"), nil)
	if err != nil || resp.Status != 200 {
		t.Fatalf("POST = %v %v", resp, err)
	}
	if got := sub.nextText(t); got != "encoded" {
		t.Fatalf("got %q", got)
	}
	exact := ts.dialURL(t, ts.ws+"/sub/foo%2Fbar", nil)
	post(t, ts, "pub", "/foo/bar", "", "again")
	if got := exact.nextText(t); got != "again" {
		t.Fatalf("/sub/foo%%2Fbar got %q", got)
	}
}

func TestNamespacesAreSeparate(t *testing.T) {
	ts := startServer(t, Options{})
	bus := ts.dial(t, "bus", "/foo")
	pull := ts.dial(t, "pull", "/foo")
	sub := ts.dial(t, "sub", "/foo")
	post(t, ts, "pub", "/foo", "", "published")
	if got := sub.nextText(t); got != "published" {
		t.Fatalf("got %q", got)
	}
	bus.nothing(t)
	pull.nothing(t)
}

func TestBinaryAndTextStayByteForByte(t *testing.T) {
	ts := startServer(t, Options{})
	sub := ts.dial(t, "sub", "/bytes")
	pub := ts.dial(t, "pub", "/bytes")
	raw := []byte{0xff, 0x00, 0x80, 0x41}
	if err := pub.WriteBinary(context.Background(), raw); err != nil {
		t.Fatal(err)
	}
	if f := sub.next(t); !f.Binary || !bytes.Equal(f.Data, raw) {
		t.Fatalf("binary frame arrived as binary=%v % x", f.Binary, f.Data)
	}
	pub.send(t, "é ü 日本")
	if got := sub.nextText(t); got != "é ü 日本" {
		t.Fatalf("text frame arrived as % x", got)
	}
	// A POST body is never re-encoded: UTF-8 text stays text, other bytes
	// travel as a binary frame.
	post(t, ts, "pub", "/bytes", "text/plain; charset=utf-8", "é")
	if f := sub.next(t); f.Binary || string(f.Data) != "é" {
		t.Fatalf("POSTed é arrived as binary=%v % x", f.Binary, f.Data)
	}
	post(t, ts, "pub", "/bytes", "", string(raw))
	if f := sub.next(t); !f.Binary || !bytes.Equal(f.Data, raw) {
		t.Fatalf("POSTed bytes arrived as binary=%v % x", f.Binary, f.Data)
	}
	post(t, ts, "pub", "/bytes", "application/octet-stream", "abc")
	if f := sub.next(t); !f.Binary || string(f.Data) != "abc" {
		t.Fatalf("POSTed octet-stream arrived as binary=%v %q", f.Binary, f.Data)
	}
}

func TestFramesOnSubAreIgnoredAndPubReceivesNothing(t *testing.T) {
	ts := startServer(t, Options{})
	other := ts.dial(t, "sub", "/x")
	sub := ts.dial(t, "sub", "/x")
	sub.send(t, "ignored")
	pub := ts.dial(t, "pub", "/x")
	pub.send(t, "hello")
	if got := other.nextText(t); got != "hello" {
		t.Fatalf("got %q; a frame sent on /sub must not be published", got)
	}
	if got := sub.nextText(t); got != "hello" {
		t.Fatalf("the /sub socket that sent a frame got %q", got)
	}
	pub.nothing(t)
}

func TestMissingTopicAndPlainGet(t *testing.T) {
	ts := startServer(t, Options{})
	for _, c := range []struct {
		path   string
		status int
	}{
		{"/sub/", http.StatusNotFound},
		{"/sub", http.StatusNotFound},
		{"/sub/foo", http.StatusUpgradeRequired},
		{"/pull/foo", http.StatusUpgradeRequired},
		{"/sub/a//b", http.StatusBadRequest},
		{"/sub/a/%2e%2e/b", http.StatusBadRequest},
		{"/sub/a%00b", http.StatusBadRequest},
		{"/healthz", http.StatusOK},
		{"/readyz", http.StatusOK}, // a single broker is always ready
	} {
		resp, err := http.Get(ts.http.URL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("GET %s = %d, want %d", c.path, resp.StatusCode, c.status)
		}
	}
	for _, path := range []string{"/sub/foo", "/pull/foo"} {
		resp, err := http.Post(ts.http.URL+path, "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Errorf("POST %s = %d, want a refusal", path, resp.StatusCode)
		}
	}
}

// TestWriteCoalesce: with a coalescing window every message still arrives,
// in order, the first at once and the rest within the window.
func TestWriteCoalesce(t *testing.T) {
	ts := startServer(t, Options{WriteCoalesce: 20 * time.Millisecond})
	sub := ts.dial(t, "sub", "/c")
	pub := ts.dial(t, "pub", "/c")
	for i := range 50 {
		pub.send(t, fmt.Sprint(i))
	}
	for i := range 50 {
		if got := sub.nextText(t); got != fmt.Sprint(i) {
			t.Fatalf("message %d arrived as %q", i, got)
		}
	}
	time.Sleep(50 * time.Millisecond) // a quiet spell longer than the window
	post(t, ts, "pub", "/c", "", "after a pause")
	if got := sub.nextText(t); got != "after a pause" {
		t.Fatalf("got %q", got)
	}
}

// TestWriteCoalesceSparseMessagesAreNotHeld: a subscriber whose messages
// come further apart than its window is written at once, not held until
// the window ends: the next message would not share the write. The
// broker's clock moves two hours per message, the window is an hour, so a
// held write would not come within the test's time.
func TestWriteCoalesceSparseMessagesAreNotHeld(t *testing.T) {
	var mu sync.Mutex
	clock := time.Now()
	now := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		clock = clock.Add(2 * time.Hour)
		return clock
	}
	ts := startServerWithBroker(t, broker.Options{Now: now}, Options{WriteCoalesce: time.Hour})
	sub := ts.dial(t, "sub", "/c")
	pub := ts.dial(t, "pub", "/c")
	for _, m := range []string{"first", "second", "third"} {
		pub.send(t, m)
		if got := sub.nextText(t); got != m {
			t.Fatalf("got %q, want %q", got, m)
		}
	}
}

// TestWriteCoalesceFullBatch: a held subscriber is written as soon as a
// full batch waits (coalesceFrames frames, or coalesceBytes bytes), not
// when its window ends: the window here is longer than the test may take.
func TestWriteCoalesceFullBatch(t *testing.T) {
	ts := startServer(t, Options{WriteCoalesce: time.Hour})
	sub := ts.dial(t, "sub", "/c")
	pub := ts.dial(t, "pub", "/c")
	pub.send(t, "first") // written at once: nothing was written before
	if got := sub.nextText(t); got != "first" {
		t.Fatalf("got %q", got)
	}
	// Each time the first message goes alone, so that the shard holds
	// it, and the rest fill the batch that releases it.
	const settle = 50 * time.Millisecond
	pub.send(t, "0")
	time.Sleep(settle)
	for i := 1; i < coalesceFrames; i++ {
		pub.send(t, fmt.Sprint(i))
	}
	for i := range coalesceFrames {
		if got := sub.nextText(t); got != fmt.Sprint(i) {
			t.Fatalf("message %d arrived as %q", i, got)
		}
	}
	pub.send(t, "small")
	time.Sleep(settle)
	big := strings.Repeat("x", coalesceBytes)
	pub.send(t, big)
	if got := sub.nextText(t); got != "small" {
		t.Fatalf("got %q", got)
	}
	if got := sub.nextText(t); got != big {
		t.Fatalf("got %d bytes, want %d", len(got), len(big))
	}
}
