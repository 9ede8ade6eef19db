package broker

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Topic is a validated slash path such as "/livesys/42/cmd": a leading
// slash, then one or more non-empty segments separated by slashes.
type Topic string

// ErrInvalidTopic is matched (with errors.Is) by every *TopicError.
var ErrInvalidTopic = errors.New("broker: invalid topic")

// TopicError says why a topic was refused.
type TopicError struct {
	Topic  string // the topic as given
	Reason string // what is wrong with it
}

func (e *TopicError) Error() string {
	return fmt.Sprintf("invalid topic %q: %s", e.Topic, e.Reason)
}

// Is makes errors.Is(err, ErrInvalidTopic) true.
func (e *TopicError) Is(target error) bool { return target == ErrInvalidTopic }

// TopicLimits bounds the topics ParseTopic accepts. The zero value means
// the defaults: 1024 bytes and 32 segments.
type TopicLimits struct {
	MaxLength int // bytes, the leading slash included
	MaxDepth  int // segments
}

// Default topic limits.
const (
	DefaultMaxTopicLength = 1024
	DefaultMaxTopicDepth  = 32
)

func (l TopicLimits) maxLength() int {
	if l.MaxLength > 0 {
		return l.MaxLength
	}
	return DefaultMaxTopicLength
}

func (l TopicLimits) maxDepth() int {
	if l.MaxDepth > 0 {
		return l.MaxDepth
	}
	return DefaultMaxTopicDepth
}

// ParseTopic validates s with the default limits. See TopicLimits.Parse.
func ParseTopic(s string) (Topic, error) { return TopicLimits{}.Parse(s) }

// Parse validates s and returns it as a Topic. A missing leading slash is
// added. Empty segments ("a//b", a trailing slash), "." and ".." segments,
// control characters and invalid UTF-8 are refused, as are topics over the
// limits.
func (l TopicLimits) Parse(s string) (Topic, error) {
	fail := func(reason string, args ...any) (Topic, error) {
		return "", &TopicError{Topic: s, Reason: fmt.Sprintf(reason, args...)}
	}
	t := s
	if !strings.HasPrefix(t, "/") {
		t = "/" + t
	}
	if t == "/" {
		return fail("it is empty")
	}
	if len(t) > l.maxLength() {
		return fail("it is %d bytes long, the limit is %d", len(t), l.maxLength())
	}
	if !utf8.ValidString(t) {
		return fail("it is not valid UTF-8")
	}
	depth := 0
	for seg := range strings.SplitSeq(t[1:], "/") {
		depth++
		if depth > l.maxDepth() {
			return fail("it has more than %d segments", l.maxDepth())
		}
		switch seg {
		case "":
			return fail("segment %d is empty", depth)
		case ".", "..":
			return fail("segment %d is %q", depth, seg)
		}
		for i, r := range seg {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
				return fail("segment %d has the control character %U at byte %d", depth, r, i)
			}
		}
	}
	return Topic(t), nil
}

// Segments returns the topic's segments: "/a/b" gives ["a" "b"].
func (t Topic) Segments() []string {
	if len(t) < 2 {
		return nil
	}
	return strings.Split(string(t[1:]), "/")
}

// Under reports whether t is prefix itself or lies below it, by whole
// segments: "/a/b" is under "/a" but "/ab" is not.
func (t Topic) Under(prefix Topic) bool {
	if !strings.HasPrefix(string(t), string(prefix)) {
		return false
	}
	return len(t) == len(prefix) || t[len(prefix)] == '/' || prefix == "/"
}
