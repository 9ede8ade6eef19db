package test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mercury-broker/mercury/web/client"
)

// A config file with the example schemas: /livesys (commands, "$ref" to
// defs.json and its formats), the stricter /livesys/admin, /validation,
// and /livesys/free, a nested bus without a schema.
const busesConfig = `# test config
buses:
  /livesys:
    schema: schemas/livesys.json
    history: {messages: 100, age: 1h}
  /livesys/admin:
    schema: schemas/livesys-admin.json
  /livesys/free:
  /validation:
    schema: schemas/validation.json
`

// writeConfig writes content as mercury.yaml into a new folder, with a
// copy of the example schemas in schemas/, and returns the file's path.
func writeConfig(t testing.TB, content string) string {
	t.Helper()
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "schemas"), 0o755)
	entries, err := os.ReadDir("../examples/schemas")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join("../examples/schemas", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, "schemas", e.Name()), string(data))
	}
	file := filepath.Join(dir, "mercury.yaml")
	writeFile(t, file, content)
	return file
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

const (
	uuid         = "6f1c1a4e-8d7b-4f5e-9a51-3c0f1e2d4b6a"
	goodCommand  = `{"cmd":"reboot","id":"` + uuid + `","sent":"2026-11-24T11:00:00Z","by":"ops@example.com"}`
	adminCommand = `{"cmd":"wipe","id":"` + uuid + `","sent":"2026-11-24T11:00:00Z","by":"ops@example.com","reason":"decommissioned"}`
	goodResult   = `{"run":"` + uuid + `","host":"build-7.example.com","suite":"smoke","result":"pass","started":"2026-11-24T11:00:00Z","finished":"2026-11-24T11:05:00Z"}`
)

// refusal is the wire form of a refused message.
type refusal struct {
	Error struct {
		Code    string `json:"code"`
		Topic   string `json:"topic"`
		Bus     string `json:"bus"`
		Message string `json:"message"`
		Details []struct {
			At      string `json:"at"`
			Schema  string `json:"schema"`
			Offset  *int   `json:"offset"`
			Message string `json:"message"`
		} `json:"details"`
	} `json:"error"`
}

func parseRefusal(t testing.TB, data string) refusal {
	t.Helper()
	var r refusal
	if err := json.Unmarshal([]byte(data), &r); err != nil || r.Error.Code == "" {
		t.Fatalf("not an error: %q (%v)", data, err)
	}
	return r
}

// invalid is one kind of invalid message and what its refusal must say.
type invalid struct {
	name, payload string
	binary        bool
	code          string
	at, schema    string // of the first detail
	offset        int    // for code json
}

var invalidCommands = []invalid{
	{name: "enum", payload: `{"cmd":"dance","id":"` + uuid + `","sent":"2026-11-24T11:00:00Z"}`, code: "schema", at: "/cmd", schema: "#/properties/cmd/enum"},
	{name: "required", payload: `{"cmd":"reboot"}`, code: "schema", at: "", schema: "#/required"},
	{name: "uuid format through $ref", payload: `{"cmd":"reboot","id":"42","sent":"2026-11-24T11:00:00Z"}`, code: "schema", at: "/id", schema: "defs.json#/$defs/uuid/format"},
	{name: "date-time format", payload: `{"cmd":"reboot","id":"` + uuid + `","sent":"24/11/2026"}`, code: "schema", at: "/sent", schema: "defs.json#/$defs/timestamp/format"},
	{name: "email format", payload: `{"cmd":"reboot","id":"` + uuid + `","sent":"2026-11-24T11:00:00Z","by":"root"}`, code: "schema", at: "/by", schema: "defs.json#/$defs/email/format"},
	{name: "type", payload: `{"cmd":"run","id":"` + uuid + `","sent":"2026-11-24T11:00:00Z","timeout":"soon"}`, code: "schema", at: "/timeout", schema: "#/properties/timeout/type"},
	{name: "not JSON", payload: `{"cmd": reboot}`, code: "json", offset: 8},
	{name: "binary", payload: goodCommand, binary: true, code: "binary"},
}

