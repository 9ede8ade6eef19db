package client_test

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/web"
	"github.com/mercury-broker/mercury/web/client"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testBroker is a real Mercury server behind httptest, recording the
// Authorization header of each request.
type testBroker struct {
	srv    *httptest.Server
	b      *broker.Broker
	mu     sync.Mutex
	bearer []string
}

func startBroker(t *testing.T, tls bool) *testBroker {
	t.Helper()
	tb := &testBroker{b: broker.New(broker.Options{})}
	ws, err := web.New(tb.b, web.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tb.mu.Lock()
		tb.bearer = append(tb.bearer, r.Header.Get("Authorization"))
		tb.mu.Unlock()
		ws.ServeHTTP(w, r)
	})
	if tls {
		tb.srv = httptest.NewTLSServer(h)
	} else {
		tb.srv = httptest.NewServer(h)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ws.Shutdown(ctx)
		tb.srv.Close()
	})
	return tb
}

func (tb *testBroker) url(pattern, topic string) string {
	return client.URL(tb.srv.URL, pattern, topic, nil)
}

func dial(t *testing.T, url string, opts *client.Options) *client.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func read(t *testing.T, c *client.Conn) client.Incoming {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	in, err := client.ParseIncoming(f.Data)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func TestEnvelopeModeAndPublish(t *testing.T) {
	tb := startBroker(t, false)
	sub := dial(t, tb.url("sub", "/a"), &client.Options{Envelope: true})
	if sub.Subprotocol() != client.EnvelopeSubprotocol {
		t.Fatalf("subprotocol %q", sub.Subprotocol())
	}
	seq, err := client.PublishURL(context.Background(), tb.url("pub", "/a/b"), []byte(`{"x":1}`), false, nil)
	if err != nil || seq == 0 {
		t.Fatalf("Publish = %d, %v", seq, err)
	}
	bseq, err := client.PublishURL(context.Background(), tb.url("pub", "/a"), []byte{0xff, 0}, true, nil)
	if err != nil || bseq <= seq {
		t.Fatalf("Publish = %d, %v", bseq, err)
	}
	in := read(t, sub)
	if in.Message == nil || in.Message.Seq != seq || in.Message.Topic != "/a/b" {
		t.Fatalf("got %+v", in)
	}
	if p, bin, err := in.Message.Payload(); err != nil || bin || string(p) != `{"x":1}` {
		t.Fatalf("payload %q %v %v", p, bin, err)
	}
	in = read(t, sub)
	if p, bin, err := in.Message.Payload(); err != nil || !bin || string(p) != "\xff\x00" || in.Message.Encoding != "base64" {
		t.Fatalf("binary payload %q %v %v", p, bin, err)
	}

	// A publisher in envelope mode is answered once per frame.
	pub := dial(t, tb.url("pub", "/a"), &client.Options{Envelope: true})
	pub.WriteText(context.Background(), "hello")
	if in := read(t, pub); in.OK == nil || *in.OK <= bseq {
		t.Fatalf("answer %+v", in)
	}
}

func TestPublishRefused(t *testing.T) {
	tb := startBroker(t, false)
	_, err := client.PublishURL(context.Background(), tb.srv.URL+"/pub/a//b", []byte("x"), false, nil)
	var pe *client.PostError
	if !errors.As(err, &pe) || pe.Status != 400 || pe.API() == nil || pe.API().Code != "topic" {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(pe.Error(), "400 Bad Request") {
		t.Fatalf("message %q", pe.Error())
	}
	_, err = client.Dial(context.Background(), tb.srv.URL+"/sub/a//b", nil)
	var he *client.HandshakeError
	if !errors.As(err, &he) || he.Status != 400 || he.API() == nil || he.API().Topic != "/a//b" {
		t.Fatalf("err = %v", err)
	}
}

func TestErrNoEnvelope(t *testing.T) {
	// A WebSocket server that is not Mercury.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		<-c.CloseRead(context.Background()).Done()
	}))
	defer srv.Close()
	_, err := client.Dial(context.Background(), srv.URL, &client.Options{Envelope: true})
	if !errors.Is(err, client.ErrNoEnvelope) {
		t.Fatalf("err = %v, want ErrNoEnvelope", err)
	}
}

