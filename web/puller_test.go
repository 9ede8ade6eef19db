package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/web/client"
)

// pushJobs queues n jobs of size bytes on topic, each starting with its
// name ("j01 …"), and waits until they are all queued.
func pushJobs(t *testing.T, ts *testServer, topic string, n, size int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		body := fmt.Sprintf("j%02d ", i)
		body += strings.Repeat("x", size-len(body))
		if resp := post(t, ts, "push", topic, "", body); resp.Status != 200 {
			t.Fatalf("push j%02d = %d %s", i, resp.Status, resp.Body)
		}
	}
}

// jobName is the name a pushJobs job starts with.
func jobName(data []byte) string {
	name, _, _ := strings.Cut(string(data[:min(len(data), 8)]), " ")
	return name
}

// A queue of messages near the size limit is pulled on the defaults: the
// broker never offers a puller more than its connection may hold, so a
// puller reading as fast as it can is never closed as a slow consumer.
func TestPullerOfBigMessagesIsNotASlowConsumer(t *testing.T) {
	for _, envelope := range []bool{false, true} {
		t.Run(fmt.Sprintf("envelope=%v", envelope), func(t *testing.T) {
			ts := startServer(t, Options{})
			jobs := 20
			if envelope {
				jobs = 5 // each is escaped into JSON: slow under the race detector
			}
			pushJobs(t, ts, "/big", jobs, 900_000)
			q := url.Values{}
			if envelope {
				q.Set("envelope", "1")
			}
			p := ts.dialURL(t, client.URL(ts.ws, "pull", "/big", q), nil)
			seen := map[string]bool{}
			for range jobs {
				f := p.next(t)
				if !envelope {
					seen[jobName(f.Data)] = true
					continue
				}
				var env struct {
					ID   uint64 `json:"id"`
					Data string `json:"data"`
				}
				if err := json.Unmarshal(f.Data, &env); err != nil {
					t.Fatalf("envelope: %v", err)
				}
				seen[jobName([]byte(env.Data))] = true
				p.send(t, fmt.Sprintf(`{"ack":%d}`, env.ID))
			}
			if len(seen) != jobs {
				t.Fatalf("got %d distinct jobs of %d", len(seen), jobs)
			}
			if n := ts.slowConsumers.Load(); n != 0 {
				t.Fatalf("%d slow consumers closed", n)
			}
		})
	}
}

