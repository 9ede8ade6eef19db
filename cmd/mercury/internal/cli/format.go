package cli

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/mercury-broker/mercury/web/client"
)

// format says how received messages are shown.
type format struct {
	raw       bool // the frame's bytes exactly as received
	json      bool // one compact JSON object per message
	showTopic bool // the topic before each message
	pretty    bool // for a person at a terminal: JSON indented, binary as hex
	color     bool // ANSI colours (a terminal, and NO_COLOR unset)
}

// frame formats a frame received without envelope mode.
func (f *format) frame(fr client.Frame) []byte {
	switch {
	case f.raw:
		return fr.Data
	case f.json:
		return dataJSON(fr.Data, fr.Binary)
	}
	return f.payload(fr.Data, fr.Binary)
}

// envelope formats a message received in envelope mode; frame is the
// frame it came in.
func (f *format) envelope(e *client.Envelope, frame []byte) []byte {
	switch {
	case f.raw:
		return frame
	case f.json:
		var b bytes.Buffer
		if json.Compact(&b, frame) != nil {
			return frame
		}
		return b.Bytes()
	}
	p, binary, err := e.Payload()
	if err != nil {
		return frame
	}
	body := f.payload(p, binary)
	if !f.showTopic {
		return body
	}
	var b bytes.Buffer
	if f.color {
		b.WriteString(ansiTopic + e.Topic + ansiReset)
	} else {
		b.WriteString(e.Topic)
	}
	if f.pretty {
		b.WriteByte(' ')
	} else {
		b.WriteByte('\t') // cut -f2- gives the message back
	}
	b.Write(body)
	return b.Bytes()
}

// payload shows a message's bytes: JSON compact on one line (a pipe) or
// indented and coloured (a terminal); other text as it is; binary as
// base64 (a pipe) or hex (a terminal).
func (f *format) payload(p []byte, binary bool) []byte {
	if binary {
		if !f.pretty {
			return []byte(base64.StdEncoding.EncodeToString(p))
		}
		const most = 64
		s := fmt.Sprintf("<binary, %d bytes> %s", len(p), hex.EncodeToString(p[:min(len(p), most)]))
		if len(p) > most {
			s += "…"
		}
		if f.color {
			s = ansiDim + s + ansiReset
		}
		return []byte(s)
	}
	if !json.Valid(p) {
		return p
	}
	if f.pretty {
		return prettyJSON(p, f.color)
	}
	var b bytes.Buffer
	json.Compact(&b, p) // valid, so it cannot fail
	return b.Bytes()
}

// dataJSON is the --json form of a frame received without envelope mode:
// {"data":…} as envelope mode would give it.
func dataJSON(p []byte, binary bool) []byte {
	var v struct {
		Data     json.RawMessage `json:"data"`
		Encoding string          `json:"encoding,omitempty"`
	}
	switch {
	case binary:
		v.Data = jsonString(base64.StdEncoding.EncodeToString(p))
		v.Encoding = "base64"
	case json.Valid(p):
		v.Data = p
	default:
		v.Data = jsonString(string(p))
		v.Encoding = "text"
	}
	return marshalLine(v)
}

// marshalLine encodes v as one line of JSON, leaving <, > and & as they
// are.
func marshalLine(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err) // only valid JSON and strings are given
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func jsonString(s string) json.RawMessage { return marshalLine(s) }