func TestAckAndNack(t *testing.T) {
	tb := startBroker(t, false)
	if _, err := client.PublishURL(context.Background(), tb.url("push", "/jobs"), []byte("job"), false, nil); err != nil {
		t.Fatal(err)
	}
	p := dial(t, tb.url("pull", "/jobs"), &client.Options{Envelope: true})
	first := read(t, p).Message
	if first == nil || first.Attempt != 1 || len(first.ID) == 0 {
		t.Fatalf("got %+v", first)
	}
	if err := p.Nack(context.Background(), first.ID, 0, "not now"); err != nil {
		t.Fatal(err)
	}
	again := read(t, p).Message
	if again == nil || string(again.ID) != string(first.ID) || again.Attempt != 2 {
		t.Fatalf("after a nack: %+v", again)
	}
	if err := p.Ack(context.Background(), again.ID); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		qs := tb.b.Queues()
		if len(qs) == 1 && qs[0].Waiting == 0 && qs[0].InFlight == 0 && qs[0].Dead == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue after the ack: %+v", qs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestNackEncoding(t *testing.T) {
	// What Nack sends, read back by a plain WebSocket server.
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		_, data, _ := c.Read(r.Context())
		got <- string(data)
	}))
	defer srv.Close()
	c := dial(t, srv.URL, nil)
	c.Nack(context.Background(), json.RawMessage("17"), 10*time.Second, `db "down"`)
	if s := <-got; s != `{"nack":17,"delay":"10s","error":"db \"down\""}` {
		t.Fatalf("sent %s", s)
	}
}

func TestTLSAndToken(t *testing.T) {
	tb := startBroker(t, true)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tb.srv.Certificate().Raw}), 0o600)

	// Not trusted by the system.
	if _, err := client.Dial(context.Background(), tb.url("sub", "/x"), nil); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("err = %v, want a certificate error", err)
	}
	conf, err := client.TLSConfig(caFile, false)
	if err != nil {
		t.Fatal(err)
	}
	opts := &client.Options{HTTPClient: client.NewHTTPClient(conf), Token: "tok"}
	dial(t, tb.url("sub", "/x"), opts)
	if _, err := client.PublishURL(context.Background(), tb.url("pub", "/x"), []byte("m"), false, opts); err != nil {
		t.Fatal(err)
	}
	insecure, _ := client.TLSConfig("", true)
	dial(t, tb.url("sub", "/x"), &client.Options{HTTPClient: client.NewHTTPClient(insecure)})

	tb.mu.Lock()
	defer tb.mu.Unlock()
	if len(tb.bearer) != 3 || tb.bearer[0] != "Bearer tok" || tb.bearer[1] != "Bearer tok" || tb.bearer[2] != "" {
		t.Fatalf("Authorization headers seen: %q", tb.bearer)
	}
}

func TestTLSConfigErrors(t *testing.T) {
	if _, err := client.TLSConfig("/nonexistent/ca.pem", false); err == nil || !strings.Contains(err.Error(), "failed to read the CA file") {
		t.Fatalf("err = %v", err)
	}
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(notPEM, []byte("not a certificate"), 0o600)
	if _, err := client.TLSConfig(notPEM, false); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("err = %v", err)
	}
}

func TestParseIncoming(t *testing.T) {
	for _, tc := range []struct {
		frame string
		check func(client.Incoming) bool
	}{
		{`{"ok":17}`, func(in client.Incoming) bool { return in.OK != nil && *in.OK == 17 }},
		{`{"error":{"code":"queue_full","topic":"/j","message":"full"}}`, func(in client.Incoming) bool {
			return in.Error != nil && in.Error.Code == "queue_full" && in.Error.Error() == "/j: full (queue_full)"
		}},
		{`{"gap":{"from":3,"to":9}}`, func(in client.Incoming) bool { return in.Gap != nil && in.Gap.From == 3 && in.Gap.To == 9 }},
		{`{"topic":"/t","seq":5,"time":"2026-11-24T11:00:00Z","data":null}`, func(in client.Incoming) bool {
			return in.Message != nil && string(in.Message.Data) == "null"
		}},
		{`{"id":"abc","attempt":3,"topic":"/t","seq":5,"time":"2026-11-24T11:00:00Z","data":"x","encoding":"text"}`, func(in client.Incoming) bool {
			p, _, err := in.Message.Payload()
			return string(in.Message.ID) == `"abc"` && in.Message.Attempt == 3 && string(p) == "x" && err == nil
		}},
	} {
		in, err := client.ParseIncoming([]byte(tc.frame))
		if err != nil || !tc.check(in) {
			t.Errorf("%s: %+v %v", tc.frame, in, err)
		}
	}
	for _, bad := range []string{`not json`, `{}`, `{"hello":1}`, `[1]`} {
		if _, err := client.ParseIncoming([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
	if e := (&client.Envelope{Data: []byte(`"%%%"`), Encoding: "base64"}); true {
		if _, _, err := e.Payload(); err == nil {
			t.Error("bad base64 accepted")
		}
	}
	if _, _, err := (&client.Envelope{Data: []byte(`1`), Encoding: "rot13"}).Payload(); err == nil {
		t.Error("unknown encoding accepted")
	}
	if client.ParseError([]byte(`{"error":{"code":"x","message":"m"}}`)) == nil || client.ParseError([]byte(`{"error":"x"}`)) != nil ||
		client.ParseError([]byte(`hello`)) != nil {
		t.Error("ParseError")
	}
}
