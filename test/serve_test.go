package test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/web/client"
)

func TestGracefulShutdown(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			b := startBroker(t)
			sub := dial(t, b.WS+"/sub/x", nil)
			nodeSub := startNodeClient(t, b.WS+"/sub/x")
			nodeSub.waitOpen(t)

			// An HTTP request in flight: headers sent, body still coming.
			conn, err := net.Dial("tcp", b.Listen)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "POST /pub/x HTTP/1.1\r\nHost: %s\r\nContent-Length: 8\r\n\r\nhalf", b.Listen)
			time.Sleep(100 * time.Millisecond)

			b.signal(sig)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := sub.Read(ctx); client.CloseStatus(err) != 1001 || client.CloseReason(err) != "going away" {
				t.Fatalf("Go subscriber: %v, want 1001 going away", err)
			}
			if ev := nodeSub.next(t); ev.Close == nil || ev.Close.Code != 1001 {
				t.Fatalf("node subscriber: %+v, want close 1001", ev)
			}
			// The request in flight still completes.
			fmt.Fprint(conn, "done")
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(bufioReader(conn), nil)
			if err != nil {
				t.Fatalf("in-flight POST: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("in-flight POST = %d", resp.StatusCode)
			}
			if code := b.wait(t); code != 0 {
				t.Fatalf("exit code %d, want 0", code)
			}
			// Nothing listens any more.
			if _, err := net.DialTimeout("tcp", b.Listen, time.Second); err == nil {
				t.Fatal("still accepting connections after shutdown")
			}
		})
	}
}

func TestServeNeedsNoFiles(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(mercuryBin, "serve", "--listen", "127.0.0.1:0")
	cmd.Dir = dir
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Other lines (the connection capacity) may come first.
	lines := bufio.NewReader(stderr)
	var printed strings.Builder
	for !strings.Contains(printed.String(), "mercury listening") {
		line, err := lines.ReadString('\n')
		printed.WriteString(line)
		if err != nil {
			t.Fatalf("serve printed %q before %v", printed.String(), err)
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	io.Copy(io.Discard, lines)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve exited with %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Fatalf("serve with no config wrote %d files into its directory", len(entries))
	}
}

func TestVersion(t *testing.T) {
	out, err := exec.Command(mercuryBin, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "mercury ") {
		t.Fatalf("mercury version: %q %v", out, err)
	}
}

func TestDefaultListenIsLoopback3000(t *testing.T) {
	out, _ := exec.Command(mercuryBin, "serve", "--help").CombinedOutput()
	if !strings.Contains(string(out), `(default 127.0.0.1:3000)`) {
		t.Fatalf("serve --help does not show the default listen address:\n%s", out)
	}
}
