package schema

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The example schemas shipped in the repository.
const examples = "../examples/schemas"

func exampleRegistry(t testing.TB) *Registry {
	t.Helper()
	r, err := Compile([]Source{
		{Bus: "/livesys", File: filepath.Join(examples, "livesys.json")},
		{Bus: "/livesys/admin", File: filepath.Join(examples, "livesys-admin.json")},
		{Bus: "/validation", File: filepath.Join(examples, "validation.json")},
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

const validCommand = `{"cmd":"reboot","id":"6f1c1a4e-8d7b-4f5e-9a51-3c0f1e2d4b6a","sent":"2026-11-24T11:00:00Z","by":"ops@example.com","args":["--now"],"timeout":30}`

func TestValidMessagesPass(t *testing.T) {
	r := exampleRegistry(t)
	cases := []struct {
		bus, payload string
	}{
		{"/livesys", validCommand},
		{"/livesys", `{"cmd":"update","id":"6f1c1a4e-8d7b-4f5e-9a51-3c0f1e2d4b6a","sent":"2026-11-24T11:00:00.5+01:00"}`},
		{"/livesys/admin", `{"cmd":"wipe","id":"6f1c1a4e-8d7b-4f5e-9a51-3c0f1e2d4b6a","sent":"2026-11-24T11:00:00Z","by":"ops@example.com","reason":"decommissioned"}`},
		{"/validation", `{"run":"6f1c1a4e-8d7b-4f5e-9a51-3c0f1e2d4b6a","host":"build-7.example.com","suite":"smoke","result":"pass",
			"started":"2026-11-24T11:00:00Z","finished":"2026-11-24T11:05:00Z","checks":[{"name":"boot","result":"pass"}]}`},
	}
	for _, c := range cases {
		if ref := r.Validate(string(c.bus), string(c.bus+"/42"), []byte(c.payload), false); ref != nil {
			t.Errorf("%s: %s refused: %+v", c.bus, c.payload, ref)
		}
	}
}

func TestBusWithoutSchemaAcceptsAnything(t *testing.T) {
	r := exampleRegistry(t)
	for _, bus := range []string{"", "/other"} {
		if ref := r.Validate(bus, "/other/1", []byte("not json"), false); ref != nil {
			t.Errorf("bus %q: %+v", bus, ref)
		}
		if ref := r.Validate(bus, "/other/1", []byte{0xff}, true); ref != nil {
			t.Errorf("bus %q: %+v", bus, ref)
		}
	}
	var none *Registry
	if ref := none.Validate("/livesys", "/livesys", []byte("x"), false); ref != nil {
		t.Errorf("nil registry: %+v", ref)
	}
}

func detailsJSON(t *testing.T, ds []Detail) string {
	t.Helper()
	b, err := json.Marshal(ds)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSchemaRefusalsNameTheValueAndTheKeyword(t *testing.T) {
	r := exampleRegistry(t)
	cases := []struct {
		name, bus, payload string
		details            []Detail
	}{
		{"enum", "/livesys", `{"cmd":"dance","id":"6f1c1a4e-8d7b-4f5e-9a51-3c0f1e2d4b6a","sent":"2026-11-24T11:00:00Z"}`,
			[]Detail{{At: "/cmd", Schema: "#/properties/cmd/enum"}}},
		{"required", "/livesys", `{"cmd":"reboot","id":"6f1c1a4e-8d7b-4f5e-9a51-3c0f1e2d4b6a"}`,
			[]Detail{{At: "", Schema: "#/required"}}},
		{"format through $ref", "/livesys", `{"cmd":"reboot","id":"not-a-uuid","sent":"2026-11-24T11:00:00Z"}`,
			[]Detail{{At: "/id", Schema: "defs.json#/$defs/uuid/format"}}},
		{"date-time", "/livesys", `{"cmd":"reboot","id":"6f1c1a4e-8d7b-4f5e-9a51-3c0f1e2d4b6a","sent":"yesterday"}`,
			[]Detail{{At: "/sent", Schema: "defs.json#/$defs/timestamp/format"}}},
		{"email", "/livesys", `{"cmd":"reboot","id":"6f1c1a4e-8d7b-4f5e-9a51-3c0f1e2d4b6a","sent":"2026-11-24T11:00:00Z","by":"nobody"}`,
			[]Detail{{At: "/by", Schema: "defs.json#/$defs/email/format"}}},
		{"type in an array", "/livesys", `{"cmd":"run","id":"6f1c1a4e-8d7b-4f5e-9a51-3c0f1e2d4b6a","sent":"2026-11-24T11:00:00Z","args":["a",2]}`,
			[]Detail{{At: "/args/1", Schema: "#/properties/args/items/type"}}},
		{"additional property", "/livesys", `{"cmd":"reboot","id":"6f1c1a4e-8d7b-4f5e-9a51-3c0f1e2d4b6a","sent":"2026-11-24T11:00:00Z","extra":1}`,
			[]Detail{{At: "", Schema: "#/additionalProperties"}}},
		{"not an object", "/livesys", `[1,2]`,
			[]Detail{{At: "", Schema: "#/type"}}},
		{"several at once", "/livesys", `{"cmd":"dance","id":"x","sent":"2026-11-24T11:00:00Z","timeout":0}`,
			[]Detail{{At: "/cmd", Schema: "#/properties/cmd/enum"}, {At: "/id", Schema: "defs.json#/$defs/uuid/format"}, {At: "/timeout", Schema: "#/properties/timeout/minimum"}}},
		{"the nested bus's own schema", "/livesys/admin", validCommand,
			[]Detail{{At: "", Schema: "#/required"}, {At: "/cmd", Schema: "#/properties/cmd/enum"}, {At: "", Schema: "#/additionalProperties"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ref := r.Validate(string(c.bus), string(c.bus+"/42"), []byte(c.payload), false)
			if ref == nil {
				t.Fatal("accepted")
			}
			if ref.Code != CodeSchema || ref.Bus != string(c.bus) {
				t.Fatalf("code %q bus %q", ref.Code, ref.Bus)
			}
			got := make(map[string]bool)
			for _, d := range ref.Details {
				if d.Message == "" {
					t.Errorf("detail %+v has no message", d)
				}
				got[d.At+" "+d.Schema] = true
			}
			for _, want := range c.details {
				if !got[want.At+" "+want.Schema] {
					t.Errorf("no detail at %q for %q in %s", want.At, want.Schema, detailsJSON(t, ref.Details))
				}
			}
			if len(ref.Details) != len(c.details) {
				t.Errorf("got %d details, want %d: %s", len(ref.Details), len(c.details), detailsJSON(t, ref.Details))
			}
			if !strings.Contains(ref.Message, c.bus) || !strings.Contains(ref.Message, ref.Details[0].Message) {
				t.Errorf("message %q names neither the bus nor the first detail", ref.Message)
			}
		})
	}
}

func TestEnumMessageListsTheChoices(t *testing.T) {
	ref := exampleRegistry(t).Validate("/livesys", "/livesys/42",
		[]byte(`{"cmd":"dance","id":"6f1c1a4e-8d7b-4f5e-9a51-3c0f1e2d4b6a","sent":"2026-11-24T11:00:00Z"}`), false)
	if ref == nil || !strings.Contains(ref.Details[0].Message, `"reboot"`) {
		t.Fatalf("%+v", ref)
	}
}

func TestNotJSONGivesTheOffset(t *testing.T) {
	r := exampleRegistry(t)
	cases := []struct {
		payload string
		offset  int
	}{
		{`{"cmd": reboot}`, 8},
		{`{"cmd":"reboot"} trailing`, 17},
		{`{"cmd":"reboot"`, 15},
		{``, 0},
		{`   `, 3},
		{`hello`, 0},
		{`{"a":1,}`, 7},
	}
	for _, c := range cases {
		ref := r.Validate("/livesys", "/livesys/42", []byte(c.payload), false)
		if ref == nil || ref.Code != CodeJSON || ref.Bus != "/livesys" {
			t.Errorf("%q: %+v, want code json", c.payload, ref)
			continue
		}
		if len(ref.Details) != 1 || ref.Details[0].Offset == nil || *ref.Details[0].Offset != c.offset {
			t.Errorf("%q: details %s, want offset %d", c.payload, detailsJSON(t, ref.Details), c.offset)
		}
		if !strings.Contains(ref.Message, fmt.Sprintf("byte offset %d", c.offset)) {
			t.Errorf("%q: message %q does not give the offset", c.payload, ref.Message)
		}
	}
}

func TestBinaryRefusedOnASchemaBus(t *testing.T) {
	ref := exampleRegistry(t).Validate("/livesys", "/livesys/42", []byte(validCommand), true)
	if ref == nil || ref.Code != CodeBinary || ref.Bus != "/livesys" || !strings.Contains(ref.Message, "binary") {
		t.Fatalf("%+v", ref)
	}
}

func TestManyFailuresAreCapped(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "s.json", `{"type":"array","items":{"type":"string"}}`)
	r, err := Compile([]Source{{Bus: "/a", File: filepath.Join(dir, "s.json")}})
	if err != nil {
		t.Fatal(err)
	}
	payload := "[" + strings.Repeat("1,", 99) + "1]"
	ref := r.Validate("/a", "/a", []byte(payload), false)
	if ref == nil || len(ref.Details) != MaxDetails || !strings.Contains(ref.Message, "(and 99 more)") {
		t.Fatalf("%d details, message %q", len(ref.Details), ref.Message)
	}
}

func TestNumbersKeepTheirPrecision(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "s.json", `{"type":"integer","multipleOf":3}`)
	r, err := Compile([]Source{{Bus: "/a", File: filepath.Join(dir, "s.json")}})
	if err != nil {
		t.Fatal(err)
	}
	// 2^64+2 = 18446744073709551618 is a multiple of 3; as a float64 it
	// would round to 2^64, which is not.
	if ref := r.Validate("/a", "/a", []byte(`18446744073709551618`), false); ref != nil {
		t.Fatalf("%+v", ref)
	}
	if ref := r.Validate("/a", "/a", []byte(`18446744073709551617`), false); ref == nil {
		t.Fatal("accepted a number that is not a multiple of 3")
	}
}

func TestDraftComesFromDollarSchema(t *testing.T) {
	dir := t.TempDir()
	// Tuple "items" is draft-07; in 2020-12 it is "prefixItems".
	write(t, dir, "d7.json", `{"$schema":"http://json-schema.org/draft-07/schema#","items":[{"type":"string"}]}`)
	write(t, dir, "d2020.json", `{"prefixItems":[{"type":"string"}]}`)
	r, err := Compile([]Source{{Bus: "/d7", File: filepath.Join(dir, "d7.json")}, {Bus: "/d2020", File: filepath.Join(dir, "d2020.json")}})
	if err != nil {
		t.Fatal(err)
	}
	for _, bus := range []string{"/d7", "/d2020"} {
		if ref := r.Validate(bus, bus, []byte(`["a", 1]`), false); ref != nil {
			t.Errorf("%s: %+v", bus, ref)
		}
		if ref := r.Validate(bus, bus, []byte(`[1]`), false); ref == nil {
			t.Errorf("%s: a number where a string is due was accepted", bus)
		}
	}
	// A draft-07 format is asserted too.
	write(t, dir, "f7.json", `{"$schema":"http://json-schema.org/draft-07/schema#","format":"date-time"}`)
	r, err = Compile([]Source{{Bus: "/f7", File: filepath.Join(dir, "f7.json")}})
	if err != nil {
		t.Fatal(err)
	}
	if ref := r.Validate("/f7", "/f7", []byte(`"noon"`), false); ref == nil {
		t.Error("draft-07 format not asserted")
	}
}

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCompileErrorsNameBusFileAndProblem(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "broken.json", "{\n  \"type\": \"object\",\n  \"properties\": {,}\n}")
	write(t, dir, "badtype.json", `{"properties":{"cmd":{"type":"strin"}}}`)
	write(t, dir, "badref.json", `{"$ref":"missing.json"}`)
	write(t, dir, "sub/escape.json", `{"$ref":"../badtype.json"}`)
	write(t, dir, "remote.json", `{"$ref":"https://example.com/s.json"}`)
	write(t, dir, "draft.json", `{"$schema":"https://example.com/my-draft"}`)
	cases := []struct{ file, want string }{
		{"nothere.json", "no such file"},
		{"broken.json", "broken.json:3:18: not JSON"},
		{"badtype.json", "not a valid JSON Schema: at /properties/cmd/type"},
		{"badref.json", "missing.json"},
		{"sub/escape.json", ErrOutsideFolder.Error()},
		{"remote.json", ErrOutsideFolder.Error()},
		{"draft.json", ErrOutsideFolder.Error()},
	}
	for _, c := range cases {
		_, err := Compile([]Source{{Bus: "/b", File: filepath.Join(dir, c.file)}})
		if err == nil {
			t.Errorf("%s: compiled", c.file)
			continue
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "bus /b: schema "+filepath.Join(dir, c.file)+": ") || !strings.Contains(msg, c.want) {
			t.Errorf("%s: error %q, want the bus, the file and %q", c.file, msg, c.want)
		}
	}
	if _, err := Compile([]Source{{Bus: "/b", File: filepath.Join(dir, "sub/escape.json")}}); !errors.Is(err, ErrOutsideFolder) {
		t.Errorf("escape: %v is not ErrOutsideFolder", err)
	}
}

func TestDocuments(t *testing.T) {
	r := exampleRegistry(t)
	doc, ok := r.Document("/livesys")
	want, _ := os.ReadFile(filepath.Join(examples, "livesys.json"))
	if !ok || string(doc) != string(want) {
		t.Fatalf("Document = %q, %v", doc, ok)
	}
	if got := r.Documents("/livesys"); len(got) != 2 || got[0] != "livesys.json" || got[1] != "defs.json" {
		t.Fatalf("Documents = %q", got)
	}
	defs, ok := r.Referenced("/livesys", "defs.json")
	if !ok || !json.Valid(defs) || !strings.Contains(string(defs), "$defs") {
		t.Fatalf("Referenced = %q, %v", defs, ok)
	}
	if _, ok := r.Referenced("/livesys", "../README.md"); ok {
		t.Fatal("Referenced served a file the schema does not use")
	}
	if _, ok := r.Document("/none"); ok {
		t.Fatal("a bus without a schema has a document")
	}
	if got := r.Buses(); len(got) != 3 || got[0] != "/livesys" || !r.Has("/validation") || r.Has("/x") {
		t.Fatalf("Buses = %q", got)
	}
	if r.File("/livesys") != filepath.Join(examples, "livesys.json") {
		t.Fatalf("File = %q", r.File("/livesys"))
	}
}