func checkRefusal(t testing.TB, c invalid, topic string, r refusal) {
	t.Helper()
	e := r.Error
	if e.Code != c.code || e.Topic != topic || e.Bus != "/livesys" || e.Message == "" {
		t.Errorf("%s: refusal %+v", c.name, e)
		return
	}
	switch c.code {
	case "schema":
		if len(e.Details) == 0 || e.Details[0].At != c.at || e.Details[0].Schema != c.schema || e.Details[0].Message == "" {
			t.Errorf("%s: details %+v, want at %q schema %q", c.name, e.Details, c.at, c.schema)
		}
	case "json":
		if len(e.Details) != 1 || e.Details[0].Offset == nil || *e.Details[0].Offset != c.offset {
			t.Errorf("%s: details %+v, want offset %d", c.name, e.Details, c.offset)
		}
	}
}

func TestSchemaBusRefusesOverWebSocketAndDeliversTheRest(t *testing.T) {
	b := startBroker(t, "--config", writeConfig(t, busesConfig))
	sub := dial(t, b.WS+"/sub/livesys", nil)
	waitFor(t, "subscribed", func() bool {
		post(t, b.HTTP+"/pub/livesys/free", "probe")
		return readText(t, sub) == "probe"
	})
	pub := dial(t, b.WS+"/pub/livesys/42", nil)
	ctx := context.Background()
	for _, c := range invalidCommands {
		var err error
		if c.binary {
			err = pub.WriteBinary(ctx, []byte(c.payload))
		} else {
			err = pub.WriteText(ctx, c.payload)
		}
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		checkRefusal(t, c, "/livesys/42", parseRefusal(t, readText(t, pub)))
	}
	// The same connection still publishes; the subscriber got nothing
	// invalid: the valid message is the next thing it reads.
	if err := pub.WriteText(ctx, goodCommand); err != nil {
		t.Fatal(err)
	}
	if got := readText(t, sub); got != goodCommand {
		t.Fatalf("subscriber got %q", got)
	}
}

