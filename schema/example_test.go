package schema_test

import (
	"encoding/json"
	"fmt"

	"github.com/mercury-broker/mercury/schema"
)

func ExampleRegistry_Validate() {
	r, err := schema.Compile([]schema.Source{{Bus: "/livesys", File: "../examples/schemas/livesys.json"}})
	if err != nil {
		panic(err)
	}
	msg := `{"cmd":"dance","id":"6f1c1a4e-8d7b-4f5e-9a51-3c0f1e2d4b6a","sent":"2026-11-24T11:00:00Z"}`
	refusal := r.Validate("/livesys", "/livesys/42", []byte(msg), false)
	details, _ := json.Marshal(refusal.Details)
	fmt.Println(refusal.Code)
	fmt.Println(string(details))
	// Output:
	// schema
	// [{"at":"/cmd","schema":"#/properties/cmd/enum","message":"value must be one of \"reboot\", \"update\", \"run\", \"shutdown\""}]
}
