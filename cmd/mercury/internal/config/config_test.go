package config

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/broker"
)

const exampleFile = "../../../../mercury.example.yaml"

func TestExampleFileLoadsAndCompiles(t *testing.T) {
	c, err := Load(exampleFile, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:3000" || c.MaxMessageSize != 1<<20 || c.OutgoingQueue != 1<<20 || c.PingInterval != 30*time.Second ||
		c.LogLevel != "info" || c.LogFormat != "text" || c.AllowOrigins != nil || c.MaxConnections != 10000 || c.QueueLimit != 10000 {
		t.Fatalf("settings: %+v", c)
	}
	byBus := map[broker.Topic]Bus{}
	for _, b := range c.Buses {
		byBus[b.Bus] = b
	}
	if len(c.Buses) != 4 {
		t.Fatalf("%d buses: %+v", len(c.Buses), c.Buses)
	}
	live := byBus["/livesys"]
	wantSchema := filepath.Join(filepath.Dir(exampleFile), "examples/schemas/livesys.json")
	if live.Schema != wantSchema || live.SchemaName != "examples/schemas/livesys.json" ||
		live.History != (broker.History{Messages: 10000, Age: 24 * time.Hour}) || live.Durable || live.Line == 0 || live.SchemaLine <= live.Line {
		t.Fatalf("/livesys: %+v", live)
	}
	if q := byBus["/jobs"].Queue; q != (broker.QueuePolicy{Limit: 10000, MaxAttempts: 5, AckTimeout: 30 * time.Second, TTL: 48 * time.Hour}) {
		t.Fatalf("/jobs queue: %+v", q)
	}
	ps, reg, err := c.Compile()
	if err != nil {
		t.Fatal(err)
	}
	if ps.Lookup("/livesys/admin/7").Bus != "/livesys/admin" || !reg.Has("/livesys/admin") || reg.Has("/jobs") {
		t.Fatal("policies or schemas do not match the file")
	}
}

// load writes content as mercury.yaml in a temporary folder and loads it.
func load(t *testing.T, content string, files ...string) (*Config, error) {
	t.Helper()
	dir := t.TempDir()
	for i := 0; i+1 < len(files); i += 2 {
		path := filepath.Join(dir, files[i])
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte(files[i+1]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(dir, "mercury.yaml")
	if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir) // errors name the file as given
	return Load("mercury.yaml", nil, nil)
}

func TestFileErrorsNameLineAndKey(t *testing.T) {
	cases := []struct{ name, file, want string }{
		{"unknown top-level key", "listen: :3000\nlisten_on: :3000\n", "mercury.yaml:2: listen_on: unknown key"},
		{"unknown bus key", "buses:\n  /livesys:\n    schemma: x.json\n", "mercury.yaml:3: buses./livesys.schemma: unknown key (a bus has durable, history, queue or schema)"},
		{"unknown history key", "buses:\n  /a:\n    history: {messages: 1, ages: 1h}\n", "mercury.yaml:3: buses./a.history.ages: unknown key (want age or messages)"},
		{"not a number", "max_connections: many\n", `mercury.yaml:1: max_connections: want a whole number, got "many"`},
		{"negative", "queue_limit: -1\n", `mercury.yaml:1: queue_limit: want a whole number, got "-1"`},
		{"bad size", "max_message_size: 1MB\n", `mercury.yaml:1: max_message_size: want a size in bytes such as 1048576 or 1MiB, got "1MB"`},
		{"bad duration", "ping_interval: soon\n", `mercury.yaml:1: ping_interval: want a duration such as 30s, 5m or 48h, got "soon"`},
		{"bad choice", "log_level: loud\n", `mercury.yaml:1: log_level: want debug or info or warn or error, got "loud"`},
		{"a list for a single value", "listen:\n  - a\n  - b\n", "mercury.yaml:2: listen: want a single value, got a list"},
		{"a mapping for a list", "allow_origin: {a: b}\n", "mercury.yaml:1: allow_origin: want a single value, got a mapping"},
		{"no value", "listen:\n", "mercury.yaml:1: listen: no value"},
		{"bool of the wrong type", "buses:\n  /a:\n    durable: \"yes\"\n", `mercury.yaml:3: buses./a.durable: want true or false, got "yes"`},
		{"number of the wrong type", "buses:\n  /a:\n    history:\n      messages: lots\n", `mercury.yaml:4: buses./a.history.messages: want a whole number, got "lots"`},
		{"duration as a number", "buses:\n  /a:\n    queue: {ttl: 48}\n", `mercury.yaml:3: buses./a.queue.ttl: want a duration such as 30s, 5m or 48h, got "48"`},
		{"negative duration", "buses:\n  /a:\n    queue: {ack_timeout: -1s}\n", `mercury.yaml:3: buses./a.queue.ack_timeout: want a duration such as 30s, 5m or 48h, got "-1s"`},
		{"history not a mapping", "buses:\n  /a:\n    history: 10\n", `mercury.yaml:3: buses./a.history: want a mapping (age or messages), got "10"`},
		{"bad bus topic", "buses:\n  /a//b:\n", "mercury.yaml:2: buses./a//b: a bus is a topic prefix such as /livesys"},
		{"bus without slash", "buses:\n  livesys:\n", "mercury.yaml:2: buses.livesys: write the bus as /livesys"},
		{"bus twice", "buses:\n  /a:\n  /b:\n  /a:\n", "mercury.yaml:4: buses./a: given twice (first on line 2)"},
		{"setting twice", "listen: a\nlisten: b\n", "mercury.yaml:2: listen: given twice (first on line 1)"},
		{"buses not a mapping", "buses: [/a]\n", "mercury.yaml:1: buses: want a mapping of topic prefixes to policies, got a list"},
		{"bus not a mapping", "buses:\n  /a: yes\n", `mercury.yaml:2: buses./a: want a mapping of settings (schema, history, durable, queue), got "yes"`},
		{"empty schema", "buses:\n  /a:\n    schema: \"\"\n", `mercury.yaml:3: buses./a.schema: want the path of a JSON Schema file, got ""`},
		{"not YAML", "listen: :3000\n  bad: [\n", "mercury.yaml:2: not valid YAML"},
		{"not a mapping", "- listen\n", "mercury.yaml:1: the file must be a mapping of settings (key: value), not a list"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := load(t, c.file)
			if err == nil {
				t.Fatal("loaded")
			}
			if !strings.HasPrefix(err.Error(), c.want) {
				t.Fatalf("error %q\nwant   %q…", err, c.want)
			}
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("%v is not ErrConfig", err)
			}
		})
	}
}