func TestSchemaBusRefusesOverHTTPWith422(t *testing.T) {
	b := startBroker(t, "--config", writeConfig(t, busesConfig))
	sub := dial(t, b.WS+"/sub/livesys", nil)
	waitFor(t, "subscribed", func() bool {
		post(t, b.HTTP+"/pub/livesys/free", "probe")
		return readText(t, sub) == "probe"
	})
	for _, c := range invalidCommands {
		contentType := ""
		if c.binary {
			contentType = "application/octet-stream"
		}
		for _, pattern := range []string{"pub", "bus", "push"} {
			resp, err := client.Post(context.Background(), nil, b.HTTP+"/"+pattern+"/livesys/42", contentType, []byte(c.payload), nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != http.StatusUnprocessableEntity {
				t.Errorf("%s on /%s: %d %s", c.name, pattern, resp.Status, resp.Body)
				continue
			}
			checkRefusal(t, c, "/livesys/42", parseRefusal(t, string(resp.Body)))
		}
	}
	if resp := post(t, b.HTTP+"/pub/livesys/42", goodCommand); resp.Status != 200 || len(resp.Body) != 0 {
		t.Fatalf("valid POST = %d %q", resp.Status, resp.Body)
	}
	if got := readText(t, sub); got != goodCommand {
		t.Fatalf("subscriber got %q", got)
	}
}

func TestNestedBusesHaveTheirOwnSchemas(t *testing.T) {
	b := startBroker(t, "--config", writeConfig(t, busesConfig))
	cases := []struct {
		topic, body string
		status      int
		bus         string // the bus that refuses
	}{
		{"/livesys/admin/7", adminCommand, 200, ""},
		{"/livesys/admin/7", goodCommand, 422, "/livesys/admin"}, // the longest prefix's schema wins
		{"/livesys/admin", goodCommand, 422, "/livesys/admin"},
		{"/livesys/administer", goodCommand, 200, ""}, // whole segments: under /livesys
		{"/livesys/7", adminCommand, 422, "/livesys"},
		{"/livesys/free/7", "no schema here", 200, ""},
		{"/validation/build-7", goodResult, 200, ""},
		{"/validation/build-7", goodCommand, 422, "/validation"},
		{"/livesysX", "under no bus", 200, ""},
	}
	for _, c := range cases {
		resp := post(t, b.HTTP+"/pub"+c.topic, c.body)
		if resp.Status != c.status {
			t.Errorf("POST /pub%s %.30s… = %d %s, want %d", c.topic, c.body, resp.Status, resp.Body, c.status)
			continue
		}
		if c.status == 422 {
			if r := parseRefusal(t, string(resp.Body)); r.Error.Bus != c.bus || r.Error.Topic != c.topic {
				t.Errorf("%s: refused by bus %q for topic %q, want %q", c.topic, r.Error.Bus, r.Error.Topic, c.bus)
			}
		}
	}
}

func TestBusesAPIEndToEnd(t *testing.T) {
	b := startBroker(t, "--config", writeConfig(t, busesConfig))
	resp, err := http.Get(b.HTTP + "/api/buses")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`"bus":"/livesys","schema":"livesys.json","schema_url":"/api/buses/schema?bus=%2Flivesys","documents":["livesys.json","defs.json"],"history":{"messages":100,"age":"1h0m0s"}`,
		`{"bus":"/livesys/free","durable":false}`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("GET /api/buses lacks %s:\n%s", want, body)
		}
	}
	resp, err = http.Get(b.HTTP + "/api/buses/schema?bus=/livesys")
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want, _ := os.ReadFile("../examples/schemas/livesys.json")
	if resp.StatusCode != 200 || string(doc) != string(want) {
		t.Fatalf("GET /api/buses/schema = %d %.100s", resp.StatusCode, doc)
	}
	resp, err = http.Get(b.HTTP + "/api/buses/schema?bus=/livesys/free")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("a bus without schema: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// The third-party client (Node's ws) publishing gets the error frame as a
// plain text frame, and goes on publishing.
func TestThirdPartyClientGetsTheErrorFrame(t *testing.T) {
	b := startBroker(t, "--config", writeConfig(t, busesConfig))
	sub := dial(t, b.WS+"/sub/livesys", nil)
	waitFor(t, "subscribed", func() bool {
		post(t, b.HTTP+"/pub/livesys/free", "probe")
		return readText(t, sub) == "probe"
	})
	pub := startNodeClient(t, b.WS+"/pub/livesys/42")
	pub.waitOpen(t)
	pub.send(t, `{"cmd":"dance","id":"`+uuid+`","sent":"2026-11-24T11:00:00Z"}`)
	checkRefusal(t, invalidCommands[0], "/livesys/42", parseRefusal(t, pub.nextText(t)))
	pub.send(t, "binary:"+"7b7d") // {} as a binary frame
	if r := parseRefusal(t, pub.nextText(t)); r.Error.Code != "binary" {
		t.Fatalf("%+v", r)
	}
	pub.send(t, goodCommand)
	if got := readText(t, sub); got != goodCommand {
		t.Fatalf("subscriber got %q", got)
	}
}

// A raw client that never reads what the broker sends it (as the Perl
// broker's publishers do) is not disturbed by error frames: its valid
// messages keep flowing and its connection stays open.
func TestRawClientIgnoringErrorFramesKeepsWorking(t *testing.T) {
	b := startBroker(t, "--config", writeConfig(t, busesConfig))
	sub := dial(t, b.WS+"/sub/livesys", nil)
	waitFor(t, "subscribed", func() bool {
		post(t, b.HTTP+"/pub/livesys/free", "probe")
		return readText(t, sub) == "probe"
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	raw, _, err := websocket.Dial(ctx, b.WS+"/pub/livesys/42", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.CloseNow()
	const rounds = 200
	for i := range rounds {
		if err := raw.Write(ctx, websocket.MessageText, []byte(`{"cmd":"dance"}`)); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		if err := raw.Write(ctx, websocket.MessageText, []byte(goodCommand)); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	for i := range rounds {
		if got := readText(t, sub); got != goodCommand {
			t.Fatalf("message %d: subscriber got %q", i, got)
		}
	}
	// Still open: now it reads, and finds its error frames waiting.
	_, data, err := raw.Read(ctx)
	if err != nil {
		t.Fatalf("the ignoring client's connection ended: %v", err)
	}
	if r := parseRefusal(t, string(data)); r.Error.Code != "schema" {
		t.Fatalf("%+v", r)
	}
}

func TestReloadBySIGHUPAndAPI(t *testing.T) {
	file := writeConfig(t, busesConfig)
	dir := filepath.Dir(file)
	b := startBroker(t, "--config", file)
	sub := dial(t, b.WS+"/sub/livesys", nil)
	waitFor(t, "subscribed", func() bool {
		post(t, b.HTTP+"/pub/livesys/free", "probe")
		return readText(t, sub) == "probe"
	})
	nodeSub := startNodeClient(t, b.WS+"/sub/livesys")
	nodeSub.waitOpen(t)
	pub := dial(t, b.WS+"/pub/livesys/42", nil)
	ctx := context.Background()
	publish := func(payload string) {
		t.Helper()
		if err := pub.WriteText(ctx, payload); err != nil {
			t.Fatal(err)
		}
	}
	delivered := func(want string) {
		t.Helper()
		if got := readText(t, sub); got != want {
			t.Fatalf("Go subscriber got %q, want %q", got, want)
		}
		if got := nodeSub.nextText(t); got != want {
			t.Fatalf("node subscriber got %q, want %q", got, want)
		}
	}
	refused := func(schemaKeyword string) {
		t.Helper()
		r := parseRefusal(t, readText(t, pub))
		if r.Error.Code != "schema" || len(r.Error.Details) == 0 || r.Error.Details[0].Schema != schemaKeyword {
			t.Fatalf("refusal %+v, want %s", r, schemaKeyword)
		}
	}
	reloads := func() int { return strings.Count(b.logs.String(), `msg=reloaded`) }
	failures := func() int { return strings.Count(b.logs.String(), `msg="reload failed; the buses in force are kept"`) }

	publish(goodCommand)
	delivered(goodCommand)

	// SIGHUP with /livesys now carrying validation results.
	writeFile(t, file, strings.Replace(busesConfig, "schema: schemas/livesys.json", "schema: schemas/validation.json", 1))
	b.signal(syscall.SIGHUP)
	waitFor(t, "SIGHUP reload", func() bool { return reloads() == 1 })
	publish(goodCommand)
	refused("#/required")
	publish(goodResult)
	delivered(goodResult)

	// A broken file: POST /api/reload answers why, and nothing changes.
	writeFile(t, file, strings.Replace(busesConfig, "    schema: schemas/livesys.json", "    schemma: schemas/livesys.json", 1))
	resp, err := client.Post(ctx, nil, b.HTTP+"/api/reload", "", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := parseRefusal(t, string(resp.Body)); resp.Status != 500 || r.Error.Code != "reload" ||
		!strings.Contains(r.Error.Message, "mercury.yaml:4: buses./livesys.schemma: unknown key") {
		t.Fatalf("POST /api/reload with a broken file = %d %s", resp.Status, resp.Body)
	}
	// The log reaches us through a pipe, maybe after the answer.
	waitFor(t, "the failure logged", func() bool { return failures() == 1 })
	if !strings.Contains(b.logs.String(), "schemma: unknown key") {
		t.Fatalf("the failure is not logged:\n%s", b.logs)
	}
	publish(goodCommand)
	refused("#/required")

	// A broken schema by SIGHUP: logged, nothing changes.
	writeFile(t, file, busesConfig)
	writeFile(t, filepath.Join(dir, "schemas", "livesys.json"), `{"type": "objekt"}`)
	b.signal(syscall.SIGHUP)
	waitFor(t, "SIGHUP failure logged", func() bool { return failures() == 2 })
	if !strings.Contains(b.logs.String(), "not a valid JSON Schema") {
		t.Fatalf("the reason is not logged:\n%s", b.logs)
	}
	publish(goodResult)
	delivered(goodResult)

	// Fixed: POST /api/reload puts the command schema back in force.
	data, _ := os.ReadFile("../examples/schemas/livesys.json")
	writeFile(t, filepath.Join(dir, "schemas", "livesys.json"), string(data))
	resp, err = client.Post(ctx, nil, b.HTTP+"/api/reload", "", nil, nil)
	if err != nil || resp.Status != 200 || !strings.Contains(string(resp.Body), `"reloaded":true`) {
		t.Fatalf("POST /api/reload = %v %d %s", err, resp.Status, resp.Body)
	}
	publish(goodResult)
	refused("#/required")
	publish(goodCommand)
	delivered(goodCommand)
}

func TestServeRefusesABadConfigFile(t *testing.T) {
	file := writeConfig(t, "buses:\n  /livesys:\n    schema: schemas/nothere.json\n")
	out, err := exec.Command(mercuryBin, "serve", "--listen", "127.0.0.1:0", "--config", file).CombinedOutput()
	if code := exitCode(err); code != 1 || !strings.Contains(string(out), "mercury.yaml:3: buses./livesys.schema: schemas/nothere.json: failed to read") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	out, err = exec.Command(mercuryBin, "serve", "--listen", "127.0.0.1:0", "--max-connections", "lots").CombinedOutput()
	if code := exitCode(err); code != 2 || !strings.Contains(string(out), `--max-connections: want a whole number, got "lots"`) {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

func TestConfigCheck(t *testing.T) {
	run := func(args ...string) (int, string, string) {
		cmd := exec.Command(mercuryBin, append([]string{"config"}, args...)...)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		return exitCode(cmd.Run()), stdout.String(), stderr.String()
	}
	code, out, errOut := run("check", "../mercury.example.yaml")
	if code != 0 || !strings.Contains(out, "../mercury.example.yaml: ok, 4 buses, 3 with a schema") ||
		!strings.Contains(out, "/livesys             schema livesys.json + defs.json") {
		t.Fatalf("example: exit %d\n%s%s", code, out, errOut)
	}
	// What is shown is what the broker does: defaults filled in.
	code, out, errOut = run("check", writeConfig(t, "buses:\n  /jobs:\n    queue: {max_attempts: 3}\n  /events:\n    durable: true\n"))
	if code != 0 || !strings.Contains(out, "/jobs                queue limit 10000, max_attempts 3, ack_timeout 30s, ttl 48h0m0s") ||
		!strings.Contains(out, "/events              history 10000 messages / 24h0m0s, durable") {
		t.Fatalf("defaults: exit %d\n%s%s", code, out, errOut)
	}
	cases := []struct {
		name, config, schema, want string
	}{
		{"unknown key", "buses:\n  /livesys:\n    schemma: schemas/livesys.json\n", "",
			"mercury.yaml:3: buses./livesys.schemma: unknown key"},
		{"wrong type", "max_connections: 10\nbuses:\n  /livesys:\n    durable: sometimes\n", "",
			`mercury.yaml:4: buses./livesys.durable: want true or false, got "sometimes"`},
		{"missing schema file", "buses:\n  /livesys:\n    schema: schemas/gone.json\n", "",
			"mercury.yaml:3: buses./livesys.schema: schemas/gone.json: failed to read"},
		{"broken schema", "buses:\n  /livesys:\n    schema: schemas/livesys.json\n", `{"properties": {"cmd": {"enum": "reboot"}}}`,
			"mercury.yaml:3: buses./livesys.schema: schemas/livesys.json: not a valid JSON Schema: at /properties/cmd/enum"},
		{"schema not JSON", "buses:\n  /livesys:\n    schema: schemas/livesys.json\n", "{\n\"type\": object\n}",
			"mercury.yaml:3: buses./livesys.schema: schemas/livesys.json: livesys.json:2:9: not JSON"},
		// What serve would refuse before it listens, the file's other
		// settings too.
		{"cluster name", "cluster:\n  urls: [nats://127.0.0.1:4222]\n  name: Fleet\n", "",
			`mercury.yaml:3: cluster.name: nats: a cluster name is 1 to 32 lower-case letters, digits, '-' or '_', got "Fleet"`},
		{"cluster credentials", "cluster:\n  urls: [nats://127.0.0.1:4222]\n  creds: gone.creds\n", "",
			"mercury.yaml:3: cluster.creds: nats: credentials file %DIR%/gone.creds: open"},
		{"cluster CA", "cluster:\n  urls: [nats://127.0.0.1:4222]\n  tls: {ca: gone.pem}\n", "",
			"mercury.yaml:3: cluster.tls.ca: nats: error loading or parsing rootCA file"},
		{"TLS certificate", "tls_cert: gone.pem\ntls_key: gone-key.pem\n", "",
			"mercury.yaml:1: tls_cert: failed to load the TLS certificate %DIR%/gone.pem"},
		{"TLS certificate without a key", "max_connections: 10\ntls_cert: cert.pem\n", "",
			"mercury.yaml:2: tls_cert: set without tls_key (--tls-key): give both, or neither"},
		{"PROXY protocol", "proxy_protocol: true\n", "",
			"mercury.yaml:1: proxy_protocol: needs trusted_proxies"},
		{"trusted proxies", "trusted_proxies: [10.0.0.0/33]\n", "",
			"mercury.yaml:1: trusted_proxies: "},
		{"two Minion databases", "minion: {pg: postgres://127.0.0.1/test, sqlite: minion.db}\n", "",
			"mercury.yaml:1: minion.sqlite: minion.pg is set too: configure one database for the bridge"},
	}
	for _, c := range cases {
		file := writeConfig(t, c.config)
		if c.schema != "" {
			writeFile(t, filepath.Join(filepath.Dir(file), "schemas", "livesys.json"), c.schema)
		}
		code, out, errOut := run("check", file)
		c.want = strings.ReplaceAll(c.want, "%DIR%", filepath.Dir(file))
		if code != 1 || out != "" || !strings.Contains(errOut, c.want) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit 1 and %q", c.name, code, out, errOut, c.want)
		}
		// serve refuses the same file, for the same reason.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		serveOut, err := exec.CommandContext(ctx, mercuryBin, "serve", "--listen", "127.0.0.1:0", "--config", file).CombinedOutput()
		cancel()
		if code := exitCode(err); code != 1 || !strings.Contains(string(serveOut), c.want) {
			t.Errorf("%s: serve: exit %d, %s; want exit 1 and %q", c.name, code, serveOut, c.want)
		}
	}
	// The same mistake in a flag is a usage error, named by its flag.
	serveOut, err := exec.Command(mercuryBin, "serve", "--listen", "127.0.0.1:0", "--proxy-protocol").CombinedOutput()
	if code := exitCode(err); code != 2 || !strings.Contains(string(serveOut), "--proxy-protocol: needs trusted_proxies") {
		t.Errorf("--proxy-protocol: exit %d, %s", code, serveOut)
	}
	// Cluster settings without servers are said to be unused.
	code, out, errOut = run("check", writeConfig(t, "cluster:\n  name: fleet\n"))
	if code != 0 || !strings.Contains(out, "  cluster: none, as cluster.urls is empty: cluster.name not used") {
		t.Errorf("cluster without urls: exit %d\n%s%s", code, out, errOut)
	}
	// A cluster's settings are checked, but NATS is not contacted.
	code, out, errOut = run("check", writeConfig(t, "cluster:\n  urls: [nats://127.0.0.1:1]\n  name: fleet\n"))
	if code != 0 || !strings.Contains(out, "  cluster: fleet on nats://127.0.0.1:1 (not contacted)") {
		t.Errorf("cluster: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, _ := run("check"); code != 2 {
		t.Errorf("no file: exit %d, want 2", code)
	}
	if code, _, errOut := run("check", "--bogus", "mercury.yaml"); code != 2 || !strings.Contains(errOut, "flag provided but not defined: -bogus") {
		t.Errorf("unknown flag after check: exit %d, %s", code, errOut)
	}
	if code, _, _ := run("verify", "x"); code != 2 {
		t.Errorf("unknown subcommand: exit %d, want 2", code)
	}
}

// Flags win over the environment, the environment over the file.
func TestSettingsPrecedence(t *testing.T) {
	file := writeConfig(t, "max_message_size: 100\nlog_level: info\n")
	size := func(b *brokerProc, n int) int {
		t.Helper()
		return post(t, b.HTTP+"/pub/x", strings.Repeat("a", n)).Status
	}
	fileOnly := startBroker(t, "--config", file)
	if size(fileOnly, 100) != 200 || size(fileOnly, 101) != 413 {
		t.Fatal("the file's max_message_size is not in force")
	}
	env := startBrokerEnv(t, []string{"MERCURY_MAX_MESSAGE_SIZE=200"}, "--listen", "127.0.0.1:0", "--config", file)
	if size(env, 200) != 200 || size(env, 201) != 413 {
		t.Fatal("the environment does not win over the file")
	}
	flag := startBrokerEnv(t, []string{"MERCURY_MAX_MESSAGE_SIZE=200"}, "--listen", "127.0.0.1:0", "--config", file, "--max-message-size", "300")
	if size(flag, 300) != 200 || size(flag, 301) != 413 {
		t.Fatal("the flag does not win over the environment")
	}
	// MERCURY_CONFIG names the file too.
	viaEnv := startBrokerEnv(t, []string{"MERCURY_CONFIG=" + file}, "--listen", "127.0.0.1:0")
	if size(viaEnv, 101) != 413 {
		t.Fatal("MERCURY_CONFIG is not read")
	}
}
