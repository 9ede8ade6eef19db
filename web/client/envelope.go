package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// EnvelopeSubprotocol is the WebSocket subprotocol of envelope mode.
const EnvelopeSubprotocol = "mercury.v1"

// ErrNoEnvelope is returned by Dial when Options.Envelope is set and the
// broker did not agree to envelope mode: it is older than envelope mode,
// or not Mercury.
var ErrNoEnvelope = errors.New("client: the broker did not agree to envelope mode (subprotocol " + EnvelopeSubprotocol + ")")

// Envelope is a message as envelope mode delivers it to a subscriber, a
// bus peer or a puller.
type Envelope struct {
	Topic string `json:"topic"`
	Seq   uint64 `json:"seq"`
	// Epoch names the life of the broker's sequence numbers Seq is from:
	// a subscriber resumes with since=Seq&epoch=Epoch, and a broker that
	// started afresh since says so with a Gap marked Reset.
	Epoch string    `json:"epoch,omitempty"`
	Time  time.Time `json:"time"`
	// Data is the payload when it is JSON; otherwise a JSON string, with
	// Encoding "text" (the text itself) or "base64" (binary).
	Data     json.RawMessage `json:"data"`
	Encoding string          `json:"encoding,omitempty"`
	// ID and Attempt are set on a pulled message; ID is kept as the
	// broker sent it, to be echoed in an ack or nack.
	ID      json.RawMessage `json:"id,omitempty"`
	Attempt int             `json:"attempt,omitempty"`
}

// Payload returns the message's bytes as they were published, and whether
// they were binary.
func (e *Envelope) Payload() (p []byte, binary bool, err error) {
	switch e.Encoding {
	case "":
		return e.Data, false, nil
	case "text", "base64":
		var s string
		if err := json.Unmarshal(e.Data, &s); err != nil {
			return nil, false, fmt.Errorf("failed to decode %s data: %w", e.Encoding, err)
		}
		if e.Encoding == "text" {
			return []byte(s), false, nil
		}
		p, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, true, fmt.Errorf("failed to decode base64 data: %w", err)
		}
		return p, true, nil
	}
	return nil, false, fmt.Errorf("unknown data encoding %q", e.Encoding)
}

// APIError is the broker's refusal, {"error":{"code","topic","message"}}:
// an error frame, the body of an HTTP error, or an envelope-mode answer.
type APIError struct {
	Code    string `json:"code"`
	Action  string `json:"action,omitempty"` // a refusal by rights: the action refused
	Topic   string `json:"topic,omitempty"`
	Message string `json:"message"`
	// Status is the HTTP status of a refused request; 0 on a WebSocket.
	Status int `json:"-"`
}

func (e *APIError) Error() string {
	if e.Topic != "" {
		return fmt.Sprintf("%s: %s (%s)", e.Topic, e.Message, e.Code)
	}
	return fmt.Sprintf("%s (%s)", e.Message, e.Code)
}

// ParseError returns the broker's error in data, or nil when data is not
// an error frame.
func ParseError(data []byte) *APIError { return parseAPIError(data) }

func parseAPIError(data []byte) *APIError {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return nil
	}
	var w struct {
		Error *APIError `json:"error"`
	}
	if json.Unmarshal(data, &w) != nil || w.Error == nil || w.Error.Message == "" {
		return nil
	}
	return w.Error
}

// Gap tells a replaying subscriber that the messages From to To (included)
// are no longer kept. With Reset, the subscriber's position was from
// another epoch (the broker started afresh): what follows is everything
// the broker keeps from the start of Epoch, and From to To is what of it
// is no longer kept (both 0: nothing).
type Gap struct {
	From  uint64 `json:"from"`
	To    uint64 `json:"to"`
	Reset bool   `json:"reset,omitempty"`
	Epoch string `json:"epoch,omitempty"`
}

// Incoming is one frame received in envelope mode. Exactly one field is
// set: a message, the answer to a frame sent (OK or Error), or a gap.
type Incoming struct {
	Message *Envelope
	OK      *uint64 // the sequence number of a message accepted
	Error   *APIError
	Gap     *Gap
	// TokenOK is the answer to a {"$token":…} frame: the new token is in
	// use.
	TokenOK bool
}

// ParseIncoming decodes a frame received in envelope mode.
func ParseIncoming(data []byte) (Incoming, error) {
	var w struct {
		OK    json.RawMessage `json:"ok"`
		Error *APIError       `json:"error"`
		Gap   *Gap            `json:"gap"`
		Envelope
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return Incoming{}, fmt.Errorf("failed to decode an envelope frame: %w", err)
	}
	switch {
	case string(w.OK) == `"token"`:
		return Incoming{TokenOK: true}, nil
	case w.OK != nil:
		var seq uint64
		if err := json.Unmarshal(w.OK, &seq); err != nil {
			return Incoming{}, fmt.Errorf("failed to decode an answer %.100s: %w", data, err)
		}
		return Incoming{OK: &seq}, nil
	case w.Error != nil:
		return Incoming{Error: w.Error}, nil
	case w.Gap != nil:
		return Incoming{Gap: w.Gap}, nil
	case w.Data != nil:
		e := w.Envelope
		return Incoming{Message: &e}, nil
	}
	return Incoming{}, fmt.Errorf("failed to decode an envelope frame: neither a message, an answer nor a gap: %.100s", data)
}

// Ack tells the broker a pulled message is done with (envelope mode).
func (c *Conn) Ack(ctx context.Context, id json.RawMessage) error {
	b, err := json.Marshal(struct {
		Ack json.RawMessage `json:"ack"`
	}{id})
	if err != nil {
		return fmt.Errorf("failed to encode an ack: %w", err)
	}
	return c.WriteText(ctx, string(b))
}

// Nack gives a pulled message back to be delivered again, after delay
// when it is positive; reason, when set, is kept as its last error.
func (c *Conn) Nack(ctx context.Context, id json.RawMessage, delay time.Duration, reason string) error {
	n := struct {
		Nack  json.RawMessage `json:"nack"`
		Delay string          `json:"delay,omitempty"`
		Error string          `json:"error,omitempty"`
	}{Nack: id, Error: reason}
	if delay > 0 {
		n.Delay = delay.String()
	}
	b, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("failed to encode a nack: %w", err)
	}
	return c.WriteText(ctx, string(b))
}
