package web

import (
	"encoding/json"
	"net/http"

	"github.com/mercury-broker/mercury/schema"
)

// apiError is a refusal told to a client: as a JSON text frame on a
// WebSocket, or as the body of an HTTP error, always in the form
// {"error":{"code":…,"topic":…,"message":…}}; a message refused by its
// bus's schema also has "bus" and "details".
type apiError struct {
	Status  int             `json:"-"` // HTTP status
	Code    string          `json:"code"`
	Action  string          `json:"action,omitempty"` // a refusal by rights: what was refused
	Topic   string          `json:"topic,omitempty"`
	Bus     string          `json:"bus,omitempty"`
	Message string          `json:"message"`
	Details []schema.Detail `json:"details,omitempty"`
}

func (e *apiError) Error() string { return e.Message }

// JSON returns the error's wire form.
func (e *apiError) JSON() []byte {
	b, err := json.Marshal(struct {
		Error *apiError `json:"error"`
	}{e})
	if err != nil {
		// Only strings and ints: marshalling cannot fail.
		panic(err)
	}
	return b
}

// write sends e as an HTTP response.
func (e *apiError) write(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="mercury"`)
	}
	w.WriteHeader(e.Status)
	w.Write(append(e.JSON(), '\n'))
}
