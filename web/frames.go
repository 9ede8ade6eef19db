package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Frames a client sends in envelope mode beside its messages: a puller's
// {"ack":ID} and {"nack":ID,"delay":"10s","error":"…"}, and on any
// connection {"$token":"…"} to replace its credential. "$token" is
// reserved in envelope mode: a publisher's frame that is an object with
// that one key is a token, not a message. Raw connections have no such
// frames; everything they send is a message.

// tokenKey is the reserved key of a token frame.
const tokenKey = "$token"

// parseTokenFrame reports whether data is a token frame, and its
// credential; err says why a token frame is malformed.
func parseTokenFrame(data []byte) (cred string, isToken bool, err error) {
	if !bytes.Contains(data, []byte(`"`+tokenKey+`"`)) {
		return "", false, nil // the cheap test, for every message
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(data, &m) != nil || len(m) != 1 {
		return "", false, nil
	}
	raw, ok := m[tokenKey]
	if !ok {
		return "", false, nil
	}
	if err := json.Unmarshal(raw, &cred); err != nil || cred == "" {
		return "", true, errors.New(`want {"$token":"<token or API key>"}`)
	}
	return cred, true, nil
}

// settleFrame is what an envelope-mode puller sends about a delivery.
type settleFrame struct {
	Ack   *uint64 `json:"ack"`
	Nack  *uint64 `json:"nack"`
	Delay string  `json:"delay"` // nack: wait this long before the next attempt
	Error string  `json:"error"` // nack: why the attempt failed
}

// settlement is a decoded settle frame.
type settlement struct {
	ack    bool // else nack
	id     uint64
	delay  time.Duration
	reason string
}

// parseSettle decodes {"ack":ID} and {"nack":ID,"delay":"10s","error":"…"}.
func parseSettle(data []byte) (settlement, error) {
	var f settleFrame
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return settlement{}, fmt.Errorf(`want {"ack":ID} or {"nack":ID,"delay":"10s","error":"…"}: %w`, err)
	}
	if dec.More() {
		return settlement{}, errors.New(`want one JSON object per frame`)
	}
	switch {
	case f.Ack != nil && f.Nack == nil:
		return settlement{ack: true, id: *f.Ack}, nil
	case f.Nack != nil && f.Ack == nil:
		s := settlement{id: *f.Nack, reason: f.Error}
		if f.Delay != "" {
			d, err := time.ParseDuration(f.Delay)
			if err != nil || d < 0 {
				return settlement{}, fmt.Errorf("delay %q: want a duration such as 10s", f.Delay)
			}
			s.delay = d
		}
		return s, nil
	}
	return settlement{}, errors.New(`want exactly one of "ack" and "nack"`)
}