// A raw puller taken over while its frames wait to be written (it stopped
// reading) never writes them afterwards: each message reaches one puller,
// and the new puller's acks all succeed.
func TestTakeoverNeverDeliversTwice(t *testing.T) {
	// More than the kernel's socket buffers hold: A's writer blocks.
	ts := startServer(t, Options{OutgoingQueue: 16 << 20})
	const jobs = 16
	pushJobs(t, ts, "/handover", jobs, 512<<10)
	a := dialRaw(t, ts, "/pull/handover", 4096)
	waitFor(t, func() bool { q := ts.broker.Queues(); return len(q) == 1 && q[0].InFlight == jobs })
	time.Sleep(50 * time.Millisecond)
	if q := ts.broker.Queues(); q[0].InFlight < jobs/2 {
		t.Fatalf("A's writes were not held up: %+v", q)
	}

	b := ts.dialURL(t, client.URL(ts.ws, "pull", "/handover", url.Values{"envelope": {"1"}, "takeover": {"1"}}), nil)
	// A reads what it is still sent, until its connection is closed.
	gotA := map[string]bool{}
	for {
		data, err := a.readFrame(5 * time.Second)
		if err != nil {
			if _, ok := err.(errClosed); !ok {
				t.Fatalf("A: %v", err)
			}
			break
		}
		gotA[jobName(data)] = true
	}
	gotB := map[string]bool{}
	for {
		var f client.Frame
		select {
		case f = <-b.frames:
		case <-time.After(500 * time.Millisecond):
		}
		if f.Data == nil {
			if len(gotA)+len(gotB) < jobs {
				t.Fatalf("A got %d, B %d of %d", len(gotA), len(gotB), jobs)
			}
			break
		}
		var env struct {
			ID    uint64          `json:"id"`
			Data  string          `json:"data"`
			Error json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal(f.Data, &env); err != nil || env.Error != nil {
			t.Fatalf("B got %.200s (%v)", f.Data, err)
		}
		name := jobName([]byte(env.Data))
		if gotA[name] || gotB[name] {
			t.Fatalf("%s delivered twice (A got %d, B %d so far)", name, len(gotA), len(gotB))
		}
		gotB[name] = true
		b.send(t, fmt.Sprintf(`{"ack":%d}`, env.ID))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// A failed ack is answered with an error frame, in order: the first
	// error B gets must be the one for this probe, sent after every ack.
	if err := b.WriteText(ctx, `{"ack":999999}`); err != nil {
		t.Fatal(err)
	}
	var last struct{ Error apiError }
	if err := json.Unmarshal(b.next(t).Data, &last); err != nil || !strings.Contains(last.Error.Message, " 999999 ") {
		t.Fatalf("want only the probe's error, got %+v (%v)", last, err)
	}
	t.Logf("A got %d, B got %d", len(gotA), len(gotB))
	if q := ts.broker.Queues(); len(q) != 1 || q[0].Waiting != 0 || q[0].InFlight != 0 {
		t.Fatalf("queue after: %+v", q)
	}
}

// A raw puller that resets after reading some messages of a batch: what it
// got is settled (at most once), and only what was not written goes to the
// next puller.
func TestRawPullerResetMidBatchGetsNothingAgain(t *testing.T) {
	ts := startServer(t, Options{OutgoingQueue: 16 << 20})
	const jobs, size = 16, 512 << 10
	pushJobs(t, ts, "/reset", jobs, size)
	a := dialRaw(t, ts, "/pull/reset", 4096)
	gotA := map[string]bool{}
	for range 4 {
		data, err := a.readFrame(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		gotA[jobName(data)] = true
	}
	a.reset()
	ts.waitPullers(t, "/reset", 0)

	b := ts.dial(t, "pull", "/reset")
	gotB := 0
	for {
		select {
		case f := <-b.frames:
			if gotA[jobName(f.Data)] {
				t.Fatalf("%s, which A read, was delivered again", jobName(f.Data))
			}
			gotB++
			continue
		case <-time.After(time.Second):
		}
		break
	}
	t.Logf("A read %d, B got %d of %d", len(gotA), gotB, jobs)
	if gotB == 0 {
		t.Fatal("B got nothing: nothing A was sent went back")
	}
}

// A subscriber whose socket once filled (its frames went to the blocking
// writer) and then drained stays subscribed through a quiet time longer
// than the write timeout: the blocking write's deadline does not outlive
// it. No ping is involved.
func TestSubscriberOnceSlowThenQuietGetsTheNextMessage(t *testing.T) {
	const writeTimeout = 2 * time.Second
	ts := startServer(t, Options{WriteTimeout: writeTimeout, PingInterval: time.Hour, OutgoingQueue: 16 << 20})
	sub := dialRaw(t, ts, "/sub/slow", 4096)
	ts.waitSubscribed(t, 1)
	const burst = 12 // 6 MiB: more than the socket buffers hold
	big := strings.Repeat("x", 512<<10)
	for range burst {
		ts.broker.Publish(&broker.Message{Topic: "/slow", Payload: []byte(big)})
	}
	time.Sleep(100 * time.Millisecond) // the socket is full, the writer blocked
	for range burst {
		if _, err := sub.readFrame(5 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(2 * writeTimeout) // quiet
	ts.broker.Publish(&broker.Message{Topic: "/slow", Payload: []byte("after quiet")})
	data, err := sub.readFrame(5 * time.Second)
	if err != nil || string(data) != "after quiet" {
		t.Fatalf("after a quiet time: %q %v", data, err)
	}
}

// A frame the socket took only in part is finished before anything else
// goes out: a control frame the library writes meanwhile (a pong to the
// client's ping, here a ping) waits for it instead of landing inside it.
func TestControlFrameWaitsForAFrameCutShort(t *testing.T) {
	ts := startServer(t, Options{PingInterval: time.Hour, OutgoingQueue: 16 << 20})
	sub := dialRaw(t, ts, "/sub/cut", 4096)
	ts.waitSubscribed(t, 1)
	var once sync.Once
	controlWritten := make(chan error, 1)
	hook := func(c *conn) {
		once.Do(func() {
			go func() {
				_, err := c.wire.Write([]byte{0x89, 0}) // as the library writes its frames
				controlWritten <- err
			}()
			time.Sleep(100 * time.Millisecond) // the control frame's writer is under way
		})
	}
	frameCutShort.Store(&hook)
	t.Cleanup(func() { frameCutShort.Store(nil) })
	const burst = 8 // 4 MiB: more than the socket buffers hold
	payloads := make([]string, burst)
	for i := range payloads {
		payloads[i] = strings.Repeat(string(rune('a'+i)), 512<<10)
		ts.broker.Publish(&broker.Message{Topic: "/cut", Payload: []byte(payloads[i])})
	}
	for i, want := range payloads {
		data, err := sub.readFrame(10 * time.Second)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if string(data) != want {
			t.Fatalf("message %d differs from the one published (%d bytes of %q): a control frame was written inside it", i, len(want), want[:1])
		}
	}
	select {
	case err := <-controlWritten:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no write was cut short, or the control frame never went")
	}
}
