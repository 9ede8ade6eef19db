package minion

import (
	"encoding/json"
	"fmt"
)

// DefaultMaxEventSize is the default of Options.MaxEventSize: the broker's
// default largest message.
const DefaultMaxEventSize = 1 << 20

// bigValue is the size above which a value is the first to go when an
// event is too big.
const bigValue = 1024

// Cut is what replaces a value left out of an event too big for the
// broker: {"mercury_cut": BYTES}.
type Cut struct {
	Bytes int `json:"mercury_cut"`
}

func cut(raw json.RawMessage) json.RawMessage {
	b, _ := json.Marshal(Cut{Bytes: len(raw)})
	return b
}

// encodeEvent returns e as JSON of at most max bytes. When e is larger it
// leaves out values, biggest kinds first, each replaced by a Cut, and sets
// e.Cut: the changes' old and new values over 1 KiB, then the job's result,
// args, notes and unknown columns (and the schedule's). The event keeps its
// id, type and every small field, so it still tells what happened; the
// database still has the full job while Minion keeps it.
func encodeEvent(e *Event, max int) ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil || len(b) <= max {
		return b, err
	}
	e.Cut = true
	for col, c := range e.Changes {
		if len(c.Old) > bigValue {
			c.Old = cut(c.Old)
		}
		if len(c.New) > bigValue {
			c.New = cut(c.New)
		}
		e.Changes[col] = c
	}
	steps := []func(){}
	if j := e.Job; j != nil {
		steps = append(steps,
			func() { j.Result = cut(j.Result) },
			func() { j.Args = json.RawMessage("[" + string(cut(j.Args)) + "]") },
			func() { j.Notes = cut(j.Notes) },
			func() {
				for k, v := range j.Extra {
					j.Extra[k] = cut(v)
				}
			})
	}
	if s := e.Schedule; s != nil {
		steps = append(steps,
			func() { s.Args = json.RawMessage("[" + string(cut(s.Args)) + "]") },
			func() { s.Notes = cut(s.Notes) },
			func() {
				for k, v := range s.Extra {
					s.Extra[k] = cut(v)
				}
			})
	}
	steps = append(steps, func() {
		for col, c := range e.Changes {
			e.Changes[col] = FieldChange{Old: cut(c.Old), New: cut(c.New)}
		}
	})
	for _, step := range steps {
		if b, err = json.Marshal(e); err != nil || len(b) <= max {
			return b, err
		}
		step()
	}
	if b, err = json.Marshal(e); err != nil || len(b) <= max {
		return b, err
	}
	return nil, fmt.Errorf("event %s is %d bytes even with its values cut, over the %d allowed", e.EventID, len(b), max)
}
