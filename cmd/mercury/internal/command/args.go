package command

import (
	"flag"
	"fmt"
	"strings"
)

// ParseArgs parses flags wherever they stand among the arguments, as
// people type them ("mercury sub /x --count 1"), and returns the
// arguments that are not flags. After "--" everything is an argument.
func ParseArgs(fs *flag.FlagSet, args []string, io Stdio) ([]string, error) {
	var positional []string
	for {
		if err := ParseFlags(fs, args, io); err != nil {
			return nil, err
		}
		rest := fs.Args()
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// HeaderList is the repeatable --header K:V flag.
type HeaderList [][2]string

func (h *HeaderList) String() string {
	parts := make([]string, len(*h))
	for i, kv := range *h {
		parts[i] = kv[0] + ": " + kv[1]
	}
	return strings.Join(parts, ", ")
}

func (h *HeaderList) Set(v string) error {
	k, val, ok := strings.Cut(v, ":")
	k = strings.TrimSpace(k)
	if !ok || k == "" || strings.ContainsAny(k, " \t") {
		return fmt.Errorf("want NAME:VALUE, for example 'X-Request-Id: 42'")
	}
	*h = append(*h, [2]string{k, strings.TrimSpace(val)})
	return nil
}

// RepeatedFlag is a flag that may be given more than once.
type RepeatedFlag []string

func (r *RepeatedFlag) String() string     { return strings.Join(*r, ", ") }
func (r *RepeatedFlag) Set(v string) error { *r = append(*r, v); return nil }
