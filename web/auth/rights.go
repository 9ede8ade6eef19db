package auth

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/mercury-broker/mercury/broker"
)

// Action is what a client does with a topic.
type Action uint8

// The actions, one per route (sub, pub, bus, push, pull) and admin for
// the admin API.
const (
	Sub Action = iota
	Pub
	Bus
	Push
	Pull
	Admin
	numActions
)

// Actions lists every action, in order.
var Actions = []Action{Sub, Pub, Bus, Push, Pull, Admin}

var actionNames = [numActions]string{"sub", "pub", "bus", "push", "pull", "admin"}

func (a Action) String() string {
	if a < numActions {
		return actionNames[a]
	}
	return fmt.Sprintf("action(%d)", a)
}

// ParseAction returns the action named s ("sub", "pub", …).
func ParseAction(s string) (Action, bool) {
	for i, n := range actionNames {
		if n == s {
			return Action(i), true
		}
	}
	return 0, false
}

// Everything is the prefix that covers every topic.
const Everything = broker.Topic("/")

// Rights are the topic prefixes a client may use, per action. The zero
// value allows nothing.
type Rights struct {
	prefixes [numActions][]broker.Topic
}

// AllRights returns rights that allow every action on every topic.
func AllRights() Rights {
	var r Rights
	for _, a := range Actions {
		r.prefixes[a] = []broker.Topic{Everything}
	}
	return r
}

// Allows reports whether the rights allow action a on topic t: t is one of
// the action's prefixes or lies below one, by whole segments. Everything
// ("/") covers every topic, and is the only prefix that covers the empty
// topic "" (an operation on no topic in particular, such as reloading the
// configuration).
func (r Rights) Allows(a Action, t broker.Topic) bool {
	if a >= numActions {
		return false
	}
	for _, p := range r.prefixes[a] {
		if p == Everything || (t != "" && t.Under(p)) {
			return true
		}
	}
	return false
}

// Any reports whether the rights allow action a on at least one topic.
func (r Rights) Any(a Action) bool { return a < numActions && len(r.prefixes[a]) > 0 }

// Prefixes returns the prefixes allowed for a, to explain a refusal.
func (r Rights) Prefixes(a Action) []broker.Topic {
	if a >= numActions {
		return nil
	}
	return r.prefixes[a]
}

// Describe says in words what the rights allow for a, for error messages:
// "sub on /livesys/42", "nothing".
func (r Rights) Describe(a Action) string {
	ps := r.Prefixes(a)
	if len(ps) == 0 {
		return "no " + a.String() + " right"
	}
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = string(p)
	}
	return a.String() + " on " + strings.Join(names, ", ")
}

// Spec is rights as written, in a token's "mercury" claim or in the
// config file: per action, topic prefixes that may hold placeholders
// such as {sub}. Expand turns it into Rights.
type Spec struct {
	patterns [numActions][]pattern
}

// pattern is one prefix as written: literal text and placeholders.
type pattern struct {
	text  string   // as written, for errors
	parts []string // literal, placeholder name, literal, …: odd indexes are names
}

// ErrRights is matched (with errors.Is) by every error about badly
// written rights.
var ErrRights = errors.New("auth: invalid rights")

// RightsError says what is wrong with written rights.
type RightsError struct {
	Where string // the action, or action and prefix
	Msg   string
}

func (e *RightsError) Error() string { return e.Where + ": " + e.Msg }

// Is makes errors.Is(err, ErrRights) true.
func (e *RightsError) Is(target error) bool { return target == ErrRights }

// ParseSpec reads rights as decoded from JSON or YAML: a mapping of action
// names to a list of topic prefixes, or to true (every topic) or false
// (none). A single prefix may stand without a list.
func ParseSpec(v map[string]any) (Spec, error) {
	var s Spec
	names := make([]string, 0, len(v))
	for k := range v {
		names = append(names, k)
	}
	sort.Strings(names) // the same error for the same input
	for _, name := range names {
		a, ok := ParseAction(name)
		if !ok {
			return Spec{}, &RightsError{Where: name, Msg: "unknown action (want sub, pub, bus, push, pull or admin)"}
		}
		var texts []string
		switch val := v[name].(type) {
		case bool:
			if val {
				texts = []string{string(Everything)}
			}
		case string:
			texts = []string{val}
		case []string:
			texts = val
		case []any:
			for _, item := range val {
				t, ok := item.(string)
				if !ok {
					return Spec{}, &RightsError{Where: name, Msg: fmt.Sprintf("want a list of topic prefixes, got %T %v in it", item, item)}
				}
				texts = append(texts, t)
			}
		case nil:
		default:
			return Spec{}, &RightsError{Where: name, Msg: fmt.Sprintf("want a list of topic prefixes, true or false, got %T", val)}
		}
		for _, t := range texts {
			p, err := parsePattern(t)
			if err != nil {
				return Spec{}, &RightsError{Where: fmt.Sprintf("%s %q", name, t), Msg: err.Error()}
			}
			s.patterns[a] = append(s.patterns[a], p)
		}
	}
	return s, nil
}

