package test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// readRSS reads a process's resident memory in bytes (VmRSS in
// /proc/PID/status).
func readRSS(pid int) (int64, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for process %d", pid)
}

// 640 one-megabyte messages pushed at a queue with no puller: the broker
// holds the queue's max_bytes (64 MiB by default) and pauses the pusher
// (its socket is not read), an HTTP push gets 503 naming the limit; once
// a puller drains the queue the pusher resumes and every message arrives.
func TestPushedMegabytesStayBounded(t *testing.T) {
	const size = 1 << 20
	n, args, limit := 640, []string{"--max-message-size", "2MiB"}, "queue.max_bytes"
	if raceEnabled {
		// Under the race detector a megabyte costs some 30 times as much
		// CPU: the broker's memory budget is the bound instead, smaller.
		n, args, limit = 40, append(args, "--max-memory", "16MiB"), "max_memory"
	}
	b := startBroker(t, args...)
	pid := b.cmd.Process.Pid
	start, err := readRSS(pid)
	if err != nil {
		t.Fatal(err)
	}
	var peak atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if rss, err := readRSS(pid); err == nil && rss > peak.Load() {
				peak.Store(rss)
			}
		}
	}()
	defer func() { close(stop); <-sampled }()

	payload := func(i int) string {
		head := fmt.Sprintf("%06d:", i)
		return head + strings.Repeat("x", size-len(head))
	}
	pusher := dial(t, b.WS+"/push/mem", nil)
	var sent atomic.Int64
	pushed := make(chan error, 1)
	go func() {
		for i := range n {
			if err := pusher.WriteText(context.Background(), payload(i)); err != nil {
				pushed <- fmt.Errorf("write %d: %w", i, err)
				return
			}
			sent.Add(1)
		}
		pushed <- nil
	}()

	// The queue fills to its byte limit and the pusher stops getting
	// through: nothing more is read from its socket.
	type queueInfo struct {
		Topic        string `json:"topic"`
		Waiting      int    `json:"waiting"`
		WaitingBytes int64  `json:"waiting_bytes"`
		MaxBytes     int64  `json:"max_bytes"`
		Bytes        int64  `json:"bytes"`
	}
	queue := func() queueInfo {
		resp := getURL(t, b.HTTP+"/api/queues")
		var qs []queueInfo
		if err := json.Unmarshal(resp, &qs); err != nil || len(qs) > 1 {
			t.Fatalf("GET /api/queues: %s (%v)", resp, err)
		}
		if len(qs) == 0 {
			return queueInfo{} // the first message is still on its way
		}
		return qs[0]
	}
	full := time.Now().Add(time.Minute) // 64 MiB, slower under the race detector
	q := queue()
	atLimit := func(q queueInfo) bool {
		if raceEnabled {
			return q.Bytes+size+256 > 16<<20
		}
		return q.WaitingBytes+size+256 > q.MaxBytes
	}
	for q.Waiting == 0 || !atLimit(q) {
		if time.Now().After(full) {
			t.Fatalf("the queue did not reach its byte limit within a minute: %+v, %d written", q, sent.Load())
		}
		time.Sleep(20 * time.Millisecond)
		q = queue()
	}
	time.Sleep(time.Second)
	if again := queue(); again.Waiting != q.Waiting || sent.Load() >= int64(n) {
		t.Fatalf("the pusher was not paused: %d waiting, then %d; %d of %d written", q.Waiting, again.Waiting, sent.Load(), n)
	}
	resp := post(t, b.HTTP+"/push/mem", payload(-1))
	if resp.Status != 503 || !strings.Contains(string(resp.Body), `"code":"queue_full"`) || !strings.Contains(string(resp.Body), limit) {
		t.Fatalf("HTTP push at the limit: %d %s, want 503 queue_full naming %s", resp.Status, resp.Body, limit)
	}

	// A puller drains it; the pusher resumes; every message arrives, once
	// and in order.
	puller := dial(t, b.WS+"/pull/mem", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for i := range n {
		f, err := puller.Read(ctx)
		if err != nil {
			t.Fatalf("after %d of %d messages: %v", i, n, err)
		}
		if want := fmt.Sprintf("%06d:", i); len(f.Data) != size || string(f.Data[:len(want)]) != want {
			t.Fatalf("message %d: got %d bytes starting %q", i, len(f.Data), f.Data[:min(len(f.Data), 7)])
		}
	}
	if err := <-pushed; err != nil {
		t.Fatal(err)
	}
	grown := peak.Load() - start
	t.Logf("broker RSS: %d MiB at the start, %d MiB at the peak (%d MiB pushed)", start>>20, peak.Load()>>20, n*size>>20)
	if limit := int64(300 << 20); grown >= limit && !raceEnabled {
		// The race detector's shadow memory multiplies what the heap
		// costs: the bound is for the real binary.
		t.Fatalf("broker RSS grew by %d MiB, want under %d MiB", grown>>20, limit>>20)
	}
}

func getURL(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s (%v)", url, resp.StatusCode, body, err)
	}
	return body
}
