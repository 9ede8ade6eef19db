package broker

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// Envelope returns m in envelope form, encoded once and shared by every
// envelope-mode receiver:
//
//	{"topic":"/a/b","seq":17,"epoch":"9f86d081","time":"2026-11-24T11:00:00.123456789Z","data":<JSON>}
//
// epoch names the life of the sequence numbers seq is from (see
// Broker.Epoch); it is left out when there is none.
// When the payload is text that is not JSON, data is that text as a JSON
// string and "encoding":"text" says so; a binary payload is base64 with
// "encoding":"base64".
func (m *Message) Envelope() []byte {
	m.envOnce.Do(func() { m.env = appendEnvelope(nil, m, nil) })
	return m.env
}

// envelopeCache is embedded in Message so its envelope is encoded once.
type envelopeCache struct {
	envOnce sync.Once
	env     []byte
}

// appendEnvelope appends m's envelope to dst; extra fields (already
// encoded, each starting with a comma) go right after the opening brace.
func appendEnvelope(dst []byte, m *Message, extra []byte) []byte {
	dst = append(dst, '{')
	if len(extra) > 0 {
		dst = append(dst, extra[1:]...)
		dst = append(dst, ',')
	}
	dst = append(dst, `"topic":`...)
	dst = appendJSONString(dst, string(m.Topic))
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, m.Seq, 10)
	if m.Epoch != "" {
		dst = append(dst, `,"epoch":`...)
		dst = appendJSONString(dst, m.Epoch)
	}
	return appendTimeAndData(dst, m)
}

// appendTimeAndData appends the end of an envelope: m's time and data
// (JSON as it is, other text as a string, binary in base64), and the
// closing brace.
func appendTimeAndData(dst []byte, m *Message) []byte {
	dst = append(dst, `,"time":"`...)
	dst = m.Time.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","data":`...)
	switch {
	case m.Binary:
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, m.Payload)
		dst = append(dst, `","encoding":"base64"`...)
	case isJSON(m.Payload):
		dst = append(dst, m.Payload...)
	default:
		dst = appendJSONString(dst, string(m.Payload))
		dst = append(dst, `,"encoding":"text"`...)
	}
	return append(dst, '}')
}

// isJSON reports whether p is one JSON value.
func isJSON(p []byte) bool {
	return len(p) > 0 && utf8.Valid(p) && json.Valid(p)
}

func appendJSONString(dst []byte, s string) []byte {
	b, err := json.Marshal(s)
	if err != nil {
		// A Go string always marshals.
		panic(err)
	}
	return append(dst, b...)
}

// Envelope returns d in the envelope form of a pulled message:
// the message envelope with "id" and "attempt" first.
func (d *Delivery) Envelope() []byte {
	extra := make([]byte, 0, 48)
	extra = append(extra, `,"id":`...)
	extra = strconv.AppendUint(extra, d.ID(), 10)
	extra = append(extra, `,"attempt":`...)
	extra = strconv.AppendInt(extra, int64(d.Attempt), 10)
	return appendEnvelope(make([]byte, 0, len(d.Message.Payload)+160), d.Message, extra)
}
