package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/mercury-broker/mercury/broker"
)

// readLoop reads frames until the connection ends.
func (c *conn) readLoop() error {
	ctx := context.Background()
	for {
		typ, data, err := c.ws.Read(ctx)
		if err != nil {
			return err
		}
		if c.isClosing() {
			continue
		}
		if typ == websocket.MessageText && !utf8.Valid(data) {
			c.closeWith(websocket.StatusInvalidFramePayloadData, "invalid UTF-8 in a text frame")
			continue
		}
		switch {
		case c.pattern.sends():
			c.publishFrame(&broker.Message{Topic: c.topic, Binary: typ == websocket.MessageBinary, Payload: data})
		case c.pattern == patternPull && c.opts.envelope:
			if aerr := c.settle(data); aerr != nil {
				c.sendError(aerr)
			}
		}
		// Other frames on /sub and /pull sockets are ignored, as they
		// always were.
	}
}

// settleFrame is what an envelope-mode puller sends about a delivery.
type settleFrame struct {
	Ack   *uint64 `json:"ack"`
	Nack  *uint64 `json:"nack"`
	Delay string  `json:"delay"` // nack: wait this long before the next attempt
	Error string  `json:"error"` // nack: why the attempt failed
}

// settle handles {"ack":ID} and {"nack":ID,"delay":"10s","error":"…"}.
func (c *conn) settle(data []byte) *apiError {
	frameErr := func(format string, args ...any) *apiError {
		return &apiError{Status: http.StatusBadRequest, Code: "frame", Topic: string(c.topic), Message: fmt.Sprintf(format, args...)}
	}
	var f settleFrame
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return frameErr(`want {"ack":ID} or {"nack":ID,"delay":"10s","error":"…"}: %v`, err)
	}
	var err error
	var id uint64
	switch {
	case f.Ack != nil && f.Nack == nil:
		id = *f.Ack
		err = c.s.broker.Ack(c.topic, c, id)
	case f.Nack != nil && f.Ack == nil:
		id = *f.Nack
		var delay time.Duration
		if f.Delay != "" {
			if delay, err = time.ParseDuration(f.Delay); err != nil || delay < 0 {
				return frameErr("delay %q: want a duration such as 10s", f.Delay)
			}
		}
		err = c.s.broker.Nack(c.topic, c, id, delay, f.Error)
	default:
		return frameErr(`want exactly one of "ack" and "nack"`)
	}
	if errors.Is(err, broker.ErrUnknownID) {
		return &apiError{Status: http.StatusNotFound, Code: "unknown_id", Topic: string(c.topic),
			Message: fmt.Sprintf("no delivery %d is held by this connection: already settled, redelivered after its ack timeout, or never sent here", id)}
	}
	if err != nil {
		return apiErrorFor(err, c.topic)
	}
	return nil
}
