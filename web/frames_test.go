package web

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestTokenFrames(t *testing.T) {
	for _, c := range []struct {
		data    string
		cred    string
		isToken bool
		bad     bool
	}{
		{`{"$token":"abc.def.ghi"}`, "abc.def.ghi", true, false},
		{` { "$token" : "k" } `, "k", true, false},
		{`{"$token":5}`, "", true, true},
		{`{"$token":""}`, "", true, true},
		{`{"$token":"a","x":1}`, "", false, false}, // another key: an ordinary message
		{`{"data":{"$token":"a"}}`, "", false, false},
		{`["$token"]`, "", false, false},
		{`"$token"`, "", false, false},
		{`{"ack":1}`, "", false, false},
		{`not json "$token"`, "", false, false},
	} {
		cred, isToken, err := parseTokenFrame([]byte(c.data))
		if cred != c.cred || isToken != c.isToken || (err != nil) != c.bad {
			t.Errorf("%s: %q %v %v", c.data, cred, isToken, err)
		}
	}
}

func TestSettleFrames(t *testing.T) {
	for _, c := range []struct {
		data string
		want settlement
		err  string
	}{
		{`{"ack":7}`, settlement{ack: true, id: 7}, ""},
		{`{"nack":7,"delay":"10s","error":"disk full"}`, settlement{id: 7, delay: 10e9, reason: "disk full"}, ""},
		{`{"nack":7}`, settlement{id: 7}, ""},
		{`{"ack":1,"nack":2}`, settlement{}, "exactly one"},
		{`{}`, settlement{}, "exactly one"},
		{`{"ack":-1}`, settlement{}, "want"},
		{`{"ack":1,"x":2}`, settlement{}, `unknown key "x"`},
		{`{"ACk":100}`, settlement{}, `unknown key "ACk"`}, // found by FuzzClientFrame
		{`{"ack":null,"nack":3}`, settlement{id: 3}, ""},
		{`null`, settlement{}, "want"},
		{`{"nack":1,"delay":"-1s"}`, settlement{}, "delay"},
		{`{"nack":1,"delay":"soon"}`, settlement{}, "delay"},
		{`{"ack":1} {"ack":2}`, settlement{}, "after top-level value"},
		{`{"ack":0}}`, settlement{}, "after top-level value"}, // found by FuzzClientFrame
		{`{"ack":1}` + "\n", settlement{ack: true, id: 1}, ""},
	} {
		got, err := parseSettle([]byte(c.data))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: %v, want an error containing %q", c.data, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s: %+v %v, want %+v", c.data, got, err, c.want)
		}
	}
}

// FuzzClientFrame feeds arbitrary frames to the decoders of what clients
// send beside messages: never a panic; a token frame is exactly a JSON
// object with the one key "$token"; an accepted settle frame is one JSON
// object with exactly one of ack and nack. go test runs the seeds.
func FuzzClientFrame(f *testing.F) {
	for _, s := range []string{
		`{"$token":"a.b.c"}`, `{"$token":1}`, `{"$token":"a","b":1}`, `{"ack":1}`, `{"nack":2,"delay":"1s","error":"x"}`,
		`{"ack":1,"nack":1}`, `{"ack":18446744073709551615}`, `{"ack":18446744073709551616}`, `{"nack":1,"delay":"9999999h"}`,
		`{"$token":"\u0000"}`, `{"ack":1,"nack":null}`, `{"$token":"x"}{"$token":"y"}`, `{"$TOKEN":"x"}`, "\xff", `{"ack":1.0}`, `{"ack":"1"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cred, isToken, err := parseTokenFrame(data)
		if isToken {
			var m map[string]json.RawMessage
			if json.Unmarshal(data, &m) != nil || len(m) != 1 {
				t.Fatalf("%q taken for a token frame", data)
			}
			if _, ok := m[tokenKey]; !ok {
				t.Fatalf("%q taken for a token frame without the key", data)
			}
			if err == nil && cred == "" {
				t.Fatalf("%q: an empty credential accepted", data)
			}
		} else if cred != "" || err != nil {
			t.Fatalf("%q: not a token frame but %q %v", data, cred, err)
		}
		s, err := parseSettle(data)
		if err != nil {
			return
		}
		var v map[string]any
		if json.Unmarshal(data, &v) != nil {
			t.Fatalf("%q accepted as a settle frame but is not one JSON object", data)
		}
		hasAck, hasNack := v["ack"] != nil, v["nack"] != nil // null is absent
		if hasAck == hasNack || s.ack != hasAck || s.delay < 0 {
			t.Fatalf("%q accepted as %+v", data, s)
		}
	})
}
