package test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/web/client"
)

// TestGoClientSubscribeDurableRestarts: client.Subscribe on a durable bus
// keeps every message, in order, once, while the broker is killed and
// restarted on the same data dir twice during a 2,000-message publish.
func TestGoClientSubscribeDurableRestarts(t *testing.T) {
	cfg := mercuryjsConfig(t, "")
	data := t.TempDir()
	b := startBroker(t, "--config", cfg, "--data-dir", data)
	server := b.WS

	var mu sync.Mutex
	var got [][2]uint64
	reconnects := 0
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	zero := uint64(0)
	go func() {
		done <- client.Subscribe(ctx, server, "/durable", &client.SubscribeOptions{
			Since: &zero, Backoff: 50 * time.Millisecond, MaxBackoff: time.Second,
			OnReconnect: func(error) { mu.Lock(); reconnects++; mu.Unlock() },
		}, func(m client.Envelope) error {
			var d struct{ I uint64 }
			json.Unmarshal(m.Data, &d)
			mu.Lock()
			got = append(got, [2]uint64{m.Seq, d.I})
			mu.Unlock()
			return nil
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != context.Canceled {
			t.Errorf("Subscribe returned %v", err)
		}
	}()

	var last uint64
	retries := 0
	for i := 0; i < 2000; i++ {
		switch i {
		case 600, 1300:
			b.signal(syscall.SIGKILL)
			<-b.done
			b = startBrokerOn(t, b.Listen, "--config", cfg, "--data-dir", data)
		}
		for {
			seq, err := client.Publish(context.Background(), server+"/pub/durable/x", []byte(fmt.Sprintf(`{"i":%d}`, i)), false, nil)
			if err == nil {
				last = seq
				break
			}
			retries++
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor(t, "every message", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) > 0 && got[len(got)-1][0] >= last
	})
	kept := replayDurable(t, b, last, nil)
	mu.Lock()
	defer mu.Unlock()
	checkReceivedKept(t, got, kept, 2000)
	if reconnects < 2 {
		t.Fatalf("%d reconnections", reconnects)
	}
	t.Logf("%d messages, %d reconnections, %d publishes retried", len(got), reconnects, retries)
}

// TestGoClientPull: client.Pull works 500 jobs, failing every tenth once;
// in the end each is done exactly once and the queue is empty.
func TestGoClientPull(t *testing.T) {
	b := startBroker(t, "--config", mercuryjsConfig(t, ""), "--data-dir", t.TempDir())
	for i := 0; i < 500; i++ {
		if _, err := client.Publish(context.Background(), b.HTTP+"/push/work", []byte(fmt.Sprintf(`{"i":%d}`, i)), false, nil); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	doneJobs := map[uint64]int{}
	nacked := 0
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan error, 1)
	go func() {
		ended <- client.Pull(ctx, b.WS, "/work", &client.PullOptions{Prefetch: 4}, func(job client.Envelope) error {
			var d struct{ I uint64 }
			json.Unmarshal(job.Data, &d)
			mu.Lock()
			defer mu.Unlock()
			if d.I%10 == 0 && job.Attempt == 1 {
				nacked++
				return fmt.Errorf("not now")
			}
			doneJobs[d.I]++
			return nil
		})
	}()
	waitFor(t, "500 jobs done", func() bool { mu.Lock(); defer mu.Unlock(); return len(doneJobs) == 500 })
	waitFor(t, "an empty queue", func() bool {
		var qs []map[string]any
		json.Unmarshal(get(t, b.HTTP+"/api/queues"), &qs)
		return len(qs) == 1 && qs[0]["waiting"] == 0.0 && qs[0]["in_flight"] == 0.0 && qs[0]["dead"] == 0.0
	})
	cancel()
	if err := <-ended; err != context.Canceled {
		t.Errorf("Pull returned %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, n := range doneJobs {
		if n != 1 {
			t.Fatalf("job %d done %d times", i, n)
		}
	}
	if nacked != 50 {
		t.Fatalf("%d nacked", nacked)
	}
}
