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

// settlement is a decoded settle frame.
type settlement struct {
	ack    bool // else nack
	id     uint64
	delay  time.Duration
	reason string
}

// settleUsage is the form of settle frames, for errors.
const settleUsage = `want {"ack":ID} or {"nack":ID,"delay":"10s","error":"…"}`

// parseSettle decodes {"ack":ID} and {"nack":ID,"delay":"10s","error":"…"}.
// Keys are matched exactly ("ACK" is not "ack"); null is absent.
func parseSettle(data []byte) (settlement, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil || m == nil { // one value, nothing after it
		if err == nil {
			err = errors.New("null")
		}
		return settlement{}, fmt.Errorf("%s: %w", settleUsage, err)
	}
	var ack, nack *uint64
	var delay, reason string
	for k, raw := range m {
		if string(raw) == "null" {
			continue
		}
		var err error
		switch k {
		case "ack":
			ack = new(uint64)
			err = json.Unmarshal(raw, ack)
		case "nack":
			nack = new(uint64)
			err = json.Unmarshal(raw, nack)
		case "delay":
			err = json.Unmarshal(raw, &delay)
		case "error":
			err = json.Unmarshal(raw, &reason)
		default:
			return settlement{}, fmt.Errorf("%s: unknown key %q", settleUsage, k)
		}
		if err != nil {
			return settlement{}, fmt.Errorf("%s: %q: %w", settleUsage, k, err)
		}
	}
	switch {
	case ack != nil && nack == nil:
		return settlement{ack: true, id: *ack}, nil
	case nack != nil && ack == nil:
		s := settlement{id: *nack, reason: reason}
		if delay != "" {
			d, err := time.ParseDuration(delay)
			if err != nil || d < 0 {
				return settlement{}, fmt.Errorf("delay %q: want a duration such as 10s", delay)
			}
			s.delay = d
		}
		return s, nil
	}
	return settlement{}, errors.New(`want exactly one of "ack" and "nack"`)
}
