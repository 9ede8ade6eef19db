// Package config loads Mercury's configuration: defaults, then a YAML
// file, then environment variables, then command-line flags, each winning
// over the one before.
//
// Every setting is one row of the settings table (settings.go): its key in
// the file, from which its flag (--max-message-size) and its environment
// variable (MERCURY_MAX_MESSAGE_SIZE) are derived, its default, its help
// and its parser. A dotted key ("tls.cert") is a nested mapping in the
// file. The file's "buses" mapping (buses.go) declares the buses: a topic
// prefix and its policy.
//
// The file is read through yaml.v3's Node API so that an unknown key or a
// value of the wrong type is an error naming the file, the line and the
// key: "mercury.yaml:12: buses./livesys.schemma: unknown key".
package config
