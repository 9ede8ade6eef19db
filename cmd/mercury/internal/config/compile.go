package config

import (
	"errors"
	"fmt"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/schema"
)

// Compile builds what the buses need at run time: their policies and
// their compiled schemas. An error names the config file's line.
func (c *Config) Compile() (*broker.Policies, *schema.Registry, error) {
	policies := make([]broker.Policy, 0, len(c.Buses))
	var sources []schema.Source
	for _, b := range c.Buses {
		policies = append(policies, b.Policy)
		if b.Schema != "" {
			sources = append(sources, schema.Source{Bus: string(b.Bus), File: b.Schema})
		}
	}
	ps, err := broker.NewPolicies(policies)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", c.File, err)
	}
	reg, err := schema.Compile(sources)
	if err != nil {
		var ce *schema.CompileError
		if errors.As(err, &ce) {
			for _, b := range c.Buses {
				if string(b.Bus) == ce.Bus {
					return nil, nil, &Error{Where: fmt.Sprintf("%s:%d", c.File, b.SchemaLine),
						Key: "buses." + string(b.Bus) + ".schema", Msg: fmt.Sprintf("%s: %v", b.SchemaName, ce.Err)}
				}
			}
		}
		return nil, nil, err
	}
	return ps, reg, nil
}
