package web

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/mercury-broker/mercury/web/auth"
)

// sendBody sends method to url with a token and returns status and body.
func sendBody(t *testing.T, method, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestLimitedAdminLearnsNoOtherTopics: a connection or queue outside an
// admin's scope answers as one that does not exist, so walking ids or
// names reveals nothing.
func TestLimitedAdminLearnsNoOtherTopics(t *testing.T) {
	key := func(name, secret string, spec map[string][]string) auth.APIKey {
		s, err := auth.ParseSpecStrings(spec)
		if err != nil {
			t.Fatal(err)
		}
		r, err := s.Expand(nil)
		if err != nil {
			t.Fatal(err)
		}
		h, err := auth.HashKey(secret)
		if err != nil {
			t.Fatal(err)
		}
		k, err := auth.NewAPIKey(name, h, r)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	const limited = "admin-of-jobs-a-0123456789abcdefghijkl"
	const root = "root-0123456789abcdefghijklmnopqrstuv"
	a, err := auth.New(auth.Options{APIKeys: []auth.APIKey{
		key("ops-a", limited, map[string][]string{"admin": {"/jobs/a"}}),
		key("root", root, map[string][]string{"admin": {"/"}, "sub": {"/"}, "push": {"/"}, "pull": {"/"}}),
	}})
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, Options{Auth: a})
	ts.dialURL(t, ts.ws+"/sub/secret/plans?token="+root, nil)
	ts.dialURL(t, ts.ws+"/pull/secret/jobs?token="+root, nil)
	ts.waitSubscribed(t, 1)
	_, body := getBody(t, ts.http.URL+"/api/connections", root)
	var cs []connectionJSON
	if err := json.Unmarshal(body, &cs); err != nil || len(cs) != 2 {
		t.Fatalf("connections %s: %v", body, err)
	}
	codeMissing, bodyMissing := sendBody(t, "DELETE", ts.http.URL+"/api/connections/999999", limited)
	for _, c := range cs {
		code, body := sendBody(t, "DELETE", ts.http.URL+"/api/connections/"+c.ID, limited)
		if code != codeMissing || code != http.StatusNotFound || strings.Contains(body, "secret") {
			t.Errorf("limited admin closing connection %s on %s: %d %s; a missing one: %d %s", c.ID, c.Topic, code, body, codeMissing, bodyMissing)
		}
	}
	if n := ts.Connections(); n != 2 {
		t.Errorf("%d connections left, want 2", n)
	}
	for _, q := range []struct{ method, path string }{
		{"GET", "/api/queues/dead"}, {"POST", "/api/queues/dead/pop"}, {"POST", "/api/queues/dead/requeue"}, {"DELETE", "/api/queues/dead"},
	} {
		code, body := sendBody(t, q.method, ts.http.URL+q.path+"?topic=/secret/jobs", limited)
		codeNone, bodyNone := sendBody(t, q.method, ts.http.URL+q.path+"?topic=/secret/none", limited)
		if code != http.StatusNotFound || code != codeNone ||
			strings.ReplaceAll(body, "/secret/jobs", "T") != strings.ReplaceAll(bodyNone, "/secret/none", "T") {
			t.Errorf("%s %s of an existing queue out of scope: %d %s; of a missing one: %d %s", q.method, q.path, code, body, codeNone, bodyNone)
		}
	}
}
