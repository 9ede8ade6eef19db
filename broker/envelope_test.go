package broker

import (
	"encoding/json"
	"testing"
	"time"
)

func TestEnvelope(t *testing.T) {
	at := time.Date(2026, 11, 24, 11, 0, 0, 123456789, time.UTC)
	cases := []struct {
		m    *Message
		want string
	}{
		{&Message{Topic: "/a/b", Seq: 17, Time: at, Payload: []byte(`{"cmd":"reboot"}`)},
			`{"topic":"/a/b","seq":17,"time":"2026-11-24T11:00:00.123456789Z","data":{"cmd":"reboot"}}`},
		{&Message{Topic: "/a", Seq: 1, Time: at, Payload: []byte(`hello "you"`)},
			`{"topic":"/a","seq":1,"time":"2026-11-24T11:00:00.123456789Z","data":"hello \"you\"","encoding":"text"}`},
		{&Message{Topic: "/a", Seq: 2, Time: at, Binary: true, Payload: []byte{0xff, 0, 0x80, 0x41}},
			`{"topic":"/a","seq":2,"time":"2026-11-24T11:00:00.123456789Z","data":"/wCAQQ==","encoding":"base64"}`},
		{&Message{Topic: "/a", Seq: 3, Time: at, Payload: []byte(`42`)},
			`{"topic":"/a","seq":3,"time":"2026-11-24T11:00:00.123456789Z","data":42}`},
		{&Message{Topic: "/a", Seq: 4, Time: at, Payload: nil},
			`{"topic":"/a","seq":4,"time":"2026-11-24T11:00:00.123456789Z","data":"","encoding":"text"}`},
	}
	for _, c := range cases {
		got := string(c.m.Envelope())
		if got != c.want {
			t.Errorf("envelope\n got %s\nwant %s", got, c.want)
		}
		if !json.Valid([]byte(got)) {
			t.Errorf("envelope %s is not JSON", got)
		}
	}
}

func TestDeliveryEnvelope(t *testing.T) {
	m := &Message{Topic: "/jobs", Seq: 9, Time: time.Unix(0, 0), Payload: []byte(`{"n":1}`)}
	d := &Delivery{Message: m, Attempt: 2}
	want := `{"id":9,"attempt":2,"topic":"/jobs","seq":9,"time":"1970-01-01T00:00:00Z","data":{"n":1}}`
	if got := string(d.Envelope()); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func FuzzEnvelope(f *testing.F) {
	f.Add([]byte(`{"a":1}`), false)
	f.Add([]byte("text\n\"x\""), false)
	f.Add([]byte{0xff, 0xfe}, true)
	f.Add([]byte{0xff, 0xfe}, false)
	f.Fuzz(func(t *testing.T, payload []byte, binary bool) {
		m := &Message{Topic: "/f", Seq: 1, Binary: binary, Payload: payload}
		env := m.Envelope()
		var decoded struct {
			Data     json.RawMessage `json:"data"`
			Encoding string          `json:"encoding"`
		}
		if err := json.Unmarshal(env, &decoded); err != nil {
			t.Fatalf("envelope of %q is not JSON: %s", payload, env)
		}
	})
}
