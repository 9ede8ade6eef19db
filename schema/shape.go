package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// DefaultMaxDepth is how deeply arrays and objects may nest in a message
// on a bus with a schema, unless configured otherwise.
const DefaultMaxDepth = 64

// checkShape walks a JSON text once, before it is decoded and validated,
// and refuses what would cost too much or mean two things: nesting deeper
// than maxDepth (a validator's cost can grow much faster than the text),
// and an object with the same key twice (parsers disagree on which value
// counts: a validator keeps the last, some consumers the first). It does
// not check the syntax, decode does: on text that is not JSON it may find
// nothing or stop early.
func checkShape(payload []byte, maxDepth int) *Refusal {
	var stack []level
	for i := 0; i < len(payload); i++ {
		switch c := payload[i]; c {
		case '{', '[':
			if len(stack) >= maxDepth {
				at := pointer(stack, nil)
				return shapeRefusal(i, at, fmt.Sprintf("nested deeper than %d arrays and objects (max_json_depth); refused before validation", maxDepth))
			}
			stack = append(stack, level{object: c == '{', wantKey: c == '{'})
		case '}', ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		case ',':
			if n := len(stack); n > 0 {
				if top := &stack[n-1]; top.object {
					top.wantKey = true
				} else {
					top.index++
				}
			}
		case '"':
			end, escaped := stringEnd(payload, i)
			if n := len(stack); n > 0 && stack[n-1].wantKey {
				top := &stack[n-1]
				top.wantKey = false
				key := payload[i+1 : end]
				if escaped {
					key = unescape(payload[i:min(end+1, len(payload))], key)
				}
				if top.seen(key) {
					at := pointer(stack, key)
					return shapeRefusal(i, at, fmt.Sprintf("duplicate key %q at %s: each key may appear once in an object", key, at))
				}
			}
			i = end
		}
	}
	return nil
}

// level is one open array or object.
type level struct {
	object  bool
	wantKey bool // an object's next string is a key
	index   int  // an array's current element
	key     []byte
	keys    [][]byte            // an object's keys so far, while few
	set     map[string]struct{} // and then
}

// manyKeys is where an object's keys move from a list to a map: a list is
// cheaper for the few keys most objects have, a map keeps a huge object
// linear.
const manyKeys = 16

// seen records key as the object's current one, and reports whether it
// had it already.
func (l *level) seen(key []byte) bool {
	l.key = key
	if l.set != nil {
		if _, dup := l.set[string(key)]; dup {
			return true
		}
		l.set[string(key)] = struct{}{}
		return false
	}
	for _, k := range l.keys {
		if bytes.Equal(k, key) {
			return true
		}
	}
	l.keys = append(l.keys, key)
	if len(l.keys) > manyKeys {
		l.set = make(map[string]struct{}, 2*len(l.keys))
		for _, k := range l.keys {
			l.set[string(k)] = struct{}{}
		}
		l.keys = nil
	}
	return false
}

// stringEnd returns the index of the quote that ends the string starting
// at payload[start] (len(payload) when it does not end), and whether the
// string has escapes.
func stringEnd(payload []byte, start int) (end int, escaped bool) {
	for j := start + 1; j < len(payload); j++ {
		switch payload[j] {
		case '\\':
			escaped = true
			j++
		case '"':
			return j, escaped
		}
	}
	return len(payload), escaped
}

// unescape decodes a quoted JSON string, so that "\u0063md" and "cmd" are
// the same key; raw is returned when it is not valid (decode says so).
func unescape(quoted, raw []byte) []byte {
	var s string
	if json.Unmarshal(quoted, &s) != nil {
		return raw
	}
	return []byte(s)
}

// pointer is the JSON pointer (RFC 6901) of the value at the top of stack,
// or, with key, of that key's value in the object at the top.
func pointer(stack []level, key []byte) string {
	var b strings.Builder
	esc := strings.NewReplacer("~", "~0", "/", "~1")
	for i, l := range stack {
		if i == len(stack)-1 && key != nil {
			break
		}
		b.WriteByte('/')
		if l.object {
			esc.WriteString(&b, string(l.key))
		} else {
			b.WriteString(strconv.Itoa(l.index))
		}
	}
	if key != nil {
		b.WriteByte('/')
		esc.WriteString(&b, string(key))
	}
	return b.String()
}

func shapeRefusal(offset int, at, why string) *Refusal {
	return &Refusal{Code: CodeJSON, Message: fmt.Sprintf("message refused: %s (byte offset %d)", why, offset),
		Details: []Detail{{At: at, Offset: &offset, Message: why}}}
}
