package config

import (
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mercury-broker/mercury/broker"
)

// Bus is one bus of the config file: a topic prefix and its policy.
type Bus struct {
	broker.Policy
	// Schema is the path of the bus's JSON Schema, resolved against the
	// config file's folder; "" for a bus that accepts anything.
	Schema string
	// SchemaName is the path as written in the file.
	SchemaName string
	// Line is where the bus is declared; SchemaLine where its schema is.
	Line, SchemaLine int
}

// busKeys reads the keys of one bus. Later settings of a bus (rights,
// slow-consumer policy …) are one more row.
var busKeys = map[string]func(p *fileParser, v *yaml.Node, key string, b *Bus) error{
	"schema": func(p *fileParser, v *yaml.Node, key string, b *Bus) error {
		if v.Kind != yaml.ScalarNode || v.Tag == "!!null" || v.Value == "" {
			return p.errorf(v, key, "want the path of a JSON Schema file, got %s", describe(v))
		}
		b.SchemaName, b.SchemaLine = v.Value, v.Line
		b.Schema = v.Value
		if !filepath.IsAbs(b.Schema) {
			b.Schema = filepath.Join(p.dir, b.Schema)
		}
		return nil
	},
	"durable": func(p *fileParser, v *yaml.Node, key string, b *Bus) error {
		return p.boolean(v, key, &b.Durable)
	},
	"history": func(p *fileParser, v *yaml.Node, key string, b *Bus) error {
		return p.section(v, key, map[string]func(*yaml.Node, string) error{
			"messages": func(v *yaml.Node, key string) error { return p.number(v, key, &b.History.Messages) },
			"age":      func(v *yaml.Node, key string) error { return p.duration(v, key, &b.History.Age) },
		})
	},
	"queue": func(p *fileParser, v *yaml.Node, key string, b *Bus) error {
		q := &b.Queue
		return p.section(v, key, map[string]func(*yaml.Node, string) error{
			"limit":        func(v *yaml.Node, key string) error { return p.number(v, key, &q.Limit) },
			"max_bytes":    func(v *yaml.Node, key string) error { return p.bytes(v, key, &q.MaxBytes) },
			"max_attempts": func(v *yaml.Node, key string) error { return p.number(v, key, &q.MaxAttempts) },
			"ack_timeout":  func(v *yaml.Node, key string) error { return p.duration(v, key, &q.AckTimeout) },
			"ttl":          func(v *yaml.Node, key string) error { return p.duration(v, key, &q.TTL) },
		})
	},
}

// buses reads the "buses" mapping: topic prefix → policy.
func (p *fileParser) buses(m *yaml.Node) error {
	if m.Kind == yaml.ScalarNode && m.Tag == "!!null" {
		return nil
	}
	if m.Kind != yaml.MappingNode {
		return p.errorf(m, "buses", "want a mapping of topic prefixes to policies, got %s", describe(m))
	}
	return p.eachPair(m, "buses.", func(name string, k, v *yaml.Node) error {
		key := "buses." + name
		topic, err := broker.ParseTopic(name)
		if err != nil {
			return p.errorf(k, key, "a bus is a topic prefix such as /livesys: %v", err)
		}
		if string(topic) != name {
			return p.errorf(k, key, "write the bus as %s", topic)
		}
		b := Bus{Policy: broker.Policy{Bus: topic}, Line: k.Line}
		if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
			p.out.buses = append(p.out.buses, b) // a bus with the defaults
			return nil
		}
		if v.Kind != yaml.MappingNode {
			return p.errorf(v, key, "want a mapping of settings (schema, history, durable, queue), got %s", describe(v))
		}
		err = p.eachPair(v, key+".", func(name string, k, v *yaml.Node) error {
			read, ok := busKeys[name]
			if !ok {
				return p.errorf(k, key+"."+name, "unknown key (a bus has %s)", keysOf(busKeys))
			}
			return read(p, v, key+"."+name, &b)
		})
		if err != nil {
			return err
		}
		p.out.buses = append(p.out.buses, b)
		return nil
	})
}

// section reads a mapping whose keys are all known.
func (p *fileParser) section(m *yaml.Node, key string, keys map[string]func(*yaml.Node, string) error) error {
	if m.Kind != yaml.MappingNode {
		return p.errorf(m, key, "want a mapping (%s), got %s", keysOf(keys), describe(m))
	}
	return p.eachPair(m, key+".", func(name string, k, v *yaml.Node) error {
		read, ok := keys[name]
		if !ok {
			return p.errorf(k, key+"."+name, "unknown key (want %s)", keysOf(keys))
		}
		return read(v, key+"."+name)
	})
}

func (p *fileParser) boolean(v *yaml.Node, key string, out *bool) error {
	if v.Kind == yaml.ScalarNode && v.Tag == "!!bool" {
		if b, err := strconv.ParseBool(strings.ToLower(v.Value)); err == nil {
			*out = b
			return nil
		}
	}
	return p.errorf(v, key, "want true or false, got %s", describe(v))
}

func (p *fileParser) number(v *yaml.Node, key string, out *int) error {
	if v.Kind == yaml.ScalarNode && v.Tag == "!!int" {
		if n, err := strconv.Atoi(v.Value); err == nil && n >= 0 {
			*out = n
			return nil
		}
	}
	return p.errorf(v, key, "want a whole number, got %s", describe(v))
}

// bytes reads a size: a number of bytes, or a string such as 64MiB.
func (p *fileParser) bytes(v *yaml.Node, key string, out *int64) error {
	if v.Kind == yaml.ScalarNode && (v.Tag == "!!int" || v.Tag == "!!str") {
		n, err := parseBytes(v.Value)
		if err != nil {
			return p.errorf(v, key, "%v", err)
		}
		*out = n
		return nil
	}
	return p.errorf(v, key, "want a size in bytes such as 1048576 or 64MiB, got %s", describe(v))
}

func (p *fileParser) duration(v *yaml.Node, key string, out *time.Duration) error {
	if v.Kind == yaml.ScalarNode && v.Tag == "!!str" {
		d, err := parseDuration(v.Value)
		if err != nil {
			return p.errorf(v, key, "%v", err)
		}
		*out = d
		return nil
	}
	return p.errorf(v, key, "want a duration such as 30s, 5m or 48h, got %s", describe(v))
}

func keysOf[V any](m map[string]V) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) == 1 {
		return keys[0]
	}
	return strings.Join(keys[:len(keys)-1], ", ") + " or " + keys[len(keys)-1]
}

func dirOf(file string) string { return filepath.Dir(file) }
