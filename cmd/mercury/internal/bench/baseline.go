package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"

	"github.com/mercury-broker/mercury/cmd/mercury/internal/command"
)

// The baseline is the reference Mercury is measured against: the least a
// broadcast server on the same WebSocket library does, written the way the
// library's documentation shows (a buffered channel and a writer per
// subscriber, a per-write timeout, CloseRead to keep control frames
// flowing). WebSocket on /sub/T and /pub/T, POST on /pub/T; a published
// frame goes to every subscriber of exactly T; nothing else: no
// hierarchy, no validation, no sequence numbers. It runs as a child
// process (`mercury bench baseline-server`) so that its CPU time is its own.

// baselineQueue is how many frames wait for one baseline subscriber before
// it is closed as too slow: half a second of a 2,000 msg/s load. (The
// library's chat example keeps 16, which would drop subscribers under the
// bench's loads.)
const baselineQueue = 1024

// baselineMaxMessage is the largest frame the baseline takes, as Mercury's
// default.
const baselineMaxMessage = 1 << 20

type baselineServer struct {
	mu     sync.Mutex
	topics map[string]map[*baselineSub]struct{}
}

type baselineSub struct {
	frames   chan baselineFrame
	tooSlow  func()
	slowOnce sync.Once
}

type baselineFrame struct {
	typ  websocket.MessageType
	data []byte
}

func newBaselineServer() *baselineServer {
	return &baselineServer{topics: make(map[string]map[*baselineSub]struct{})}
}

func (s *baselineServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	pattern, topic, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if topic == "" {
		http.NotFound(w, r)
		return
	}
	switch {
	case pattern == "sub" && r.Method == http.MethodGet:
		s.subscribe(w, r, topic)
	case pattern == "pub" && r.Method == http.MethodGet:
		s.publishWS(w, r, topic)
	case pattern == "pub" && r.Method == http.MethodPost:
		s.publishPOST(w, r, topic)
	default:
		http.NotFound(w, r)
	}
}

func (s *baselineServer) subscribe(w http.ResponseWriter, r *http.Request, topic string) {
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer ws.CloseNow()
	sub := &baselineSub{
		frames:  make(chan baselineFrame, baselineQueue),
		tooSlow: func() { ws.Close(websocket.StatusPolicyViolation, "slow consumer") },
	}
	s.add(topic, sub)
	defer s.remove(topic, sub)

	ctx := ws.CloseRead(r.Context())
	for {
		select {
		case f := <-sub.frames:
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := ws.Write(wctx, f.typ, f.data)
			cancel()
			if err != nil {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

func (s *baselineServer) publishWS(w http.ResponseWriter, r *http.Request, topic string) {
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer ws.CloseNow()
	ws.SetReadLimit(baselineMaxMessage)
	for {
		typ, data, err := ws.Read(r.Context())
		if err != nil {
			return
		}
		s.publish(topic, baselineFrame{typ: typ, data: data})
	}
}

func (s *baselineServer) publishPOST(w http.ResponseWriter, r *http.Request, topic string) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, baselineMaxMessage))
	if err != nil {
		http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
		return
	}
	s.publish(topic, baselineFrame{typ: websocket.MessageText, data: data})
}

// publish queues f for every subscriber of topic; one whose queue is full
// is closed.
func (s *baselineServer) publish(topic string, f baselineFrame) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for sub := range s.topics[topic] {
		select {
		case sub.frames <- f:
		default:
			sub.slowOnce.Do(func() { go sub.tooSlow() })
		}
	}
}

func (s *baselineServer) add(topic string, sub *baselineSub) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.topics[topic] == nil {
		s.topics[topic] = make(map[*baselineSub]struct{})
	}
	s.topics[topic][sub] = struct{}{}
}

func (s *baselineServer) remove(topic string, sub *baselineSub) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.topics[topic], sub)
	if len(s.topics[topic]) == 0 {
		delete(s.topics, topic)
	}
}

// baselineReady is the line the baseline server prints once it listens.
const baselineReady = "baseline listening on http://"

// runBaselineServer serves the baseline until SIGINT, SIGTERM or ctx ends.
func runBaselineServer(ctx context.Context, args []string, io command.Stdio) error {
	fs := command.NewFlagSet("bench baseline-server", "[flags]",
		"mercury bench baseline-server --listen 127.0.0.1:0")
	listen := fs.String("listen", "127.0.0.1:0", "`HOST:PORT` to listen on (port 0: any free port)")
	if err := command.ParseFlags(fs, args, io); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("failed to listen: %w", err)
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	hs := &http.Server{Handler: newBaselineServer(), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(io.Out, "%s%s\n", baselineReady, ln.Addr())
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("baseline server stopped: %w", err)
	case <-ctx.Done():
	}
	hs.Close() // hijacked WebSockets end with the process
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// baselineProc is a baseline server running as a child process.
type baselineProc struct {
	cmd  *exec.Cmd
	url  string // ws://host:port
	done chan struct{}
}

// startBaseline runs `mercury bench baseline-server` on a free loopback
// port and waits until it listens.
func startBaseline(stderr io.Writer) (*baselineProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("failed to find the mercury binary for the baseline: %w", err)
	}
	cmd := exec.Command(exe, "bench", "baseline-server", "--listen", "127.0.0.1:0")
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("failed to start the baseline server: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("failed to start the baseline server: %w", err)
	}
	p := &baselineProc{cmd: cmd, done: make(chan struct{})}
	ready := make(chan string, 1)
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if addr, ok := strings.CutPrefix(sc.Text(), baselineReady); ok {
				ready <- addr
			}
		}
		cmd.Wait()
	}()
	select {
	case addr := <-ready:
		p.url = "ws://" + addr
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("the baseline server exited before listening: %v", cmd.ProcessState)
	case <-time.After(10 * time.Second):
		p.stop()
		return nil, errors.New("the baseline server did not listen within 10s")
	}
}

func (p *baselineProc) pid() int { return p.cmd.Process.Pid }

// stop ends the baseline server and waits for it.
func (p *baselineProc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}
