package schema

import (
	"testing"
)

// BenchmarkValidate10Fields measures the cost of validating one message
// against a schema of ten fields (formats, a pattern, an enum, a nested
// object, an array): decoding included, as the broker does per message.
func BenchmarkValidate10Fields(b *testing.B) {
	r, err := Compile([]Source{{Bus: "/bench", File: "testdata/ten-fields.json"}})
	if err != nil {
		b.Fatal(err)
	}
	msg := []byte(`{"cmd":"run","id":"6f1c1a4e-8d7b-4f5e-9a51-3c0f1e2d4b6a","sent":"2026-11-24T11:00:00.123Z","agent":"build-7",` +
		`"priority":3,"retry":true,"ratio":0.25,"tags":["nightly","x86"],"target":{"host":"build-7.example.com","port":8080},"by":"ops@example.com"}`)
	if ref := r.Validate("/bench", "/bench/1", msg, false); ref != nil {
		b.Fatalf("benchmark message refused: %+v", ref)
	}
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if r.Validate("/bench", "/bench/1", msg, false) != nil {
			b.Fatal("refused")
		}
	}
}

// BenchmarkRefuse10Fields measures a refusal with three details.
func BenchmarkRefuse10Fields(b *testing.B) {
	r, err := Compile([]Source{{Bus: "/bench", File: "testdata/ten-fields.json"}})
	if err != nil {
		b.Fatal(err)
	}
	msg := []byte(`{"cmd":"dance","id":"nope","sent":"2026-11-24T11:00:00.123Z","agent":"build-7",` +
		`"priority":30,"retry":true,"ratio":0.25,"tags":["nightly","x86"],"target":{"host":"build-7.example.com","port":8080},"by":"ops@example.com"}`)
	b.ReportAllocs()
	for b.Loop() {
		if r.Validate("/bench", "/bench/1", msg, false) == nil {
			b.Fatal("accepted")
		}
	}
}
