package test

import (
	"context"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/test/syncbuf"
)

// runServeBriefly runs mercury serve with args, for a start that must
// fail: a broker still running after 10 s is stopped (exit -1).
func runServeBriefly(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, mercuryBin, append([]string{"serve"}, args...)...)
	var out, errb syncbuf.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Run()
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// TestPprofExposureAndSecrets: --pprof follows --listen's exposure rule
// and, with auth configured, needs admin on everything; the Host check
// covers it; a PostgreSQL password is refused on the command line, where
// every user of the machine could read it.
func TestPprofExposureAndSecrets(t *testing.T) {
	_, stderr, code := runServeBriefly(t, "--listen", "127.0.0.1:0", "--pprof", "0.0.0.0:0")
	if code != 2 || !strings.Contains(stderr, "--pprof") || !strings.Contains(stderr, "without authentication") {
		t.Errorf("--pprof on every interface without auth: exit %d, %s", code, stderr)
	}

	const password = "s3cret-pw"
	_, stderr, code = runServeBriefly(t, "--listen", "127.0.0.1:0", "--minion-pg", "postgres://minion:"+password+"@127.0.0.1/minion")
	if code != 2 || !strings.Contains(stderr, "--minion-pg holds a password") || strings.Contains(stderr, password) {
		t.Errorf("--minion-pg with a password: exit %d, %s", code, stderr)
	}

	_, stderr, code = runMercury(t, "bridge", "minion", "status", "--pg", "postgres://minion:"+password+"@127.0.0.1/minion")
	if code != 2 || !strings.Contains(stderr, "--pg holds a password") || strings.Contains(stderr, password) {
		t.Errorf("bridge --pg with a password: exit %d, %s", code, stderr)
	}

	pprof := freePort(t)
	ab := startAuthBroker(t, "--pprof", pprof)
	get := func(pprof, host, key string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+pprof+"/debug/pprof/cmdline", nil)
		if host != "" {
			req.Host = host
		}
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(pprof, "", ""); code != http.StatusUnauthorized {
		t.Errorf("profiler without a credential: %d %s", code, body)
	}
	if code, body := get(pprof, "", ab.apiKey); code != http.StatusOK || !strings.Contains(body, "--pprof") {
		t.Errorf("profiler with an admin key: %d %s", code, body)
	}

	// Without auth, on loopback: open, but only by a loopback name.
	local := freePort(t)
	startBroker(t, "--pprof", local)
	if code, body := get(local, "", ""); code != http.StatusOK {
		t.Errorf("profiler on loopback without auth: %d %s", code, body)
	}
	if code, body := get(local, "rebind.attacker.test:6060", ""); code != http.StatusMisdirectedRequest {
		t.Errorf("profiler by a rebound name: %d %s", code, body)
	}
}
