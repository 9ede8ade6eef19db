// Package schema checks messages against the JSON Schema of their bus.
//
// A Registry is compiled once, at start and at each reload, from the
// schema file of every bus that has one; it is immutable afterwards, so
// validation needs no lock. Schemas are JSON Schema of any draft the
// github.com/santhosh-tekuri/jsonschema/v5 library knows, chosen by
// "$schema" (2020-12 when absent); "$ref" may point to other files in the
// same folder; formats (date-time, uuid, email …) are asserted.
//
// Validate answers nil or a *Refusal saying exactly why: the message is
// not JSON (code "json", with the byte offset), is a binary frame (code
// "binary"), or does not match the schema (code "schema", with one Detail
// per failing keyword: where in the message, where in the schema, why).
// See ExampleRegistry_Validate.
package schema
