package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ErrConfig is matched (with errors.Is) by every error about a bad
// setting, in the file, the environment or the flags.
var ErrConfig = errors.New("config: invalid configuration")

// Error is a bad setting, naming where it came from: "mercury.yaml:12",
// "MERCURY_LISTEN" or "--listen".
type Error struct {
	Where string // file:line, variable or flag
	Key   string // the setting: "listen", "buses./livesys.schema"
	Msg   string
	Flag  bool // it came from a flag: a usage error
}

func (e *Error) Error() string {
	if e.Key == "" {
		return e.Where + ": " + e.Msg
	}
	return fmt.Sprintf("%s: %s: %s", e.Where, e.Key, e.Msg)
}

// Is makes errors.Is(err, ErrConfig) true.
func (e *Error) Is(target error) bool { return target == ErrConfig }

// Flags holds the values of the settings' flags, as given.
type Flags struct {
	fs     *flag.FlagSet
	config *string
	values map[string]*flagValue
}

// flagValue is a setting's flag: it records what was given, parsing is
// Load's job, the same for every source.
type flagValue struct {
	vals   []string
	list   bool
	isBool bool
}

// IsBoolFlag lets a boolean setting's flag stand alone: --allow-anonymous.
func (v *flagValue) IsBoolFlag() bool { return v.isBool }

func (v *flagValue) String() string {
	if v == nil {
		return ""
	}
	return strings.Join(v.vals, ",")
}

func (v *flagValue) Set(s string) error {
	if v.list {
		v.vals = append(v.vals, s)
	} else {
		v.vals = []string{s}
	}
	return nil
}

// RegisterFlags defines on fs a flag for every setting, and --config.
func RegisterFlags(fs *flag.FlagSet) *Flags {
	f := &Flags{fs: fs, values: make(map[string]*flagValue, len(settings))}
	f.config = fs.String("config", "", "YAML config `FILE` (also MERCURY_CONFIG); flags win over the environment, the environment over the file")
	for _, s := range settings {
		v := &flagValue{list: s.kind.list, isBool: s.kind.isBool}
		fs.Var(v, s.Flag(), s.help+" (also "+s.Env()+")")
		fs.Lookup(s.Flag()).DefValue = s.def
		f.values[s.key] = v
	}
	return f
}

// File returns the config file named by --config or MERCURY_CONFIG.
func (f *Flags) File(getenv func(string) string) string {
	if *f.config != "" {
		return *f.config
	}
	return getenv("MERCURY_CONFIG")
}

// Load builds the configuration from the defaults, the file (when given),
// the environment (getenv; nil for none) and the flags (nil for none).
func Load(file string, getenv func(string) string, flags *Flags) (*Config, error) {
	fv := &fileValues{values: map[string]fileValue{}}
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("failed to read the config file: %w", err)
		}
		if fv, err = parse(file, data); err != nil {
			return nil, err
		}
	}
	c := &Config{File: file, Buses: fv.buses, origins: map[string]origin{}}
	c.Auth.APIKeys = fv.apiKeys
	for _, s := range settings {
		if err := s.kind.parse(c, []string{s.def}); err != nil {
			panic(fmt.Sprintf("config: the default of %s does not parse: %v", s.key, err))
		}
		if v, ok := fv.values[s.key]; ok {
			if s.kind.paths {
				v.vals = relativeTo(dirOf(file), v.vals)
			}
			o := origin{where: fmt.Sprintf("%s:%d", file, v.line), inFile: true}
			if err := s.kind.parse(c, v.vals); err != nil {
				return nil, o.error(s.key, err.Error())
			}
			c.origins[s.key] = o
		}
		if getenv != nil {
			if v := getenv(s.Env()); v != "" {
				o := origin{where: s.Env()}
				if err := s.kind.parse(c, []string{v}); err != nil {
					return nil, o.error(s.key, err.Error())
				}
				c.origins[s.key] = o
			}
		}
		if flags != nil {
			if v := flags.values[s.key]; len(v.vals) > 0 {
				o := origin{where: "--" + s.Flag(), flag: true}
				if err := s.kind.parse(c, v.vals); err != nil {
					return nil, o.error(s.key, err.Error())
				}
				c.origins[s.key] = o
			}
		}
	}
	return c, nil
}

// origin is where a setting's value came from.
type origin struct {
	where  string // file:line, variable or flag
	inFile bool
	flag   bool
}

// error is a bad value of setting key from o. A variable or a flag names
// the setting itself; a line of the file does not.
func (o origin) error(key, msg string) *Error {
	e := &Error{Where: o.where, Msg: msg, Flag: o.flag}
	if o.inFile || o.where == "" {
		e.Key = key
	}
	if e.Where == "" {
		e.Where = "default"
	}
	return e
}

// Invalid is the error for a value of setting key that the broker cannot
// use, found after Load: it names where the value was set, as Load's own
// errors do (a flag's is a usage error).
func (c *Config) Invalid(key, format string, args ...any) error {
	return c.origins[key].error(key, fmt.Sprintf(format, args...))
}

// SetUnder lists the settings whose keys start with prefix that were given
// in the file, the environment or a flag, rather than left at their
// defaults, in the order of the settings' table.
func (c *Config) SetUnder(prefix string) []string {
	var keys []string
	for _, s := range settings {
		if _, ok := c.origins[s.key]; ok && strings.HasPrefix(s.key, prefix) {
			keys = append(keys, s.key)
		}
	}
	return keys
}

// relativeTo resolves relative paths against dir (the config file's
// folder), as schema paths are.
func relativeTo(dir string, vals []string) []string {
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = v
		if v != "" && !filepath.IsAbs(v) && !strings.Contains(v, ",") {
			out[i] = filepath.Join(dir, v)
		}
	}
	return out
}
