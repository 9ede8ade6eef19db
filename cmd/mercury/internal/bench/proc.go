package bench

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The server's cost is read from Linux's /proc, for a process and all its
// descendants (nginx's workers are children of its master; `go run`
// starts the broker as a child): CPU time from /proc/PID/stat, resident
// memory from /proc/PID/status, and the number of write system calls from
// /proc/PID/io (how well a server batches frames: loopback TCP charges
// most of a delivery's cost to the write that sends it).

// userHZ is the unit of the CPU times in /proc/PID/stat: USER_HZ, 100 on
// every Linux architecture Go runs on.
const userHZ = 100

// procSample is the cost of a process tree at one moment.
type procSample struct {
	cpu    time.Duration // user + system, all processes
	rss    int64         // bytes, all processes
	writes int64         // write system calls, all processes; -1: not readable
}

// pidList is a repeatable --pid flag that also takes comma-separated
// values.
type pidList []int

func (l *pidList) String() string {
	s := make([]string, len(*l))
	for i, p := range *l {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ",")
}

func (l *pidList) Set(v string) error {
	for f := range strings.SplitSeq(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := strconv.Atoi(f)
		if err != nil || p <= 0 {
			return fmt.Errorf("%q is not a process id", f)
		}
		*l = append(*l, p)
	}
	return nil
}

// sampleProcs returns the summed cost of pids and their descendants, each
// counted once.
func sampleProcs(pids []int) (procSample, error) {
	all, err := withDescendants(pids)
	if err != nil {
		return procSample{}, err
	}
	return sumProcs(all)
}

// sampleSelf returns the cost of this process alone (not of the baseline
// server it may have started).
func sampleSelf() (procSample, error) { return sumProcs([]int{os.Getpid()}) }

func sumProcs(all []int) (procSample, error) {
	var s procSample
	for _, p := range all {
		st, err := readProcStat(p)
		if err != nil {
			return procSample{}, err
		}
		rss, err := readRSS(p)
		if err != nil {
			return procSample{}, err
		}
		s.cpu += st.cpu
		s.rss += rss
		if w := readWriteCalls(p); w < 0 || s.writes < 0 {
			s.writes = -1
		} else {
			s.writes += w
		}
	}
	return s, nil
}

type procStat struct {
	ppid int
	cpu  time.Duration
}

// readProcStat reads the parent and CPU time of pid.
func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, fmt.Errorf("failed to read the CPU time of process %d: %w", pid, err)
	}
	return parseProcStat(b)
}

// parseProcStat parses a /proc/PID/stat line. The command name, in
// parentheses, may hold spaces and parentheses, so fields are counted
// from the last ')'.
func parseProcStat(b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("failed to parse /proc stat %q", b)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
	if len(f) < 13 {
		return procStat{}, fmt.Errorf("failed to parse /proc stat %q: too few fields", b)
	}
	ppid, err1 := strconv.Atoi(f[1])
	utime, err2 := strconv.ParseInt(f[11], 10, 64)
	stime, err3 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return procStat{}, fmt.Errorf("failed to parse /proc stat %q", b)
	}
	return procStat{ppid: ppid, cpu: time.Duration(utime+stime) * time.Second / userHZ}, nil
}

// readRSS reads the resident set size of pid (VmRSS), in bytes.
func readRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("failed to read the memory of process %d: %w", pid, err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("failed to parse VmRSS %q of process %d", v, pid)
			}
			return kb << 10, nil
		}
	}
	return 0, nil // a zombie has no VmRSS
}

// readWriteCalls reads how many write system calls pid made (syscw), or
// -1 when /proc/PID/io is not readable (another user's process).
func readWriteCalls(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return -1
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "syscw:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return -1
			}
			return n
		}
	}
	return -1
}

// withDescendants returns pids and every process below them, each once.
func withDescendants(pids []int) ([]int, error) {
	for _, p := range pids {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", p)); err != nil {
			return nil, fmt.Errorf("no process %d: %w", p, err)
		}
	}
	children := map[int][]int{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		st, err := readProcStat(pid)
		if err != nil {
			continue // it exited meanwhile
		}
		children[st.ppid] = append(children[st.ppid], pid)
	}
	seen := map[int]bool{}
	var all []int
	var walk func(int)
	walk = func(p int) {
		if seen[p] {
			return
		}
		seen[p] = true
		all = append(all, p)
		for _, c := range children[p] {
			walk(c)
		}
	}
	for _, p := range pids {
		walk(p)
	}
	return all, nil
}
