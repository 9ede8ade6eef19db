package schema

import (
	"fmt"
	"strings"
	"testing"
)

const tenFields = `{"cmd":"run","id":"6f1c1a4e-8d7b-4f5e-9a51-3c0f1e2d4b6a","sent":"2026-11-24T11:00:00.123Z","agent":"build-7",` +
	`"priority":3,"retry":true,"ratio":0.25,"tags":["nightly","x86"],"target":{"host":"build-7.example.com","port":8080},"by":"ops@example.com"}`

// BenchmarkValidate10Fields measures the cost of validating one message
// against a schema of ten fields (formats, a pattern, an enum, a nested
// object, an array): decoding included, as the broker does per message.
func BenchmarkValidate10Fields(b *testing.B) {
	r, err := Compile([]Source{{Bus: "/bench", File: "testdata/ten-fields.json"}})
	if err != nil {
		b.Fatal(err)
	}
	msg := []byte(tenFields)
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

// BenchmarkTreeAtDepthLimit measures the worst case left on a recursive
// schema (an anyOf of a leaf, an array of nodes and an object of nodes):
// arrays nested as deep as DefaultMaxDepth allows. The validator's cost
// grows much faster than the depth: 800 deep cost about 16 s.
func BenchmarkTreeAtDepthLimit(b *testing.B) {
	r := treeRegistry(b)
	msg := nested(DefaultMaxDepth)
	if ref := r.Validate("/tree", "/tree/1", msg, false); ref != nil {
		b.Fatalf("refused: %+v", ref)
	}
	b.ReportAllocs()
	for b.Loop() {
		r.Validate("/tree", "/tree/1", msg, false)
	}
}

// BenchmarkTreeTooDeep measures the refusal of a 10,000-deep array, which
// never reaches the validator.
func BenchmarkTreeTooDeep(b *testing.B) {
	r := treeRegistry(b)
	msg := nested(10000)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if r.Validate("/tree", "/tree/1", msg, false) == nil {
			b.Fatal("accepted")
		}
	}
}

// largestChecks is a validation report of about 1 MiB (the default
// message size limit): the largest message the shipped schemas take, each
// check valid, or with result set to failing, each check refused.
func largestChecks(result string) []byte {
	var sb strings.Builder
	sb.WriteString(`{"run":"6f1c1a4e-8d7b-4f5e-9a51-3c0f1e2d4b6a","host":"build-7.example.com","suite":"smoke","result":"pass",` +
		`"started":"2026-11-24T11:00:00Z","finished":"2026-11-24T11:05:00Z","checks":[`)
	for i := 0; sb.Len() < 1<<20-100; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"name":"check-%d","result":%q,"message":"ok"}`, i, result)
	}
	sb.WriteString("]}")
	return []byte(sb.String())
}

// BenchmarkShippedLargest measures the shipped validation schema on a
// 1 MiB message: every element valid, and every element refused.
func BenchmarkShippedLargest(b *testing.B) {
	r := exampleRegistry(b)
	for _, c := range []struct {
		name, result string
		refused      bool
	}{{"valid", "pass", false}, {"all-refused", "bogus", true}} {
		b.Run(c.name, func(b *testing.B) {
			msg := largestChecks(c.result)
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				if (r.Validate("/validation", "/validation/1", msg, false) != nil) != c.refused {
					b.Fatal("unexpected answer")
				}
			}
		})
	}
}

// BenchmarkShapeCheck measures the depth and duplicate-key pass alone, on
// the ten-field message and on 1 MiB, beside BenchmarkValidate10Fields
// and BenchmarkShippedLargest/valid, whose cost includes it.
func BenchmarkShapeCheck(b *testing.B) {
	for _, c := range []struct {
		name string
		msg  []byte
	}{{"10fields", []byte(tenFields)}, {"1MiB", largestChecks("pass")}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.msg)))
			b.ReportAllocs()
			for b.Loop() {
				if checkShape(c.msg, DefaultMaxDepth) != nil {
					b.Fatal("refused")
				}
			}
		})
	}
}
