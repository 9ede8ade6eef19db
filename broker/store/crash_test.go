package store

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The crash test re-executes the test binary as a writer (see TestMain):
// crashChildEnv names the engine, crashDirEnv the store's directory and
// crashRoundEnv the round, which goes into every key.
const (
	crashChildEnv = "MERCURY_STORE_CRASH_ENGINE"
	crashDirEnv   = "MERCURY_STORE_CRASH_DIR"
	crashRoundEnv = "MERCURY_STORE_CRASH_ROUND"
)

const (
	crashCommitters = 8 // writers through a Committer (synced)
	crashRounds     = 4
	crashSyncEvery  = 10
)

// crashKey is the key of batch i of writer w in round r; each batch writes
// it with the suffixes /a and /b. Writer crashCommitters writes with Apply
// itself, synced every crashSyncEvery batches: its unsynced batches may be
// lost, but a synced one makes them durable.
func crashKey(r, w, i int) string { return fmt.Sprintf("c/%d/%02d/%08d", r, w, i) }

func crashValue(key string) []byte { return bytes.Repeat([]byte(key), 8) }

// testCrash kills a writing process with SIGKILL at random moments and
// checks after each that every batch it was told was durable survived,
// whole, and that each writer's batches survived as an unbroken prefix.
func testCrash(t *testing.T, e engine) {
	dir := t.TempDir()
	// {round, writer} → batches that must survive: for the committing
	// writers every batch acknowledged, for the Apply writer every batch
	// up to the last synced one acknowledged.
	acked := map[[2]int]int{}
	var last [crashCommitters + 1]int // batches acknowledged, per writer
	for r := range crashRounds {
		killAfter := 20 + rand.IntN(400) // acknowledgements before SIGKILL
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+e.name, crashDirEnv+"="+dir, crashRoundEnv+"="+strconv.Itoa(r))
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		n := 0
		last = [crashCommitters + 1]int{}
		for sc.Scan() {
			var w, i int
			var synced bool
			if _, err := fmt.Sscanf(sc.Text(), "ack %d %d %t", &w, &i, &synced); err != nil || w < 0 || w > crashCommitters {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("round %d: writer said %q", r, sc.Text())
			}
			if i != last[w] {
				t.Errorf("round %d: writer %d acknowledged batch %d out of order", r, w, i)
			}
			last[w] = i + 1
			if synced {
				acked[[2]int{r, w}] = i + 1
			}
			if n++; n == killAfter {
				if err := cmd.Process.Kill(); err != nil {
					t.Fatal(err)
				}
			}
		}
		// Lines written before the kill are still read to the end.
		if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
			t.Fatalf("round %d: writer ended with %v before it was killed (%d acks)", r, err, n)
		}
		t.Logf("round %d: killed after %d acknowledgements", r, n)
		checkCrashed(t, e, dir, r, acked)
	}
}

// checkCrashed reopens the store after round r and checks every round so
// far.
func checkCrashed(t *testing.T, e engine, dir string, round int, acked map[[2]int]int) {
	t.Helper()
	kv, err := e.open(dir)
	if err != nil {
		t.Fatalf("round %d: reopen after SIGKILL: %v", round, err)
	}
	defer kv.Close()
	for r := 0; r <= round; r++ {
		for w := 0; w <= crashCommitters; w++ {
			// Everything acknowledged durable is there; past that, what is there
			// is a prefix of the writer's batches, each one whole.
			want := acked[[2]int{r, w}]
			found := 0
			for i := 0; ; i++ {
				k := crashKey(r, w, i)
				a, okA, errA := kv.Get([]byte(k + "/a"))
				b, okB, errB := kv.Get([]byte(k + "/b"))
				if errA != nil || errB != nil {
					t.Fatalf("round %d: get %s: %v %v", round, k, errA, errB)
				}
				if okA != okB {
					t.Errorf("round %d: batch %s survived in part (a %v, b %v)", round, k, okA, okB)
				}
				if !okA && !okB {
					break
				}
				if !bytes.Equal(a, crashValue(k)) || !bytes.Equal(b, crashValue(k)) {
					t.Errorf("round %d: batch %s has wrong values", round, k)
				}
				found++
			}
			if found < want {
				t.Errorf("after round %d: writer %d of round %d: %d batches acknowledged durable, only %d survived", round, w, r, want, found)
			}
			// No batch past a missing one.
			n := 0
			kv.Scan(fmt.Appendf(nil, "c/%d/%02d/", r, w), nil, func(_, _ []byte) bool { n++; return true })
			if n != 2*found {
				t.Errorf("after round %d: writer %d of round %d has %d keys, want %d (batches 0..%d)", round, w, r, n, 2*found, found-1)
			}
		}
	}
}

// crashChild is the writer process of testCrash: it writes batches from
// several goroutines and prints "ack W I" once batch I of writer W is
// written, until it is killed. It gives up on its own after a minute so
// that it can never outlive a failed test for long.
func crashChild() {
	e, ok := engineByName(os.Getenv(crashChildEnv))
	round, err := strconv.Atoi(os.Getenv(crashRoundEnv))
	if !ok || err != nil {
		fmt.Println("error: bad crash test environment")
		os.Exit(2)
	}
	kv, err := e.open(os.Getenv(crashDirEnv))
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(2)
	}
	c := NewCommitter(kv)
	var mu sync.Mutex // one whole line per write
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(os.Stdout, format, args...)
	}
	// commit writes batch i and reports whether it is durable.
	write := func(w int, commit func(i int, ops []Op) (bool, error)) {
		for i := 0; ; i++ {
			k := crashKey(round, w, i)
			v := crashValue(k)
			synced, err := commit(i, []Op{{Key: []byte(k + "/a"), Value: v}, {Key: []byte(k + "/b"), Value: v}})
			if err != nil {
				say("error: %v\n", err)
				os.Exit(2)
			}
			say("ack %d %d %t\n", w, i, synced)
		}
	}
	for w := range crashCommitters {
		go write(w, func(_ int, ops []Op) (bool, error) { return true, c.Commit(ops) })
	}
	go write(crashCommitters, func(i int, ops []Op) (bool, error) {
		sync := i%crashSyncEvery == crashSyncEvery-1
		return sync, kv.Apply(ops, sync)
	})
	time.Sleep(time.Minute)
	fmt.Println("error: not killed within a minute")
	os.Exit(2)
}
