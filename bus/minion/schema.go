package minion

import _ "embed"

// EventSchema is the JSON Schema (draft 2020-12) of an event, the file
// event.schema.json. Configure the bridge's bus with it so the broker
// refuses anything else under the bridge's topic.
//
//go:embed event.schema.json
var EventSchema []byte
