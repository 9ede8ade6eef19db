package cli

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/web/client"
)

func TestFormatFrame(t *testing.T) {
	text := func(s string) client.Frame { return client.Frame{Data: []byte(s)} }
	bin := client.Frame{Binary: true, Data: []byte{0xff, 0x00, 0x80, 0x41}}
	for _, tc := range []struct {
		name string
		f    format
		in   client.Frame
		want string
	}{
		{"pipe compacts JSON", format{}, text("{ \"a\" : [1, 2],\n \"b\": \"x y\" }"), `{"a":[1,2],"b":"x y"}`},
		{"pipe leaves text", format{}, text("hello { world"), "hello { world"},
		{"pipe shows binary as base64", format{}, bin, "/wCAQQ=="},
		{"raw leaves JSON", format{raw: true}, text("{ \"a\" : 1 }"), "{ \"a\" : 1 }"},
		{"raw leaves binary", format{raw: true}, bin, "\xff\x00\x80\x41"},
		{"terminal indents JSON", format{pretty: true}, text(`{"a":[1,{"b":null}],"c":{},"d":[]}`),
			"{\n  \"a\": [\n    1,\n    {\n      \"b\": null\n    }\n  ],\n  \"c\": {},\n  \"d\": []\n}"},
		{"terminal shows binary as hex", format{pretty: true}, bin, "<binary, 4 bytes> ff008041"},
		{"json of JSON", format{json: true}, text(`{"a": 1}`), `{"data":{"a":1}}`},
		{"json of text", format{json: true}, text("a <b> & \"c\""), `{"data":"a <b> & \"c\"","encoding":"text"}`},
		{"json of binary", format{json: true}, bin, `{"data":"/wCAQQ==","encoding":"base64"}`},
	} {
		if got := string(tc.f.frame(tc.in)); got != tc.want {
			t.Errorf("%s: got\n%s\nwant\n%s", tc.name, got, tc.want)
		}
	}
}

func TestFormatEnvelope(t *testing.T) {
	frame := []byte(`{"topic":"/livesys/42", "seq":17, "time":"2026-11-24T11:00:00.123456789Z", "data":{"cmd": "reboot"}}`)
	in, err := client.ParseIncoming(frame)
	if err != nil || in.Message == nil {
		t.Fatal(in, err)
	}
	e := in.Message
	if e.Seq != 17 || e.Topic != "/livesys/42" || !e.Time.Equal(time.Date(2026, 11, 24, 11, 0, 0, 123456789, time.UTC)) {
		t.Fatalf("parsed %+v", e)
	}
	for _, tc := range []struct {
		f    format
		want string
	}{
		{format{}, `{"cmd":"reboot"}`},
		{format{showTopic: true}, "/livesys/42\t{\"cmd\":\"reboot\"}"},
		{format{showTopic: true, pretty: true}, "/livesys/42 {\n  \"cmd\": \"reboot\"\n}"},
		{format{json: true}, `{"topic":"/livesys/42","seq":17,"time":"2026-11-24T11:00:00.123456789Z","data":{"cmd":"reboot"}}`},
		{format{raw: true}, string(frame)},
	} {
		if got := string(tc.f.envelope(e, frame)); got != tc.want {
			t.Errorf("%+v: got\n%s\nwant\n%s", tc.f, got, tc.want)
		}
	}

	textFrame := []byte(`{"topic":"/t","seq":1,"time":"2026-11-24T11:00:00Z","data":"not json","encoding":"text"}`)
	in, _ = client.ParseIncoming(textFrame)
	if got := string((&format{}).envelope(in.Message, textFrame)); got != "not json" {
		t.Errorf("text data shown as %q", got)
	}
	binFrame := []byte(`{"topic":"/t","seq":2,"time":"2026-11-24T11:00:00Z","data":"/wCAQQ==","encoding":"base64"}`)
	in, _ = client.ParseIncoming(binFrame)
	if got := string((&format{pretty: true}).envelope(in.Message, binFrame)); got != "<binary, 4 bytes> ff008041" {
		t.Errorf("binary data shown as %q", got)
	}
}

func TestPrettyJSONColours(t *testing.T) {
	got := string(prettyJSON([]byte(`{"k":"v:\"x\"","n":-1.5e3,"t":true,"z":null}`), true))
	for _, want := range []string{
		ansiKey + `"k"` + ansiReset + ": " + ansiString + `"v:\"x\""` + ansiReset,
		ansiNumber + "-1.5e3" + ansiReset,
		ansiWord + "true" + ansiReset,
		ansiWord + "null" + ansiReset,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("coloured JSON lacks %q:\n%q", want, got)
		}
	}
	// Without colour, the same text as encoding/json's indentation.
	for _, in := range []string{
		`{"a":[1,"two",{"b":[true,false]}],"c":"é\u00e9 \\ \"","d":{},"e":[],"f":[{}]}`,
		` [ 1 , 2 ] `, `"s"`, `3`, `{"nested":{"deeper":{"deepest":[[[]]]}}}`,
	} {
		var want bytes.Buffer
		if err := json.Indent(&want, []byte(strings.TrimSpace(in)), "", "  "); err != nil {
			t.Fatal(err)
		}
		if got := prettyJSON([]byte(in), false); string(got) != want.String() {
			t.Errorf("prettyJSON(%s):\n%s\nwant\n%s", in, got, want.String())
		}
	}
}

// FuzzPrettyJSON: for any valid JSON, the indentation is encoding/json's,
// and colours change nothing but colours.
func FuzzPrettyJSON(f *testing.F) {
	for _, s := range []string{`{"a":[1,"two",{"b":[true,false,null]}]}`, `"x\"y"`, `[]`, `{"":{}}`, `-0.5e-3`, `["\u00e9\\\\"]`} {
		f.Add(s)
	}
	ansi := regexp.MustCompile("\x1b\\[[0-9;]*m")
	f.Fuzz(func(t *testing.T, in string) {
		if !json.Valid([]byte(in)) {
			return
		}
		var want bytes.Buffer
		json.Indent(&want, bytes.TrimSpace([]byte(in)), "", "  ")
		if got := prettyJSON([]byte(in), false); string(got) != want.String() {
			t.Fatalf("prettyJSON(%q) = %q, want %q", in, got, want.String())
		}
		if got := ansi.ReplaceAllString(string(prettyJSON([]byte(in), true)), ""); got != want.String() {
			t.Fatalf("coloured prettyJSON(%q) without colours = %q", in, got)
		}
	})
}
