package web

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// The operations of the model-based queue test. A run is a list of them,
// generated from a seed; printed as text (one token per operation,
// "name:arg:arg"), a list can be run again with -model.ops, or shrunk.

type opKind string

const (
	opPush     opKind = "push"     // push N messages; arg 2: 1 makes one of them large
	opPull     opKind = "pull"     // connect a puller: mode r|e, prefetch, exclusive 0|1
	opTakeover opKind = "takeover" // connect a puller with ?takeover=1: mode, prefetch
	opAck      opKind = "ack"      // puller #i acks its oldest N held deliveries
	opNack     opKind = "nack"     // puller #i nacks its oldest N, with a delay in ms
	opSleep    opKind = "sleep"    // let timers run for N ms (ack timeouts, delays)
	opClose    opKind = "close"    // puller #i closes normally
	opKill     opKind = "kill"     // puller #i stops reading mid-batch, then resets
	opRestart  opKind = "restart"  // shut the broker down and open it on the same store
	opExpire   opKind = "expire"   // every puller leaves; wait out the queue's TTL
	opEdge     opKind = "edge"     // every puller leaves; push just before the TTL ends
)

type op struct {
	kind opKind
	mode string // pull, takeover: "r" raw or "e" envelope
	args []int
}

func (o op) arg(i int) int {
	if i < len(o.args) {
		return o.args[i]
	}
	return 0
}

func (o op) String() string {
	parts := []string{string(o.kind)}
	if o.mode != "" {
		parts = append(parts, o.mode)
	}
	for _, a := range o.args {
		parts = append(parts, strconv.Itoa(a))
	}
	return strings.Join(parts, ":")
}

func formatOps(ops []op) string {
	s := make([]string, len(ops))
	for i, o := range ops {
		s[i] = o.String()
	}
	return strings.Join(s, " ")
}

// parseOps reads what formatOps wrote.
func parseOps(text string) ([]op, error) {
	var ops []op
	for _, tok := range strings.Fields(text) {
		parts := strings.Split(tok, ":")
		o := op{kind: opKind(parts[0])}
		rest := parts[1:]
		if (o.kind == opPull || o.kind == opTakeover) && len(rest) > 0 {
			o.mode, rest = rest[0], rest[1:]
		}
		for _, p := range rest {
			n, err := strconv.Atoi(p)
			if err != nil {
				return nil, fmt.Errorf("operation %q: %w", tok, err)
			}
			o.args = append(o.args, n)
		}
		ops = append(ops, o)
	}
	return ops, nil
}

// genOps draws n operations from seed. Pushes, pulls and settles dominate;
// the disruptive ones (restart, takeover, expiry) are rarer, as in life.
func genOps(seed uint64, n int) []op {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	mode := func() string {
		if r.IntN(3) == 0 {
			return "r"
		}
		return "e"
	}
	prefetch := func() int { return []int{1, 2, 3, 4, 16}[r.IntN(5)] }
	ops := make([]op, 0, n)
	for len(ops) < n {
		var o op
		switch x := r.IntN(100); {
		case x < 20:
			large := 0
			if r.IntN(10) == 0 {
				large = 1
			}
			o = op{kind: opPush, args: []int{1 + r.IntN(4), large}}
		case x < 31:
			excl := 0
			if r.IntN(8) == 0 {
				excl = 1
			}
			o = op{kind: opPull, mode: mode(), args: []int{prefetch(), excl}}
		case x < 35:
			o = op{kind: opTakeover, mode: mode(), args: []int{prefetch()}}
		case x < 50:
			o = op{kind: opAck, args: []int{r.IntN(4), 1 + r.IntN(4)}}
		case x < 63:
			delay := 0
			if r.IntN(3) > 0 {
				delay = 100 + r.IntN(500)
			}
			o = op{kind: opNack, args: []int{r.IntN(4), 1 + r.IntN(2), delay}}
		case x < 72:
			o = op{kind: opSleep, args: []int{50 + r.IntN(900)}}
		case x < 79:
			o = op{kind: opClose, args: []int{r.IntN(4)}}
		case x < 87:
			o = op{kind: opKill, args: []int{r.IntN(4)}}
		case x < 95:
			o = op{kind: opRestart}
		case x < 97:
			o = op{kind: opExpire}
		default:
			o = op{kind: opEdge}
		}
		ops = append(ops, o)
	}
	return ops
}
