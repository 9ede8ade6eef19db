package config

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// fileValues is what a config file says: the raw values of its settings
// and its buses.
type fileValues struct {
	values  map[string]fileValue
	buses   []Bus
	apiKeys []APIKey
}

// fileValue is a setting's raw value(s) in the file, and its line.
type fileValue struct {
	vals []string
	line int
}

// fileParser walks a config file's YAML nodes.
type fileParser struct {
	name string // the file, for errors
	dir  string // its folder: schema paths are relative to it
	out  *fileValues
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): `)

// parse reads a config file's contents; name is its path.
func parse(name string, data []byte) (*fileValues, error) {
	p := &fileParser{name: name, dir: dirOf(name), out: &fileValues{values: map[string]fileValue{}}}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		msg := err.Error()
		if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
			line, _ := strconv.Atoi(m[1])
			return nil, &Error{Where: fmt.Sprintf("%s:%d", name, line), Msg: "not valid YAML: " + msg[len(m[0]):]}
		}
		return nil, &Error{Where: name, Msg: "not valid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
	}
	if len(doc.Content) == 0 {
		return p.out, nil // an empty file: the defaults
	}
	root := resolve(doc.Content[0])
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return p.out, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, p.errorf(root, "", "the file must be a mapping of settings (key: value), not %s", describe(root))
	}
	if err := p.settings(root, ""); err != nil {
		return nil, err
	}
	return p.out, nil
}

// settings reads a mapping of settings; prefix is the dotted path of the
// mapping ("" at the top).
func (p *fileParser) settings(m *yaml.Node, prefix string) error {
	return p.eachPair(m, prefix, func(key string, k, v *yaml.Node) error {
		path := prefix + key
		if s, ok := find(path); ok {
			vals, err := p.scalars(v, path, s.kind.list)
			if err != nil {
				return err
			}
			p.out.values[path] = fileValue{vals: vals, line: v.Line}
			return nil
		}
		switch {
		case path == "buses":
			return p.buses(v)
		case path == "auth.api_keys":
			return p.apiKeys(v)
		case isSection(path):
			if v.Kind != yaml.MappingNode {
				return p.errorf(v, path, "want a mapping, got %s", describe(v))
			}
			return p.settings(v, path+".")
		}
		return p.errorf(k, path, "unknown key")
	})
}

// eachPair calls fn for each key and value of mapping m, refusing
// duplicate and non-scalar keys.
func (p *fileParser) eachPair(m *yaml.Node, prefix string, fn func(key string, k, v *yaml.Node) error) error {
	seen := make(map[string]int, len(m.Content)/2)
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := resolve(m.Content[i]), resolve(m.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			return p.errorf(k, strings.TrimSuffix(prefix, "."), "a key must be a plain word, not %s", describe(k))
		}
		if first, dup := seen[k.Value]; dup {
			return p.errorf(k, prefix+k.Value, "given twice (first on line %d)", first)
		}
		seen[k.Value] = k.Line
		if err := fn(k.Value, k, v); err != nil {
			return err
		}
	}
	return nil
}

// scalars returns the value of a setting: one scalar or, for a list, a
// sequence of scalars too.
func (p *fileParser) scalars(v *yaml.Node, key string, isList bool) ([]string, error) {
	switch {
	case v.Kind == yaml.ScalarNode && v.Tag == "!!null":
		if isList {
			return nil, nil
		}
		return nil, p.errorf(v, key, "no value")
	case v.Kind == yaml.ScalarNode:
		return []string{v.Value}, nil
	case v.Kind == yaml.SequenceNode && isList:
		vals := make([]string, 0, len(v.Content))
		for _, item := range v.Content {
			item = resolve(item)
			if item.Kind != yaml.ScalarNode {
				return nil, p.errorf(item, key, "want a list of plain values, got %s in it", describe(item))
			}
			vals = append(vals, item.Value)
		}
		return vals, nil
	}
	return nil, p.errorf(v, key, "want a single value, got %s", describe(v))
}

func (p *fileParser) errorf(n *yaml.Node, key, format string, args ...any) error {
	return &Error{Where: fmt.Sprintf("%s:%d", p.name, n.Line), Key: key, Msg: fmt.Sprintf(format, args...)}
}

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// describe names a node's kind for an error.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return strconv.Quote(n.Value)
	}
	return "something else"
}
