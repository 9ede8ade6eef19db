package web

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/broker"
)

func TestEmptyFrameFloodClosesStalledSubscribers(t *testing.T) {
	// Small buffers, so that the queue's limit is reached soon: empty
	// frames must count against it.
	ts := startServer(t, Options{SocketSendBuffer: 4096, OutgoingQueue: 64 << 10})
	ctx := context.Background()
	const stalled = 20
	for range stalled {
		stalledSubscriber(t, ts.http.Listener.Addr().String(), "/empty")
	}
	ts.waitSubscribed(t, stalled)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 10 {
		pub := ts.dial(t, "pub", "/empty")
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if pub.WriteText(ctx, "") != nil {
					return
				}
			}
		})
	}
	defer func() { close(stop); wg.Wait() }()

	// An empty frame costs memory to queue like any other: the queue's
	// limit closes every stalled subscriber before the heap grows far.
	const heapBound = 200 << 20
	var ms runtime.MemStats
	deadline := time.Now().Add(30 * time.Second)
	for ts.SlowConsumers() < stalled {
		runtime.ReadMemStats(&ms)
		if ms.HeapAlloc > heapBound {
			t.Fatalf("heap at %d MiB with %d of %d stalled subscribers closed", ms.HeapAlloc>>20, ts.SlowConsumers(), stalled)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d stalled subscribers closed after 30s (heap %d MiB)", ts.SlowConsumers(), stalled, ms.HeapAlloc>>20)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tcpMemPages is the kernel's TCP memory in pages, from /proc/net/sockstat.
func tcpMemPages(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/net/sockstat")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "TCP:"); ok {
			f := strings.Fields(rest)
			for i := 0; i+1 < len(f); i++ {
				if f[i] == "mem" {
					n, _ := strconv.Atoi(f[i+1])
					return n
				}
			}
		}
	}
	t.Fatal("no TCP mem in /proc/net/sockstat")
	return 0
}

// sendQueued sums the bytes the kernel holds to send on the sockets of
// local port port (/proc/net/tcp's tx_queue), closing ones included.
func sendQueued(t *testing.T, port int) (bytes, sockets int) {
	t.Helper()
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(":%04X", port)
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 5 || !strings.HasSuffix(f[1], want) || f[3] == "0A" { // 0A: the listener
			continue
		}
		tx, _, _ := strings.Cut(f[4], ":")
		n, _ := strconv.ParseInt(tx, 16, 64)
		bytes += int(n)
		sockets++
	}
	return bytes, sockets
}

// stalledSubscriber opens /sub/topic with a small receive buffer, and
// never reads past the handshake: a WebSocket, or with header, what it
// says.
func stalledSubscriber(t *testing.T, addr, topic string, header ...string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return serr
	}}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	if header == nil {
		header = []string{"Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"}
	}
	fmt.Fprintf(nc, "GET /sub%s HTTP/1.1\r\nHost: %s\r\n%s\r\n\r\n", topic, addr, strings.Join(header, "\r\n"))
	r := bufio.NewReaderSize(nc, 16) // reads no further than the handshake, give or take
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		if line == "\r\n" {
			return nc
		}
	}
}

func TestStalledSubscribersReleaseKernelMemory(t *testing.T) {
	ts := startServer(t, Options{})
	addr := ts.http.Listener.Addr().(*net.TCPAddr)
	before := tcpMemPages(t)
	const stalled = 200
	for range stalled {
		stalledSubscriber(t, addr.String(), "/big")
	}
	ts.waitSubscribed(t, stalled)

	pub := ts.dial(t, "pub", "/big")
	msg := make([]byte, 64<<10)
	for ts.SlowConsumers() < stalled {
		if err := pub.WriteBinary(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
	}
	peak := tcpMemPages(t)
	// The stalled clients still hold their sockets (and what little their
	// receive buffers took): what the broker's side held must be gone.
	deadline := time.Now().Add(15 * time.Second)
	for {
		queued, sockets := sendQueued(t, addr.Port)
		now := tcpMemPages(t)
		if queued == 0 && now < before+stalled*4 { // 16 KiB a client's socket
			t.Logf("TCP memory: %d pages before, %d at the last slow consumer, %d now; %d broker sockets left", before, peak, now, sockets)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("15s after the last slow consumer: %d bytes still queued on %d broker sockets; TCP memory %d pages (%d before, %d at the peak)",
				queued, sockets, now, before, peak)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestEventStreamSocketSendBufferIsCapped(t *testing.T) {
	s, err := New(broker.New(broker.Options{}), Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 1)
	hs := httptest.NewUnstartedServer(s)
	hs.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		accepted <- c
		return s.ConnContext(ctx, c)
	}
	hs.Start()
	defer hs.Close()
	defer s.Shutdown(context.Background())

	stalledSubscriber(t, hs.Listener.Addr().String(), "/sse", "Accept: text/event-stream")
	c := <-accepted
	var sndbuf int
	raw, _ := c.(*net.TCPConn).SyscallConn()
	raw.Control(func(fd uintptr) { sndbuf, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF) })
	if sndbuf != 2*DefaultSocketSendBuf { // Linux reserves twice what is asked
		t.Fatalf("SO_SNDBUF of an event stream's socket is %d, want %d", sndbuf, 2*DefaultSocketSendBuf)
	}
}
