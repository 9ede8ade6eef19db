package bench

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"time"
)

// A bench message is a JSON object, so that it travels unchanged as the
// "data" of an envelope as well as a raw frame:
//
//	{"b":"<run id>","t":<ns since the run's clock started>,"x":"xxx…"}
//
// padded with x to the requested size. Warm-up messages, sent until every
// subscriber is known to be listening, carry "w" instead of "t". The run
// id tells this run's messages from any a server replays from an earlier
// one. The time is read from the monotonic clock of the process that both
// sends and receives, so wall-clock steps cannot skew latencies.

// runID identifies one bench run in its messages.
type runID [8]byte

func newRunID() runID {
	var b [4]byte
	rand.Read(b[:])
	var id runID
	hex.Encode(id[:], b[:])
	return id
}

// minPayloadSize is the smallest message that holds a run id, any
// timestamp and the padding field.
const minPayloadSize = len(`{"b":"01234567","t":`) + 19 + len(`,"x":""}`)

// benchClock gives the time since it started, monotonic.
type benchClock struct{ start time.Time }

func newBenchClock() benchClock { return benchClock{start: time.Now()} }

func (c benchClock) now() time.Duration { return time.Since(c.start) }

// appendPayload appends a timed message of exactly size bytes (at least
// minPayloadSize) to dst.
func appendPayload(dst []byte, id runID, t time.Duration, size int) []byte {
	start := len(dst)
	dst = append(dst, `{"b":"`...)
	dst = append(dst, id[:]...)
	dst = append(dst, `","t":`...)
	dst = strconv.AppendInt(dst, int64(t), 10)
	return pad(dst, start, size)
}

// appendWarmup appends a warm-up message of round n to dst.
func appendWarmup(dst []byte, id runID, n int) []byte {
	dst = append(dst, `{"b":"`...)
	dst = append(dst, id[:]...)
	dst = append(dst, `","w":`...)
	dst = strconv.AppendInt(dst, int64(n), 10)
	return append(dst, '}')
}

// pad closes the object begun at dst[start:] with an "x" field that
// makes it size bytes long.
func pad(dst []byte, start, size int) []byte {
	dst = append(dst, `,"x":"`...)
	for len(dst)-start < size-2 {
		dst = append(dst, 'x')
	}
	return append(dst, `"}`...)
}

// messageKind says what a received frame is to the bench.
type messageKind int

const (
	kindOther  messageKind = iota // not this run's: ignored
	kindWarmup                    // warm-up: the subscriber is listening
	kindTimed                     // a measured message
)

var payloadStart = []byte(`{"b":"`)

// parsePayload finds this run's message in frame, raw or inside an
// envelope, and returns its kind and, for a timed message, its time.
func parsePayload(frame []byte, id runID) (messageKind, time.Duration) {
	i := bytes.Index(frame, payloadStart)
	if i < 0 {
		return kindOther, 0
	}
	rest := frame[i+len(payloadStart):]
	if len(rest) < len(id)+6 || !bytes.Equal(rest[:len(id)], id[:]) {
		return kindOther, 0
	}
	rest = rest[len(id):]
	if string(rest[:3]) != `","` || rest[4] != '"' || rest[5] != ':' {
		return kindOther, 0
	}
	kind := rest[3]
	rest = rest[6:]
	var v int64
	digits := 0
	for ; digits < len(rest) && rest[digits] >= '0' && rest[digits] <= '9'; digits++ {
		v = v*10 + int64(rest[digits]-'0')
	}
	if digits == 0 || digits > 19 {
		return kindOther, 0
	}
	switch kind {
	case 't':
		return kindTimed, time.Duration(v)
	case 'w':
		return kindWarmup, 0
	}
	return kindOther, 0
}
