package natstest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// BinEnv names the environment variable that selects a nats-server binary
// to run instead of the embedded server.
const BinEnv = "MERCURY_TEST_NATS_BIN"

// binary returns the nats-server binary the tests are to run, or "" for
// the embedded server. A binary asked for and missing fails the test: a
// run meant to cover the installed NATS must not pass without it.
func binary(t testing.TB) string {
	t.Helper()
	bin := os.Getenv(BinEnv)
	if bin == "" {
		return ""
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		t.Fatalf("%s=%s: no such nats-server (Debian: apt-get install nats-server): %v", BinEnv, bin, err)
	}
	return path
}

// Binary returns the nats-server binary the cluster runs, or "" when its
// servers are embedded.
func (c *Cluster) Binary() string { return c.bin }

// process is one nats-server process.
type process struct {
	cmd  *exec.Cmd
	url  string
	log  string
	done chan struct{} // closed when the process has exited
}

// startProcess starts bin with the settings of o: the same ports, store
// and routes as the embedded server would have.
func startProcess(t testing.TB, bin string, o *server.Options) *process {
	t.Helper()
	var routes []string
	for _, r := range o.Routes {
		routes = append(routes, r.String())
	}
	logFile := o.StoreDir + ".log"
	args := []string{
		"-a", o.Host, "-p", fmt.Sprint(o.Port), "-n", o.ServerName,
		"-js", "-sd", o.StoreDir, "-l", logFile,
		"--cluster_name", o.Cluster.Name,
		"--cluster", fmt.Sprintf("nats://%s:%d", o.Cluster.Host, o.Cluster.Port),
		"--routes", strings.Join(routes, ","),
		"--no_advertise=true",
	}
	if err := os.MkdirAll(filepath.Dir(o.StoreDir), 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	// The server goes with the test binary, however that ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("failed to start %s: %v", bin, err)
	}
	pr := &process{cmd: cmd, url: fmt.Sprintf("nats://%s:%d", o.Host, o.Port), log: logFile, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(pr.done)
	}()
	return pr
}

// ready waits up to within for the server to take a client.
func (pr *process) ready(within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		select {
		case <-pr.done:
			return false
		default:
		}
		if nc, err := nats.Connect(pr.url, nats.Timeout(time.Second)); err == nil {
			nc.Close()
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// stop shuts the server down as a node stop does (SIGTERM), killing it
// if it takes too long.
func (pr *process) stop() {
	pr.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-pr.done:
	case <-time.After(15 * time.Second):
		pr.cmd.Process.Kill()
		<-pr.done
	}
}

// tail returns the end of the server's log.
func (pr *process) tail() string {
	b, _ := os.ReadFile(pr.log)
	return string(b[max(0, len(b)-4096):])
}
