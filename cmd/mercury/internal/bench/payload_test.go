package bench

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

func TestPayloadRoundTrip(t *testing.T) {
	id := newRunID()
	for _, sent := range []time.Duration{0, 1, 42 * time.Millisecond, 1<<63 - 1} {
		for _, size := range []int{minPayloadSize, 128, 4096} {
			p := appendPayload(nil, id, sent, size)
			if len(p) != size {
				t.Fatalf("payload of %v at size %d is %d bytes: %s", sent, size, len(p), p)
			}
			if !json.Valid(p) {
				t.Fatalf("payload is not JSON: %s", p)
			}
			if kind, got := parsePayload(p, id); kind != kindTimed || got != sent {
				t.Fatalf("parsePayload(%s) = %v, %v; want timed, %v", p, kind, got, sent)
			}
			// Inside an envelope, as Mercury's ?envelope=1 delivers it.
			env := fmt.Sprintf(`{"topic":"/bench","seq":17,"time":"2026-11-24T11:00:00.123456789Z","data":%s}`, p)
			if kind, got := parsePayload([]byte(env), id); kind != kindTimed || got != sent {
				t.Fatalf("parsePayload(envelope) = %v, %v; want timed, %v", kind, got, sent)
			}
		}
	}
}

func TestPayloadKinds(t *testing.T) {
	id, other := runID([]byte("0123abcd")), runID([]byte("99999999"))
	warm := appendWarmup(nil, id, 3)
	if !json.Valid(warm) {
		t.Fatalf("warm-up is not JSON: %s", warm)
	}
	timed := appendPayload(nil, id, time.Second, 128)
	for _, c := range []struct {
		frame string
		want  messageKind
	}{
		{string(warm), kindWarmup},
		{string(timed), kindTimed},
		{string(appendPayload(nil, other, time.Second, 128)), kindOther}, // an earlier run's
		{string(appendWarmup(nil, other, 1)), kindOther},
		{`{"ok":17}`, kindOther},
		{`{"error":{"code":"x"}}`, kindOther},
		{``, kindOther},
		{`{"b":"`, kindOther},
		{`{"b":"0123abcd`, kindOther},
		{`{"b":"0123abcd","t":`, kindOther},
		{`{"b":"0123abcd","t":x}`, kindOther},
		{`{"b":"0123abcd","q":1}`, kindOther},
		{`{"b":"0123abcd","t":12345678901234567890}`, kindOther}, // too many digits
	} {
		if kind, _ := parsePayload([]byte(c.frame), id); kind != c.want {
			t.Errorf("parsePayload(%q) = %v, want %v", c.frame, kind, c.want)
		}
	}
}

func BenchmarkParsePayload(b *testing.B) {
	id := newRunID()
	p := appendPayload(nil, id, 123456789, 128)
	for b.Loop() {
		if k, _ := parsePayload(p, id); k != kindTimed {
			b.Fatal(k)
		}
	}
}