// ParseSpecStrings reads rights given as text, per action: each value a
// topic prefix, or "true" (every topic) or "false" (none). It is the form
// of flags and environment variables.
func ParseSpecStrings(v map[string][]string) (Spec, error) {
	m := make(map[string]any, len(v))
	for name, vals := range v {
		var list []any
		for _, s := range vals {
			switch s {
			case "true":
				list = append(list, string(Everything))
			case "false":
			default:
				list = append(list, s)
			}
		}
		m[name] = list
	}
	return ParseSpec(m)
}

// parsePattern reads a prefix such as /livesys/{sub}/status.
func parsePattern(text string) (pattern, error) {
	p := pattern{text: text}
	if text == string(Everything) {
		p.parts = []string{text}
		return p, nil
	}
	if !strings.HasPrefix(text, "/") {
		return p, errors.New("a topic prefix starts with /")
	}
	rest := text
	for {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			if strings.IndexByte(rest, '}') >= 0 {
				return p, errors.New("a } without its {")
			}
			p.parts = append(p.parts, rest)
			break
		}
		if strings.IndexByte(rest[:open], '}') >= 0 {
			return p, errors.New("a } without its {")
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return p, errors.New("a { without its }")
		}
		name := rest[open+1 : open+end]
		if !validClaimName(name) {
			return p, fmt.Errorf("placeholder {%s}: want the name of a claim, such as {sub} (letters, digits, _)", name)
		}
		p.parts = append(p.parts, rest[:open], name)
		rest = rest[open+end+1:]
	}
	// The prefix must be a topic once its placeholders are filled with a
	// plain segment.
	filled := p.fill(func(string) (string, bool) { return "x", true })
	if _, err := broker.ParseTopic(filled); err != nil {
		var te *broker.TopicError
		if errors.As(err, &te) {
			return p, errors.New(te.Reason)
		}
		return p, err
	}
	return p, nil
}

func validClaimName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// fill returns the pattern with each placeholder replaced by value(name).
func (p pattern) fill(value func(name string) (string, bool)) string {
	var b strings.Builder
	for i, part := range p.parts {
		if i%2 == 0 {
			b.WriteString(part)
			continue
		}
		v, _ := value(part)
		b.WriteString(v)
	}
	return b.String()
}

// HasPlaceholders reports whether any prefix holds a placeholder.
func (s Spec) HasPlaceholders() bool {
	for _, ps := range s.patterns {
		for _, p := range ps {
			if len(p.parts) > 1 {
				return true
			}
		}
	}
	return false
}

// maxClaimValue bounds a placeholder's value.
const maxClaimValue = 256

// Expand fills the placeholders with claims and returns the rights. A
// placeholder whose claim is missing, or whose value is not one safe topic
// segment (empty, ".", "..", a "/", a control character, invalid UTF-8,
// longer than 256 bytes), fails: the whole credential is refused rather
// than given rights it was not meant to have.
func (s Spec) Expand(claim func(name string) (string, bool)) (Rights, error) {
	var r Rights
	for a, ps := range s.patterns {
		for _, p := range ps {
			var bad error
			text := p.fill(func(name string) (string, bool) {
				v, ok := "", false
				if claim != nil {
					v, ok = claim(name)
				}
				if bad == nil {
					bad = checkSegment(name, v, ok)
				}
				return v, ok
			})
			if bad != nil {
				return Rights{}, &RightsError{Where: fmt.Sprintf("%s %q", Action(a), p.text), Msg: bad.Error()}
			}
			if text == string(Everything) {
				r.prefixes[a] = append(r.prefixes[a], Everything)
				continue
			}
			t, err := broker.ParseTopic(text)
			if err != nil {
				return Rights{}, &RightsError{Where: fmt.Sprintf("%s %q", Action(a), p.text), Msg: err.Error()}
			}
			r.prefixes[a] = append(r.prefixes[a], t)
		}
	}
	return r, nil
}

// checkSegment refuses a claim value that would not stay one segment.
func checkSegment(name, v string, ok bool) error {
	switch {
	case !ok:
		return fmt.Errorf("the claim %q it needs is missing or not a string", name)
	case v == "":
		return fmt.Errorf("the claim %q is empty", name)
	case v == "." || v == "..":
		return fmt.Errorf("the claim %q is %q", name, v)
	case len(v) > maxClaimValue:
		return fmt.Errorf("the claim %q is longer than %d bytes", name, maxClaimValue)
	case !utf8.ValidString(v):
		return fmt.Errorf("the claim %q is not valid UTF-8", name)
	}
	for _, r := range v {
		if r == '/' || r == '{' || r == '}' || r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return fmt.Errorf("the claim %q has %q in it: a placeholder fills one topic segment", name, r)
		}
	}
	return nil
}
