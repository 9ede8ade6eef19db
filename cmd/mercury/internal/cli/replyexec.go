package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"syscall"
	"unicode/utf8"

	"github.com/mercury-broker/mercury/cmd/mercury/internal/command"
	"github.com/mercury-broker/mercury/web/client"
)

// requestFrame is a request as a subscriber in envelope mode gets it.
type requestFrame struct {
	Reply    string          `json:"reply"`
	Topic    string          `json:"topic"`
	Data     json.RawMessage `json:"data"`
	Encoding string          `json:"encoding"`
}

// answerRequest runs cmd for a request frame, with its data on standard
// input, and answers with cmd's standard output; a failed cmd answers
// {"error":…} with the end of its standard error. It reports false for a
// frame that is not a request.
func answerRequest(ctx context.Context, c *client.Conn, cmd string, f client.Frame, std command.Stdio) (bool, error) {
	var req requestFrame
	if f.Binary || json.Unmarshal(f.Data, &req) != nil || req.Reply == "" {
		return false, nil
	}
	input := []byte(req.Data)
	switch req.Encoding {
	case "text":
		var s string
		json.Unmarshal(req.Data, &s)
		input = []byte(s)
	case "base64":
		var s string
		json.Unmarshal(req.Data, &s)
		input, _ = base64.StdEncoding.DecodeString(s)
	}
	run := exec.CommandContext(ctx, "sh", "-c", cmd)
	run.Stdin = bytes.NewReader(input)
	var out bytes.Buffer
	run.Stdout = &out
	tail := &tailBuffer{max: 1000}
	run.Stderr = io.MultiWriter(std.Err, tail)
	run.Env = append(os.Environ(), "MERCURY_TOPIC="+req.Topic, "MERCURY_REPLY="+req.Reply)
	run.Cancel = func() error { return run.Process.Signal(syscall.SIGTERM) }
	run.WaitDelay = execStopGrace
	err := run.Run()

	answer := map[string]any{"reply": req.Reply}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		reason := ee.String()
		if last := tail.lastLine(); last != "" {
			reason += ": " + last
		}
		answer["data"] = map[string]string{"error": reason}
	case err != nil:
		answer["data"] = map[string]string{"error": err.Error()}
	default:
		data := bytes.TrimSuffix(out.Bytes(), []byte("\n"))
		switch {
		case len(data) > 0 && json.Valid(data):
			answer["data"] = json.RawMessage(data)
		case utf8.Valid(data):
			answer["data"], answer["encoding"] = string(data), "text"
		default:
			answer["data"], answer["encoding"] = base64.StdEncoding.EncodeToString(data), "base64"
		}
	}
	b, _ := json.Marshal(answer)
	return true, c.WriteText(ctx, string(b))
}
