package nats

import (
	"fmt"
	"strings"

	"github.com/mercury-broker/mercury/broker"
)

// A topic maps to a NATS subject segment by segment, so that the subject
// filter "<prefix>.<seg>.>" selects exactly the topics below a topic, as
// the broker's hierarchy does: "/a/b" under prefix "mercury.m" is
// "mercury.m.a.b". NATS gives '.', '*' and '>' a meaning and forbids
// whitespace; every byte that is not printable ASCII, and '.', '*', '>' and
// '%' themselves, is written %XX (two upper-case hex digits), so that the
// mapping is one to one and a segment is never a wildcard.

// appendSegment appends seg, escaped, to dst.
func appendSegment(dst []byte, seg string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		if c <= ' ' || c >= 0x7f || c == '.' || c == '*' || c == '>' || c == '%' {
			dst = append(dst, '%', hex[c>>4], hex[c&0xf])
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

// subjectOf returns the subject of topic under prefix.
func subjectOf(prefix string, topic broker.Topic) string {
	dst := make([]byte, 0, len(prefix)+len(topic)+8)
	dst = append(dst, prefix...)
	for seg := range strings.SplitSeq(string(topic)[1:], "/") {
		dst = append(dst, '.')
		dst = appendSegment(dst, seg)
	}
	return string(dst)
}

// topicOf returns the topic of subject under prefix (with its dot).
func topicOf(prefix, subject string) (broker.Topic, error) {
	rest, ok := strings.CutPrefix(subject, prefix+".")
	if !ok || rest == "" {
		return "", fmt.Errorf("subject %q is not under %q", subject, prefix)
	}
	dst := make([]byte, 0, len(rest)+1)
	dst = append(dst, '/')
	for i := 0; i < len(rest); i++ {
		switch c := rest[i]; c {
		case '.':
			dst = append(dst, '/')
		case '%':
			if i+2 >= len(rest) {
				return "", fmt.Errorf("subject %q: a cut escape", subject)
			}
			v, okHi := unhex(rest[i+1])
			lo, okLo := unhex(rest[i+2])
			if !okHi || !okLo {
				return "", fmt.Errorf("subject %q: a bad escape", subject)
			}
			dst = append(dst, v<<4|lo)
			i += 2
		default:
			dst = append(dst, c)
		}
	}
	return broker.ParseTopic(string(dst))
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// filtersUnder returns the subject filters that select topic and every
// topic below it.
func filtersUnder(prefix string, topic broker.Topic) []string {
	s := subjectOf(prefix, topic)
	return []string{s, s + ".>"}
}
