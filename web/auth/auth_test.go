package auth_test

import (
	"strings"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/web/auth"
	"github.com/mercury-broker/mercury/web/auth/authtest"
)

func TestAuthenticatorTokensAPIKeysAndAnonymous(t *testing.T) {
	k := authtest.NewKeys(t)
	secret, _ := auth.LoadSecretFile(k.Files.Secret)
	v, err := auth.NewJWTVerifier(auth.JWTOptions{Keys: []*auth.Key{secret}})
	if err != nil {
		t.Fatal(err)
	}
	key := auth.GenerateKey()
	hash, err := auth.HashKey(key)
	if err != nil {
		t.Fatal(err)
	}
	spec, _ := auth.ParseSpec(map[string]any{"push": []any{"/jobs"}})
	rights, _ := spec.Expand(nil)
	apiKey, err := auth.NewAPIKey("worker", hash, rights)
	if err != nil {
		t.Fatal(err)
	}
	anonSpec, _ := auth.ParseSpec(map[string]any{"sub": []any{"/public"}})
	anon, _ := anonSpec.Expand(nil)
	a, err := auth.New(auth.Options{JWT: v, APIKeys: []auth.APIKey{apiKey}, Anonymous: anon})
	if err != nil {
		t.Fatal(err)
	}

	g, err := a.Authenticate("")
	if err != nil || g.Kind != auth.KindAnonymous || !g.Rights.Allows(auth.Sub, "/public/x") || g.Rights.Allows(auth.Pub, "/public") {
		t.Fatalf("anonymous: %+v %v", g, err)
	}
	g, err = a.Authenticate(key)
	if err != nil || g.Kind != auth.KindAPIKey || g.Subject != "worker" || !g.Rights.Allows(auth.Push, "/jobs/a") || !g.Expires.IsZero() {
		t.Fatalf("API key: %+v %v", g, err)
	}
	_, err = a.Authenticate(auth.GenerateKey())
	expectRefused(t, "unknown API key", err, auth.CodeUnknownKey, "unknown API key")
	g, err = a.Authenticate(k.Sign(t, "HS256", k.Claims("7", time.Hour, map[string]any{"sub": true}), ""))
	if err != nil || g.Kind != auth.KindToken || !g.Rights.Allows(auth.Sub, "/x") {
		t.Fatalf("token: %+v %v", g, err)
	}

	// A broker with API keys only refuses tokens clearly.
	keysOnly, _ := auth.New(auth.Options{APIKeys: []auth.APIKey{apiKey}})
	_, err = keysOnly.Authenticate(k.Sign(t, "HS256", k.Claims("7", time.Hour, nil), ""))
	expectRefused(t, "no JWT keys", err, auth.CodeInvalid, "accepts no tokens")

	if _, err := auth.New(auth.Options{APIKeys: []auth.APIKey{apiKey, apiKey}}); err == nil {
		t.Fatal("two API keys with one hash accepted")
	}
}

func TestAPIKeyHashes(t *testing.T) {
	key := auth.GenerateKey()
	if !strings.HasPrefix(key, "mk_") || len(key) < auth.MinKeyLength {
		t.Fatalf("generated %q", key)
	}
	h1, _ := auth.HashKey(key)
	h2, _ := auth.HashKey(key)
	if h1 != h2 || !strings.HasPrefix(h1, "sha256:") || len(h1) != len("sha256:")+64 {
		t.Fatalf("hash %q %q", h1, h2)
	}
	for _, bad := range []string{"short", "a.b." + strings.Repeat("x", 40), strings.Repeat("x", 40) + " y"} {
		if _, err := auth.HashKey(bad); err == nil {
			t.Errorf("HashKey(%q) accepted", bad)
		}
	}
	for _, bad := range []string{"", "md5:abcd", "sha256:zz", "sha256:" + strings.Repeat("a", 63)} {
		if _, err := auth.NewAPIKey("k", bad, auth.Rights{}); err == nil || !strings.Contains(err.Error(), "mercury auth hash-key") {
			t.Errorf("NewAPIKey(%q): %v", bad, err)
		}
	}
}
