package test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mercury-broker/mercury/web/client"
)

// The command line in envelope mode: topics, sequence numbers, publisher
// confirms, acknowledged pulls.

// publishSeq publishes body to url and returns its sequence number.
func publishSeq(t testing.TB, url, body string) uint64 {
	t.Helper()
	seq, err := client.PublishURL(context.Background(), url, []byte(body), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if seq == 0 {
		t.Fatal("the broker gave no sequence number")
	}
	return seq
}

func TestCLISubEnvelopeOutput(t *testing.T) {
	b := startBroker(t)
	asJSON := startCLI(t, nil, "sub", "/livesys", "--json", "--count", "2", "--server", b.WS)
	withTopic := startCLI(t, nil, "sub", "/livesys", "--show-topic", "--count", "2", "--server", b.WS)
	asJSON.waitStderr(t, "connected")
	withTopic.waitStderr(t, "connected")
	s1 := publishSeq(t, b.HTTP+"/pub/livesys/42", `{"cmd": "reboot"}`)
	s2 := publishSeq(t, b.HTTP+"/pub/livesys/7", "plain")

	var got []client.Envelope
	for range 2 {
		line := asJSON.line(t)
		var e client.Envelope
		if err := json.Unmarshal([]byte(line), &e); err != nil || strings.Contains(line, "\n") {
			t.Fatalf("--json printed %q: %v", line, err)
		}
		got = append(got, e)
	}
	if got[0].Topic != "/livesys/42" || got[0].Seq != s1 || string(got[0].Data) != `{"cmd":"reboot"}` || got[0].Time.IsZero() {
		t.Fatalf("first: %+v", got[0])
	}
	if got[1].Topic != "/livesys/7" || got[1].Seq != s2 || string(got[1].Data) != `"plain"` || got[1].Encoding != "text" {
		t.Fatalf("second: %+v", got[1])
	}
	for _, want := range []string{"/livesys/42\t{\"cmd\":\"reboot\"}", "/livesys/7\tplain"} {
		if l := withTopic.line(t); l != want {
			t.Fatalf("--show-topic printed %q, want %q", l, want)
		}
	}
	asJSON.expectExit(t, 0)
	withTopic.expectExit(t, 0)
}

func TestCLIPubWaitsForConfirms(t *testing.T) {
	b := startBroker(t, "--queue-limit", "2")
	sub := dial(t, b.WS+"/sub/c", nil)
	stdout, stderr, code := runCLI(t, "one\ntwo\nthree\n", "pub", "/c", "--envelope", "--json", "--server", b.WS)
	expectExit(t, stderr, code, 0)
	var seqs []uint64
	for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var a struct{ Seq uint64 }
		if err := json.Unmarshal([]byte(l), &a); err != nil || a.Seq == 0 {
			t.Fatalf("--json printed %q", l)
		}
		seqs = append(seqs, a.Seq)
	}
	if len(seqs) != 3 || seqs[1] <= seqs[0] || seqs[2] <= seqs[1] {
		t.Fatalf("confirmed seqs %v", seqs)
	}
	for _, want := range []string{"one", "two", "three"} {
		if got := readText(t, sub); got != want {
			t.Fatalf("got %q", got)
		}
	}

	// The third push finds the queue full: the pusher is paused, not
	// refused, and its last confirm comes once a puller makes room.
	push := startCLI(t, nil, "push", "/jobs", "--json", "--server", b.WS)
	push.send(t, "j1", "j2", "j3")
	for range 2 {
		if l := push.line(t); !strings.HasPrefix(l, `{"seq":`) {
			t.Fatalf("printed %q, want a confirm", l)
		}
	}
	waitFor(t, "two jobs to wait", func() bool { waiting, _, _ := queueStats(t, b, "/jobs"); return waiting == 2 })
	select {
	case l := <-push.lines:
		t.Fatalf("a push to a full queue printed %q", l)
	case <-time.After(500 * time.Millisecond):
	}
	puller := dial(t, b.WS+"/pull/jobs", nil)
	for _, want := range []string{"j1", "j2", "j3"} {
		if got := readText(t, puller); got != want {
			t.Fatalf("puller got %q, want %q", got, want)
		}
	}
	if l := push.line(t); !strings.HasPrefix(l, `{"seq":`) {
		t.Fatalf("printed %q, want the third confirm", l)
	}
	push.stdin.Close()
	push.expectExit(t, 0)
}

// queueStats returns the broker's view of a queue.
func queueStats(t testing.TB, b *brokerProc, topic string) (waiting, inFlight, dead int) {
	t.Helper()
	resp, err := http.Get(b.HTTP + "/api/queues")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var queues []struct {
		Topic    string `json:"topic"`
		Waiting  int    `json:"waiting"`
		InFlight int    `json:"in_flight"`
		Dead     int    `json:"dead"`
	}
	if err := json.Unmarshal(body, &queues); err != nil {
		t.Fatalf("/api/queues: %v: %s", err, body)
	}
	for _, q := range queues {
		if q.Topic == topic {
			return q.Waiting, q.InFlight, q.Dead
		}
	}
	t.Fatalf("no queue %s in %s", topic, body)
	return
}

