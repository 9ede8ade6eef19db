package web

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/test/syncbuf"
	"github.com/mercury-broker/mercury/web/client"
)

// The queue model against the built `mercury serve`: one broker killed
// with SIGKILL at each restart (-model.binary), or a cluster of brokers on
// NATS JetStream, one of them killed at each restart (-model.cluster=N).
var (
	modelBinaryFlag  = flag.Bool("model.binary", os.Getenv("MERCURY_MODEL_BINARY") != "", "run the queue model against the built mercury serve, restarts by SIGKILL")
	modelClusterFlag = flag.Int("model.cluster", 0, "run the queue model against this many mercury serve brokers on NATS (-model.nats)")
	modelNATSFlag    = flag.String("model.nats", "nats://127.0.0.1:4222", "the NATS servers of -model.cluster")
	modelLogsFlag    = flag.String("model.logs", "", "keep each mercury serve's log in a file of this directory")
)

// modelConfig is the queue policy of modelPolicies, as a config file.
var modelConfig = fmt.Sprintf(`
buses:
  /mq:
    durable: true
    queue: {max_attempts: %d, ack_timeout: %s, ttl: %s}
`, modelMaxAttempts, modelAckTimeout, modelTTL)

var modelBin string // the built mercury, when a run needs it

// buildModelBinary builds cmd/mercury into dir, as test/ does.
func buildModelBinary(t *testing.T) {
	modelBin = filepath.Join(t.TempDir(), "mercury")
	args := []string{"build", "-o", modelBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "../cmd/mercury")...)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("failed to build mercury: %v\n%s", err, out)
	}
}

var modelClusterNames struct {
	sync.Mutex
	n int
}

// startQueueSystem starts what the flags ask for, with its data in dir.
func startQueueSystem(dir string, seed uint64) (queueSystem, error) {
	if !*modelBinaryFlag && *modelClusterFlag == 0 {
		policies, err := modelPolicies()
		if err != nil {
			return nil, err
		}
		return startModelSystem(dir, policies)
	}
	cfg := filepath.Join(dir, "mercury.yaml")
	if err := os.WriteFile(cfg, []byte(modelConfig), 0o600); err != nil {
		return nil, err
	}
	sys := &procSystem{rng: rand.New(rand.NewPCG(seed, 2))}
	n := 1
	var args [][]string
	if *modelClusterFlag > 0 {
		n = *modelClusterFlag
		modelClusterNames.Lock()
		modelClusterNames.n++
		name := fmt.Sprintf("model-%d-%d", os.Getpid()%100000, modelClusterNames.n)
		modelClusterNames.Unlock()
		for range n {
			args = append(args, []string{"--config", cfg, "--cluster", *modelNATSFlag, "--cluster-name", name})
		}
	} else {
		args = append(args, []string{"--config", cfg, "--data-dir", filepath.Join(dir, "data")})
	}
	for _, a := range args {
		p, err := startProc(a)
		if err != nil {
			sys.close()
			return nil, err
		}
		sys.procs = append(sys.procs, p)
	}
	return sys, nil
}

// procSystem is brokers run as processes.
type procSystem struct {
	rng   *rand.Rand
	procs []*modelProc
}

func (sys *procSystem) wsURL(pattern, topic string, q url.Values) (string, int) {
	i := sys.rng.IntN(len(sys.procs))
	return client.URL("ws"+strings.TrimPrefix(sys.procs[i].base, "http"), pattern, topic, q), i
}

func (sys *procSystem) httpBase() string { return sys.procs[sys.rng.IntN(len(sys.procs))].base }

// restart kills one broker with SIGKILL and starts it again.
func (sys *procSystem) restart() (int, error) {
	i := sys.rng.IntN(len(sys.procs))
	p := sys.procs[i]
	p.kill()
	np, err := startProc(p.args)
	if err != nil {
		return i, fmt.Errorf("%w\nlogs before:\n%s", err, p.logs.String())
	}
	sys.procs[i] = np
	return i, nil
}

func (sys *procSystem) close() error {
	for _, p := range sys.procs {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			p.kill()
		}
	}
	return nil
}

// modelProc is one `mercury serve`.
type modelProc struct {
	args []string
	cmd  *exec.Cmd
	logs *syncbuf.Buffer
	done chan struct{}
	base string
}

var modelListeningRE = regexp.MustCompile(`msg="mercury listening" addr=http://([0-9.:]+)`)

func startProc(args []string) (*modelProc, error) {
	p := &modelProc{args: args, logs: &syncbuf.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.CommandContext(context.Background(), modelBin, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
	var out io.Writer = p.logs
	var file *os.File
	if *modelLogsFlag != "" {
		var err error
		if file, err = os.CreateTemp(*modelLogsFlag, "mercury-*.log"); err != nil {
			return nil, err
		}
		out = io.MultiWriter(p.logs, file)
	}
	p.cmd.Stdout, p.cmd.Stderr = out, out
	if err := p.cmd.Start(); err != nil {
		if file != nil {
			file.Close()
		}
		return nil, err
	}
	go func() {
		p.cmd.Wait()
		if file != nil {
			file.Close()
		}
		close(p.done)
	}()
	deadline := time.After(20 * time.Second)
	for {
		if m := modelListeningRE.FindStringSubmatch(p.logs.String()); m != nil {
			p.base = "http://" + m[1]
			return p, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("mercury exited before listening:\n%s", p.logs.String())
		case <-deadline:
			p.kill()
			return nil, fmt.Errorf("mercury not listening after 20s:\n%s", p.logs.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (p *modelProc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}
