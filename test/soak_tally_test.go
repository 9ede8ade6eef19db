package test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// soakTally is what one soak client received: the numbers of the messages
// in the order they arrived, the connections it opened, and anything that
// went wrong (a close, an error, a frame it did not expect).
type soakTally struct {
	kind string

	mu       sync.Mutex
	got      []int
	opens    int
	problems []string
}

func newSoakTally(kind string) *soakTally { return &soakTally{kind: kind} }

func (s *soakTally) add(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, n)
}

// addPayload records a message whose payload is {"n":N}.
func (s *soakTally) addPayload(p []byte) {
	n, err := soakNumber(p)
	if err != nil {
		s.problem("%v", err)
		return
	}
	s.add(n)
}

func (s *soakTally) opened() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opens++
}

func (s *soakTally) problem(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.problems) < 20 {
		s.problems = append(s.problems, fmt.Sprintf(format, args...))
	}
}

// set replaces what the tally holds, for a client read by polling.
func (s *soakTally) set(got []int, opens int, problems []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got, s.opens, s.problems = got, opens, problems
}

func (s *soakTally) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

func (s *soakTally) openCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opens
}

// verdict says what is wrong with the tally when every message 1…want
// should have arrived once, in order, on one connection; "" when nothing.
func (s *soakTally) verdict(want int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var why []string
	if s.opens != 1 {
		why = append(why, fmt.Sprintf("%d connections, want 1", s.opens))
	}
	if !slices.Equal(s.got, soakSequence(want)) {
		why = append(why, fmt.Sprintf("received %d of %d (%s)", len(s.got), want, soakGaps(s.got, want)))
	}
	why = append(why, s.problems...)
	return strings.Join(why, "; ")
}

// soakSequence is 1…n.
func soakSequence(n int) []int {
	seq := make([]int, n)
	for i := range seq {
		seq[i] = i + 1
	}
	return seq
}

// soakGaps describes how got differs from 1…want: where it stops, what is
// missing, what is out of order.
func soakGaps(got []int, want int) string {
	var parts []string
	last := 0
	for i, n := range got {
		if n != last+1 {
			parts = append(parts, fmt.Sprintf("#%d is %d after %d", i+1, n, last))
			if len(parts) == 3 {
				break
			}
		}
		last = n
	}
	if len(got) > 0 {
		parts = append(parts, fmt.Sprintf("last %d", got[len(got)-1]))
	}
	return strings.Join(parts, ", ")
}

// soakPayload is message n as published.
func soakPayload(n int) []byte { return fmt.Appendf(nil, `{"n":%d}`, n) }

func soakNumber(p []byte) (int, error) {
	var m struct {
		N *int `json:"n"`
	}
	if err := json.Unmarshal(p, &m); err != nil || m.N == nil {
		return 0, fmt.Errorf("unexpected message %.100q", p)
	}
	return *m.N, nil
}
