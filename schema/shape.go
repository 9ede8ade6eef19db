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
	// On the stack while small: most messages cost no allocation here.
	var stackBuf [16]level
	var keysBuf [32][]byte
	sc := shapeScan{stack: stackBuf[:0], keys: keysBuf[:0]}
	for i := 0; i < len(payload); i++ {
		switch c := payload[i]; c {
		case '{', '[':
			if len(sc.stack) >= maxDepth {
				at := pointer(sc.stack, nil)
				return shapeRefusal(i, at, fmt.Sprintf("nested deeper than %d arrays and objects (max_json_depth); refused before validation", maxDepth))
			}
			sc.stack = append(sc.stack, level{object: c == '{', wantKey: c == '{', keysFrom: len(sc.keys)})
		case '}', ']':
			if n := len(sc.stack); n > 0 {
				sc.keys = sc.keys[:sc.stack[n-1].keysFrom]
				sc.stack = sc.stack[:n-1]
			}
		case ',':
			if n := len(sc.stack); n > 0 {
				if top := &sc.stack[n-1]; top.object {
					top.wantKey = true
				} else {
					top.index++
				}
			}
		case '"':
			end, escaped := stringEnd(payload, i)
			if n := len(sc.stack); n > 0 && sc.stack[n-1].wantKey {
				sc.stack[n-1].wantKey = false
				key := payload[i+1 : end]
				if escaped {
					key = unescape(payload[i:min(end+1, len(payload))], key)
				}
				if sc.seen(key) {
					at := pointer(sc.stack, key)
					return shapeRefusal(i, at, fmt.Sprintf("duplicate key %q at %s: each key may appear once in an object", key, at))
				}
			}
			i = end
		}
	}
	return nil
}

// shapeScan is checkShape's state: the open arrays and objects, and the
// keys seen so far in each open object, one after the other (an inner
// object is closed before its outer one takes another key).
type shapeScan struct {
	stack []level
	keys  [][]byte
}

// level is one open array or object.
type level struct {
	object   bool
	wantKey  bool // an object's next string is a key
	index    int  // an array's current element
	key      []byte
	keysFrom int                 // where its keys start in shapeScan.keys, while few
	set      map[string]struct{} // and then
}

// manyKeys is where an object's keys move from a list to a map: a list is
// cheaper for the few keys most objects have, a map keeps a huge object
// linear.
const manyKeys = 16

// seen records key as the current one of the object on top, and reports
// whether it had it already.
func (sc *shapeScan) seen(key []byte) bool {
	l := &sc.stack[len(sc.stack)-1]
	l.key = key
	if l.set != nil {
		if _, dup := l.set[string(key)]; dup {
			return true
		}
		l.set[string(key)] = struct{}{}
		return false
	}
	for _, k := range sc.keys[l.keysFrom:] {
		if bytes.Equal(k, key) {
			return true
		}
	}
	sc.keys = append(sc.keys, key)
	if own := sc.keys[l.keysFrom:]; len(own) > manyKeys {
		l.set = make(map[string]struct{}, 2*len(own))
		for _, k := range own {
			l.set[string(k)] = struct{}{}
		}
		sc.keys = sc.keys[:l.keysFrom]
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