func TestCLIPullAck(t *testing.T) {
	b := startBroker(t)
	post(t, b.HTTP+"/push/jobs", `{"job":1}`)
	post(t, b.HTTP+"/push/jobs", `{"job":2}`)

	// In envelope mode without --ack, a message taken is not done with: it
	// comes again to the next puller.
	stdout, stderr, code := runCLI(t, "", "pull", "/jobs", "--envelope", "--count", "1", "--server", b.WS)
	expectExit(t, stderr, code, 0)
	if stdout != "{\"job\":1}\n" {
		t.Fatalf("stdout %q", stdout)
	}
	// --ack: printed, then acknowledged.
	stdout, stderr, code = runCLI(t, "", "pull", "/jobs", "--ack", "--json", "--count", "1", "--prefetch", "1", "--server", b.WS)
	expectExit(t, stderr, code, 0)
	var e client.Envelope
	if err := json.Unmarshal([]byte(stdout), &e); err != nil || string(e.Data) != `{"job":1}` || e.Attempt != 2 {
		t.Fatalf("--ack --json printed %q (%v), want job 1, attempt 2", stdout, err)
	}
	stdout, stderr, code = runCLI(t, "", "pull", "/jobs", "--ack", "--count", "1", "--server", b.WS)
	expectExit(t, stderr, code, 0)
	if stdout != "{\"job\":2}\n" {
		t.Fatalf("stdout %q", stdout)
	}
	// Both acknowledged: nothing waits, nothing is in flight.
	waitFor(t, "the queue to be empty", func() bool {
		w, f, d := queueStats(t, b, "/jobs")
		return w == 0 && f == 0 && d == 0
	})
}

func TestCLIPullAckExecNackOnError(t *testing.T) {
	b := startBroker(t)
	for _, job := range []string{"ok-1", "fail-once", "ok-2"} {
		post(t, b.HTTP+"/push/jobs", job)
	}
	// A tiny worker: fails "fail-once" on its first attempt, so it is
	// nacked and comes back; everything else is acked.
	worker := `read job
if [ "$job" = fail-once ] && [ "$MERCURY_ATTEMPT" = 1 ]; then echo "not now" >&2; exit 1; fi
echo "$job id=$MERCURY_ID attempt=$MERCURY_ATTEMPT topic=$MERCURY_TOPIC"`
	stdout, stderr, code := runCLI(t, "", "pull", "/jobs", "--exec", worker, "--nack-on-error", "--count", "4", "--server", b.WS)
	expectExit(t, stderr, code, 0, "--exec failed for message id ", "attempt 1): exit status 1: not now")
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 3 {
		t.Fatalf("the worker printed:\n%s", stdout)
	}
	var done []string
	for _, l := range lines {
		f := strings.Fields(l)
		done = append(done, f[0]+" "+f[2])
		if !strings.HasPrefix(f[1], "id=") || f[3] != "topic=/jobs" {
			t.Fatalf("environment: %q", l)
		}
	}
	if got := strings.Join(done, ", "); got != "ok-1 attempt=1, ok-2 attempt=1, fail-once attempt=2" &&
		got != "ok-1 attempt=1, fail-once attempt=2, ok-2 attempt=1" {
		t.Fatalf("handled: %s", got)
	}
	waitFor(t, "the queue to be empty", func() bool {
		w, f, d := queueStats(t, b, "/jobs")
		return w == 0 && f == 0 && d == 0
	})
}

func TestCLIBusEnvelope(t *testing.T) {
	b := startBroker(t)
	peer := dial(t, b.WS+"/bus/room", nil)
	bus := startCLI(t, nil, "bus", "/room", "--json", "--count", "1", "--server", b.WS)
	bus.waitStderr(t, "connected")
	bus.send(t, "hello")
	if got := readText(t, peer); got != "hello" {
		t.Fatalf("peer got %q", got)
	}
	peer.WriteText(context.Background(), `{"n":1}`)
	var e client.Envelope
	if l := bus.line(t); json.Unmarshal([]byte(l), &e) != nil || e.Topic != "/room" || string(e.Data) != `{"n":1}` {
		t.Fatalf("bus printed %q", l)
	}
	bus.expectExit(t, 0)
	if strings.Contains(bus.stderr.String(), "refused") {
		t.Fatal(bus.stderr.String())
	}
}

func TestCLIEnvelopeNeedsABrokerThatSpeaksIt(t *testing.T) {
	// A WebSocket server that knows nothing of mercury.v1.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		<-c.CloseRead(context.Background()).Done() // until the client leaves
	}))
	defer srv.Close()
	_, stderr, code := runCLI(t, "", "sub", "/x", "--json", "--server", srv.URL)
	expectExit(t, stderr, code, 1, "does not speak envelope mode")
}
