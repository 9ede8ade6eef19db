package config

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/web/auth"
	"github.com/mercury-broker/mercury/web/auth/authtest"
)

func TestAuthSection(t *testing.T) {
	k := authtest.NewKeys(t)
	pem, _ := os.ReadFile(k.Files.Ed)
	secret, _ := os.ReadFile(k.Files.Secret)
	key := auth.GenerateKey()
	hash, _ := auth.HashKey(key)
	c, err := load(t, `auth:
  jwt:
    secret_file: secrets/hs.secret
    keys: [keys/ed.pem]
    issuer: `+k.Issuer+`
    audience: `+k.Audience+`
    leeway: 5s
  api_keys:
    - name: worker
      hash: "`+hash+`"
      rights: {pull: [/jobs], admin: true}
  anonymous:
    sub: [/public, /news]
    admin: false
`, "secrets/hs.secret", string(secret), "keys/ed.pem", string(pem))
	if err != nil {
		t.Fatal(err)
	}
	if c.Auth.Leeway != 5*time.Second || len(c.Auth.APIKeys) != 1 || c.Auth.APIKeys[0].Line != 9 {
		t.Fatalf("auth: %+v", c.Auth)
	}
	// Key paths are relative to the file, as schema paths are.
	dir, _ := os.Getwd()
	t.Chdir(t.TempDir())
	c, err = Load(filepath.Join(dir, "mercury.yaml"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Auth.SecretFile != filepath.Join(dir, "secrets/hs.secret") || c.Auth.Keys[0] != filepath.Join(dir, "keys/ed.pem") {
		t.Fatalf("paths not relative to the file: %+v", c.Auth)
	}
	a, err := c.Authenticator()
	if err != nil || a == nil {
		t.Fatalf("authenticator: %v", err)
	}
	for _, alg := range []string{"HS256", "EdDSA"} {
		g, err := a.Authenticate(k.Sign(t, alg, k.Claims("42", time.Hour, map[string]any{"sub": []any{"/livesys/{sub}"}}), ""))
		if err != nil || !g.Rights.Allows(auth.Sub, "/livesys/42") {
			t.Fatalf("%s token: %+v %v", alg, g, err)
		}
	}
	if _, err := a.Authenticate(k.Sign(t, "RS256", k.Claims("42", time.Hour, nil), "")); err == nil {
		t.Fatal("an RS256 token verified without an RSA key")
	}
	g, err := a.Authenticate(key)
	if err != nil || g.Subject != "worker" || !g.Rights.Allows(auth.Pull, "/jobs/x") || !g.Rights.Allows(auth.Admin, "") {
		t.Fatalf("API key: %+v %v", g, err)
	}
	anon := a.Anonymous()
	if !anon.Rights.Allows(auth.Sub, "/news/1") || anon.Rights.Any(auth.Admin) {
		t.Fatalf("anonymous: %+v", anon)
	}
	if s := a.String(); !strings.Contains(s, "tokens (2 keys") || !strings.Contains(s, "1 API keys") || !strings.Contains(s, "sub on /public, /news") {
		t.Fatalf("summary %q", s)
	}
	// No auth section: nothing configured.
	if c, _ := load(t, "listen: 127.0.0.1:1\n"); c.Auth.Configured() {
		t.Fatal("configured without an auth section")
	}
}

func TestAuthErrorsNameLineAndKey(t *testing.T) {
	for _, c := range []struct{ name, file, want string }{
		{"unknown jwt key", "auth:\n  jwt:\n    secret: x\n", "mercury.yaml:3: auth.jwt.secret: unknown key"},
		{"api_keys not a list", "auth:\n  api_keys: {a: b}\n", "mercury.yaml:2: auth.api_keys: want a list of {name, hash, rights}"},
		{"api key without hash", "auth:\n  api_keys:\n    - name: a\n", "mercury.yaml:3: auth.api_keys: an API key needs a name and a hash"},
		{"api key unknown field", "auth:\n  api_keys:\n    - {name: a, hash: b, right: {}}\n", "mercury.yaml:3: auth.api_keys.right: unknown key"},
		{"api key twice", "auth:\n  api_keys:\n    - {name: a, hash: b}\n    - {name: a, hash: c}\n", "mercury.yaml:4: auth.api_keys.a: given twice (first on line 3)"},
		{"api key unknown action", "auth:\n  api_keys:\n    - {name: a, hash: b, rights: {subscribe: [/x]}}\n", "mercury.yaml:3: auth.api_keys.a.rights: subscribe: unknown action"},
		{"api key placeholder", "auth:\n  api_keys:\n    - {name: a, hash: b, rights: {sub: [\"/x/{sub}\"]}}\n", "mercury.yaml:3: auth.api_keys.a.rights: an API key has no claims"},
		{"api key rights not a mapping", "auth:\n  api_keys:\n    - {name: a, hash: b, rights: [/x]}\n", "mercury.yaml:3: auth.api_keys.a.rights: want a mapping of actions"},
		{"anonymous bad prefix", "auth:\n  anonymous:\n    sub: [public]\n", `mercury.yaml:3: auth.anonymous.sub: sub "public": a topic prefix starts with /`},
		{"anonymous placeholder", "auth:\n  anonymous:\n    sub: [\"/x/{sub}\"]\n", "mercury.yaml:3: auth.anonymous.sub: anonymous clients have no claims"},
		{"bad bool", "allow_anonymous: sometimes\n", `mercury.yaml:1: allow_anonymous: want true or false, got "sometimes"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := load(t, c.file)
			if err == nil || !strings.HasPrefix(err.Error(), c.want) || !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v\nwant    %q…", err, c.want)
			}
		})
	}
	// Errors found when the keys are loaded.
	for _, c := range []struct{ name, file, want string }{
		{"bad hash", "auth:\n  api_keys:\n    - {name: a, hash: md5:00}\n", "mercury.yaml:3: auth.api_keys.a.hash: API key \"a\": hash \"md5:00\""},
		{"missing key file", "auth:\n  jwt:\n    keys: [nowhere.pem]\n", "mercury.yaml: auth.jwt.keys: failed to read the key file"},
		{"short secret", "auth:\n  jwt:\n    secret_file: s\n", "mercury.yaml: auth.jwt.secret_file: "},
		{"issuer without key", "auth:\n  jwt:\n    issuer: x\n  anonymous: {sub: [/a]}\n", "mercury.yaml: auth.jwt: issuer or audience without a key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := load(t, c.file, "s", "short")
			if err != nil {
				t.Fatal(err)
			}
			_, err = cfg.Authenticator()
			if err == nil || !strings.HasPrefix(err.Error(), c.want) || !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v\nwant    %q…", err, c.want)
			}
		})
	}
}

func TestAnonymousRightsAndBoolFlags(t *testing.T) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	flags := RegisterFlags(fs)
	if err := fs.Parse([]string{"--allow-anonymous", "--auth-anonymous-sub", "/a,/b", "--auth-anonymous-admin", "true", "--compression=false"}); err != nil {
		t.Fatal(err)
	}
	c, err := Load("", func(k string) string {
		return map[string]string{"MERCURY_COMPRESSION": "true", "MERCURY_AUTH_ANONYMOUS_PUB": "/c"}[k]
	}, flags)
	if err != nil {
		t.Fatal(err)
	}
	if !c.AllowAnonymous || c.Compression || !c.Auth.Configured() {
		t.Fatalf("config %+v", c)
	}
	a, err := c.Authenticator()
	if err != nil {
		t.Fatal(err)
	}
	r := a.Anonymous().Rights
	if !r.Allows(auth.Sub, "/b/x") || !r.Allows(auth.Pub, "/c") || !r.Allows(auth.Admin, "") || r.Allows(auth.Pull, "/a") {
		t.Fatalf("anonymous rights from flags and environment: %v", a)
	}
	// A reload applies auth: auth settings are not among those needing a
	// restart.
	d := *c
	d.Auth.Issuer = "other"
	d.IdleTimeout = time.Minute
	if got := Restart(c, &d); len(got) != 1 || got[0] != "idle_timeout" {
		t.Fatalf("Restart = %v", got)
	}
}
