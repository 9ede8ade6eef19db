package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v5"
)

// Codes of a Refusal.
const (
	CodeSchema = "schema" // JSON that does not match the bus's schema
	CodeJSON   = "json"   // text that is not JSON
	CodeBinary = "binary" // a binary frame on a bus with a schema
)

// MaxDetails caps the details of one refusal, so that a message failing
// everywhere does not earn a huge answer.
const MaxDetails = 20

// Refusal says why a message was refused.
type Refusal struct {
	Code    string
	Bus     string
	Message string
	Details []Detail
}

func (r *Refusal) Error() string { return r.Message }

// Detail is one reason for a refusal.
type Detail struct {
	// At is the JSON pointer of the offending value in the message ("" is
	// the whole message).
	At string `json:"at"`
	// Schema is the failing keyword: "#/properties/cmd/enum" in the
	// bus's schema file, or "defs.json#/$defs/uuid/format" in a file it
	// references.
	Schema string `json:"schema,omitempty"`
	// Offset is, for text that is not JSON, the byte offset of the error.
	Offset *int `json:"offset,omitempty"`
	// Message says what is wrong.
	Message string `json:"message"`
}

// Validate checks a message for bus (topic lies under it). A bus without a
// schema accepts anything: Validate returns nil. JSON nested deeper than
// DefaultMaxDepth is refused before validation.
func (r *Registry) Validate(bus, topic string, payload []byte, binary bool) *Refusal {
	return r.ValidateDepth(bus, topic, payload, binary, DefaultMaxDepth)
}

// ValidateDepth is Validate with JSON nested deeper than maxDepth refused
// (code json) before validation; duplicate object keys are refused too.
func (r *Registry) ValidateDepth(bus, topic string, payload []byte, binary bool, maxDepth int) *Refusal {
	bs := r.get(bus)
	if bs == nil {
		return nil
	}
	if binary {
		return &Refusal{Code: CodeBinary, Bus: bus,
			Message: fmt.Sprintf("binary frame refused: bus %s carries JSON text (its schema is %s)", bus, bs.main)}
	}
	if ref := checkShape(payload, maxDepth); ref != nil {
		ref.Bus = bus
		return ref
	}
	v, ref := decode(payload)
	if ref != nil {
		ref.Bus = bus
		return ref
	}
	err := bs.compiled.Validate(v)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		// An infinite $ref loop: the schema's fault, but still no pass.
		return &Refusal{Code: CodeSchema, Bus: bus, Message: fmt.Sprintf("schema of bus %s cannot be applied: %v", bus, err)}
	}
	all := leaves(ve, nil)
	details := make([]Detail, 0, min(len(all), MaxDetails))
	for _, leaf := range all[:min(len(all), MaxDetails)] {
		details = append(details, Detail{At: leaf.InstanceLocation, Schema: bs.keyword(leaf.AbsoluteKeywordLocation), Message: leaf.Message})
	}
	msg := fmt.Sprintf("message does not match the schema of bus %s: at %s: %s", bus, pointerOrRoot(details[0].At), details[0].Message)
	if n := len(all) - 1; n > 0 {
		msg += fmt.Sprintf(" (and %d more)", n)
	}
	return &Refusal{Code: CodeSchema, Bus: bus, Message: msg, Details: details}
}

// decode parses a JSON text with numbers kept exact, or says where it is
// not JSON.
func decode(payload []byte) (any, *Refusal) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	if err == nil {
		// One value only: what follows must be white space.
		end := int(dec.InputOffset())
		rest := bytes.TrimLeft(payload[end:], " \t\r\n")
		if len(rest) == 0 {
			return v, nil
		}
		return nil, notJSON(len(payload)-len(rest), "more data after the JSON value")
	}
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		// Offset counts the bytes read, the offending one included.
		return nil, notJSON(max(int(se.Offset)-1, 0), se.Error())
	case errors.Is(err, io.EOF) && len(bytes.TrimSpace(payload)) == 0:
		return nil, notJSON(len(payload), "empty message")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return nil, notJSON(len(payload), "unexpected end of JSON input")
	}
	return nil, notJSON(0, err.Error())
}

func notJSON(offset int, why string) *Refusal {
	return &Refusal{Code: CodeJSON, Message: fmt.Sprintf("message is not JSON: %s at byte offset %d", why, offset),
		Details: []Detail{{Offset: &offset, Message: why}}}
}

// leaves appends the causes of ve that have no causes of their own: the
// keywords that actually failed, not the "allOf failed" around them.
func leaves(ve *jsonschema.ValidationError, out []*jsonschema.ValidationError) []*jsonschema.ValidationError {
	if len(ve.Causes) == 0 {
		return append(out, ve)
	}
	for _, c := range ve.Causes {
		out = leaves(c, out)
	}
	return out
}

// keyword turns the library's absolute keyword location (a file URL and
// a fragment) into one relative to the schema's folder: "#/…" in the
// main file, "defs.json#/…" in another.
func (bs *busSchema) keyword(abs string) string {
	doc, frag, _ := strings.Cut(abs, "#")
	if doc == bs.url {
		return "#" + frag
	}
	folder := bs.url[:strings.LastIndexByte(bs.url, '/')+1]
	return strings.TrimPrefix(doc, folder) + "#" + frag
}