func TestCompileErrorsNameTheSchemaLine(t *testing.T) {
	const file = "listen: :3000\nbuses:\n  /livesys:\n    durable: true\n    schema: schemas/livesys.json\n"
	cases := []struct {
		name  string
		files []string
		want  string
	}{
		{"missing schema file", nil, "mercury.yaml:5: buses./livesys.schema: schemas/livesys.json: failed to read: open "},
		{"schema not JSON", []string{"schemas/livesys.json", "{\n  \"type\": \"object\",,\n}"},
			"mercury.yaml:5: buses./livesys.schema: schemas/livesys.json: livesys.json:2:20: not JSON"},
		{"broken schema", []string{"schemas/livesys.json", `{"type":"objekt"}`},
			"mercury.yaml:5: buses./livesys.schema: schemas/livesys.json: not a valid JSON Schema: at /type:"},
		{"$ref to a missing file", []string{"schemas/livesys.json", `{"$ref":"defs.json"}`},
			"mercury.yaml:5: buses./livesys.schema: schemas/livesys.json: failed to read: open "},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := load(t, file, c.files...)
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = cfg.Compile()
			if err == nil || !strings.HasPrefix(err.Error(), c.want) {
				t.Fatalf("error %v\nwant %q…", err, c.want)
			}
		})
	}
}

func TestAnEmptyFileIsTheDefaults(t *testing.T) {
	for _, content := range []string{"", "# nothing\n", "---\n", "buses:\n"} {
		c, err := load(t, content)
		if err != nil {
			t.Fatalf("%q: %v", content, err)
		}
		d, _ := Load("", nil, nil)
		d.File = c.File
		if !reflect.DeepEqual(c, d) {
			t.Fatalf("%q: %+v, want the defaults %+v", content, c, d)
		}
	}
}

func TestAliasesAndNullBuses(t *testing.T) {
	c, err := load(t, "buses:\n  /a: &p\n    history: {messages: 5}\n  /b: *p\n  /c:\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Buses) != 3 || c.Buses[1].History.Messages != 5 || c.Buses[2] != (Bus{Policy: broker.Policy{Bus: "/c"}, Line: 5}) {
		t.Fatalf("%+v", c.Buses)
	}
}

func TestFlagsWinOverEnvironmentOverFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "mercury.yaml")
	os.WriteFile(file, []byte("listen: file:1\nmax_connections: 1\nqueue_limit: 1\nlog_level: warn\nallow_origin: [file.example]\n"), 0o644)
	env := map[string]string{
		"MERCURY_LISTEN":          "env:2",
		"MERCURY_MAX_CONNECTIONS": "2",
		"MERCURY_ALLOW_ORIGIN":    "a.example, b.example",
		"MERCURY_PING_INTERVAL":   "5s",
		"MERCURY_CONFIG":          file,
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	flags := RegisterFlags(fs)
	if err := fs.Parse([]string{"--listen", "flag:3", "--allow-origin", "c.example", "--allow-origin", "d.example,e.example"}); err != nil {
		t.Fatal(err)
	}
	getenv := func(k string) string { return env[k] }
	if got := flags.File(getenv); got != file {
		t.Fatalf("File = %q", got)
	}
	c, err := Load(flags.File(getenv), getenv, flags)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		what      string
		got, want any
	}{
		{"listen: flag over env over file", c.Listen, "flag:3"},
		{"max_connections: env over file", c.MaxConnections, 2},
		{"queue_limit: file over default", c.QueueLimit, 1},
		{"log_level: file", c.LogLevel, "warn"},
		{"ping_interval: env over default", c.PingInterval, 5 * time.Second},
		{"allow_origin: repeated flags replace env and file", c.AllowOrigins, []string{"c.example", "d.example", "e.example"}},
		{"max_message_size: default", c.MaxMessageSize, int64(1 << 20)},
	}
	for _, w := range want {
		if !reflect.DeepEqual(w.got, w.want) {
			t.Errorf("%s: got %v, want %v", w.what, w.got, w.want)
		}
	}
	// --config wins over MERCURY_CONFIG.
	fs = flag.NewFlagSet("serve", flag.ContinueOnError)
	flags = RegisterFlags(fs)
	fs.Parse([]string{"--config", "other.yaml"})
	if got := flags.File(getenv); got != "other.yaml" {
		t.Fatalf("File = %q", got)
	}
}

