package cli

import (
	"bytes"
	"strings"
)

// ANSI colours for a terminal.
const (
	ansiReset  = "\x1b[0m"
	ansiDim    = "\x1b[2m"
	ansiRed    = "\x1b[31m"
	ansiKey    = "\x1b[1;34m" // bold blue
	ansiString = "\x1b[32m"   // green
	ansiNumber = "\x1b[36m"   // cyan
	ansiWord   = "\x1b[35m"   // magenta: true, false, null
	ansiTopic  = "\x1b[1;33m" // bold yellow
)

// prettyJSON indents the valid JSON p by two spaces, its keys, strings,
// numbers and literals coloured when color is set.
func prettyJSON(p []byte, color bool) []byte {
	var b bytes.Buffer
	b.Grow(len(p) * 2)
	depth := 0
	newline := func() {
		b.WriteByte('\n')
		b.WriteString(strings.Repeat("  ", depth))
	}
	paint := func(code string, tok []byte) {
		if color {
			b.WriteString(code)
			b.Write(tok)
			b.WriteString(ansiReset)
		} else {
			b.Write(tok)
		}
	}
	for i := 0; i < len(p); {
		c := p[i]
		switch c {
		case ' ', '\t', '\n', '\r':
			i++
		case '{', '[':
			b.WriteByte(c)
			i++
			j := skipSpace(p, i)
			if j < len(p) && (p[j] == '}' || p[j] == ']') {
				b.WriteByte(p[j]) // {} and [] stay on one line
				i = j + 1
				continue
			}
			depth++
			newline()
		case '}', ']':
			depth--
			newline()
			b.WriteByte(c)
			i++
		case ',':
			b.WriteByte(',')
			newline()
			i++
		case ':':
			b.WriteString(": ")
			i++
		case '"':
			j := endOfString(p, i)
			code := ansiString
			if k := skipSpace(p, j); k < len(p) && p[k] == ':' {
				code = ansiKey
			}
			paint(code, p[i:j])
			i = j
		default: // a number, true, false or null
			j := i
			for j < len(p) && !bytes.ContainsRune([]byte(" \t\r\n,]}:"), rune(p[j])) {
				j++
			}
			code := ansiNumber
			if c == 't' || c == 'f' || c == 'n' {
				code = ansiWord
			}
			paint(code, p[i:j])
			i = j
		}
	}
	return b.Bytes()
}

func skipSpace(p []byte, i int) int {
	for i < len(p) && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r') {
		i++
	}
	return i
}

// endOfString returns the index just past the JSON string starting at
// p[i] == '"'.
func endOfString(p []byte, i int) int {
	for j := i + 1; j < len(p); j++ {
		switch p[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(p)
}