func TestBadEnvAndFlagValuesNameTheirSource(t *testing.T) {
	_, err := Load("", func(k string) string {
		if k == "MERCURY_MAX_MESSAGE_SIZE" {
			return "big"
		}
		return ""
	}, nil)
	var ce *Error
	if !errors.As(err, &ce) || ce.Flag || !strings.HasPrefix(err.Error(), `MERCURY_MAX_MESSAGE_SIZE: want a size in bytes`) {
		t.Fatalf("env: %v", err)
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	flags := RegisterFlags(fs)
	fs.Parse([]string{"--log-format", "xml"})
	_, err = Load("", nil, flags)
	if !errors.As(err, &ce) || !ce.Flag || err.Error() != `--log-format: want text or json, got "xml"` {
		t.Fatalf("flag: %v", err)
	}
}

func TestEveryFlagHasHelpDefaultAndVariable(t *testing.T) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	RegisterFlags(fs)
	fs.SetOutput(io.Discard)
	seenEnv := map[string]bool{}
	for _, s := range settings {
		f := fs.Lookup(s.Flag())
		if f == nil || f.DefValue != s.def || !strings.Contains(f.Usage, s.Env()) || (!strings.Contains(f.Usage, "`") && !s.kind.isBool) {
			t.Errorf("%s: flag %+v", s.key, f)
		}
		if seenEnv[s.Env()] {
			t.Errorf("%s: variable %s used twice", s.key, s.Env())
		}
		seenEnv[s.Env()] = true
	}
	if s, _ := find("max_message_size"); s.Flag() != "max-message-size" || s.Env() != "MERCURY_MAX_MESSAGE_SIZE" {
		t.Errorf("derived names: %s %s", s.Flag(), s.Env())
	}
}

func TestSizes(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1024": 1024, "1KiB": 1024, "2 MiB": 2 << 20, "1GiB": 1 << 30} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1MB", "MiB", "1.5MiB", "99999999999GiB"} {
		if _, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q) accepted", in)
		}
	}
}

func TestRestartListsChangedSettings(t *testing.T) {
	a, _ := Load("", nil, nil)
	b, _ := Load("", nil, nil)
	b.Listen, b.AllowOrigins = ":1", []string{"x"}
	b.Buses = []Bus{{Policy: broker.Policy{Bus: "/a"}}}
	if got := Restart(a, b); !reflect.DeepEqual(got, []string{"listen", "allow_origin"}) {
		t.Fatalf("Restart = %q", got)
	}
}

func TestTrustedProxiesAreChecked(t *testing.T) {
	_, err := load(t, "trusted_proxies: [10.0.0.0/8, proxy.example.com]\n")
	if err == nil || !strings.Contains(err.Error(), "mercury.yaml:1: trusted_proxies") || !strings.Contains(err.Error(), "proxy.example.com") {
		t.Errorf("a name in trusted_proxies: %v", err)
	}
}

func TestQueueMaxBytesAndMaxMemory(t *testing.T) {
	c, err := load(t, "max_memory: 512MiB\nbuses:\n  /jobs:\n    queue: {max_bytes: 8MiB}\n  /small:\n    queue: {max_bytes: 4096}\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxMemory != 512<<20 || c.Buses[0].Queue.MaxBytes != 8<<20 || c.Buses[1].Queue.MaxBytes != 4096 {
		t.Fatalf("max_memory %d, buses %+v", c.MaxMemory, c.Buses)
	}
	_, err = load(t, "buses:\n  /jobs:\n    queue: {max_bytes: lots}\n")
	if want := `mercury.yaml:3: buses./jobs.queue.max_bytes: want a size in bytes such as 1048576 or 1MiB, got "lots"`; err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %s", err, want)
	}
}

// The example file says it shows every setting at its default: a default
// changed in the settings table must change there too.
func TestExampleFileShowsTheDefaults(t *testing.T) {
	example, err := Load(exampleFile, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defaults, err := load(t, "")
	if err != nil {
		t.Fatal(err)
	}
	if differ := Restart(example, defaults); len(differ) > 0 {
		t.Fatalf("mercury.example.yaml differs from the defaults in %v", differ)
	}
}
