package auth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mercury-broker/mercury/web/auth"
	"github.com/mercury-broker/mercury/web/auth/authtest"
)

// verifier loads keys the way the broker does: the secret file, the PEM
// files, or the JWKS file.
func verifier(t *testing.T, k *authtest.Keys, jwks bool) *auth.JWTVerifier {
	t.Helper()
	var keys []*auth.Key
	secret, err := auth.LoadSecretFile(k.Files.Secret)
	if err != nil {
		t.Fatal(err)
	}
	keys = append(keys, secret)
	if jwks {
		ks, err := auth.LoadJWKSFile(k.Files.JWKS)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, ks...)
	} else {
		for _, f := range []string{k.Files.RSA, k.Files.EC, k.Files.Ed} {
			ks, err := auth.LoadPEMFile(f)
			if err != nil {
				t.Fatal(err)
			}
			keys = append(keys, ks...)
		}
	}
	v, err := auth.NewJWTVerifier(auth.JWTOptions{Keys: keys, Issuer: k.Issuer, Audience: k.Audience})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

var agentRights = map[string]any{"sub": []any{"/livesys/{sub}"}, "pub": []any{"/livesys/{sub}/status"}}

func TestTokensOfEveryAlgorithmFromPEMAndJWKS(t *testing.T) {
	k := authtest.NewKeys(t)
	for _, jwks := range []bool{false, true} {
		v := verifier(t, k, jwks)
		for _, alg := range []string{"HS256", "RS256", "ES256", "EdDSA"} {
			tok := k.Sign(t, alg, k.Claims("42", time.Hour, agentRights), "")
			g, err := v.Verify(tok)
			if err != nil {
				t.Fatalf("jwks %v, %s: %v", jwks, alg, err)
			}
			if g.Kind != auth.KindToken || g.Subject != "42" || !g.Rights.Allows(auth.Sub, "/livesys/42/cmd") ||
				g.Rights.Allows(auth.Sub, "/livesys") || !g.Rights.Allows(auth.Pub, "/livesys/42/status") {
				t.Fatalf("jwks %v, %s: grant %+v", jwks, alg, g)
			}
			if d := time.Until(g.Expires); d < 59*time.Minute || d > time.Hour {
				t.Fatalf("expires in %v", d)
			}
		}
	}
	// With kids, from the JWKS file: the kid picks the key.
	v := verifier(t, k, true)
	if _, err := v.Verify(k.Sign(t, "RS256", k.Claims("42", time.Hour, nil), k.RSAKid)); err != nil {
		t.Fatal(err)
	}
	_, err := v.Verify(k.Sign(t, "RS256", k.Claims("42", time.Hour, nil), "rsa-2"))
	expectRefused(t, "unknown kid", err, auth.CodeInvalid, `no RS256 key with kid "rsa-2"`)
}

func expectRefused(t *testing.T, name string, err error, code, msg string) {
	t.Helper()
	var ce *auth.CredentialError
	if !errors.As(err, &ce) || !errors.Is(err, auth.ErrCredential) {
		t.Fatalf("%s: err = %v, want a *CredentialError", name, err)
	}
	if ce.Code != code || !strings.Contains(ce.Msg, msg) {
		t.Fatalf("%s: %s %q, want %s containing %q", name, ce.Code, ce.Msg, code, msg)
	}
}

func TestBadTokensAreRefusedWithTheReason(t *testing.T) {
	k := authtest.NewKeys(t)
	other := authtest.NewKeys(t) // the wrong keys
	v := verifier(t, k, false)
	claims := func(edit func(jwt.MapClaims)) jwt.MapClaims {
		c := k.Claims("42", time.Hour, agentRights)
		edit(c)
		return c
	}
	expired := claims(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Minute).Unix() })
	notYet := claims(func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Hour).Unix() })
	futureIat := claims(func(c jwt.MapClaims) { c["iat"] = time.Now().Add(time.Hour).Unix() })
	noExp := claims(func(c jwt.MapClaims) { delete(c, "exp") })
	wrongIss := claims(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" })
	noIss := claims(func(c jwt.MapClaims) { delete(c, "iss") })
	wrongAud := claims(func(c jwt.MapClaims) { c["aud"] = []string{"other"} })
	badRights := claims(func(c jwt.MapClaims) { c["mercury"] = map[string]any{"subscribe": []any{"/x"}} })
	rightsNotObject := claims(func(c jwt.MapClaims) { c["mercury"] = "all" })
	escape := claims(func(c jwt.MapClaims) { c["sub"] = "42/../../" })
	good := k.Claims("42", time.Hour, agentRights)

	wrongKeyRSA, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	wrongKeyEC, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tampered := k.Sign(t, "HS256", good, "")
	parts := strings.Split(tampered, ".")
	parts[1] = strings.Repeat("A", len(parts[1]))

	for _, c := range []struct {
		name, token, code, msg string
	}{
		{"expired", k.Sign(t, "RS256", expired, ""), auth.CodeExpired, "token expired at "},
		{"not yet valid", k.Sign(t, "ES256", notYet, ""), auth.CodeNotYetValid, "not valid before "},
		{"issued in the future", k.Sign(t, "EdDSA", futureIat, ""), auth.CodeNotYetValid, "issued in the future"},
		{"no exp", k.Sign(t, "HS256", noExp, ""), auth.CodeInvalid, "exp claim is required (tokens must expire)"},
		{"wrong issuer", k.Sign(t, "HS256", wrongIss, ""), auth.CodeInvalid, `issuer is "https://evil.example", want "https://auth.example.com"`},
		{"no issuer", k.Sign(t, "HS256", noIss, ""), auth.CodeInvalid, "iss claim is required"},
		{"wrong audience", k.Sign(t, "RS256", wrongAud, ""), auth.CodeInvalid, `audience is ["other"], want "mercury"`},
		{"wrong HMAC secret", other.Sign(t, "HS256", good, ""), auth.CodeInvalid, "signature does not verify"},
		{"wrong RSA key", authtest.SignWith(t, "RS256", wrongKeyRSA, good), auth.CodeInvalid, "signature does not verify"},
		{"wrong EC key", authtest.SignWith(t, "ES256", wrongKeyEC, good), auth.CodeInvalid, "signature does not verify"},
		{"wrong Ed25519 key", other.Sign(t, "EdDSA", good, ""), auth.CodeInvalid, "signature does not verify"},
		{"tampered", strings.Join(parts, "."), auth.CodeInvalid, "token"},
		{"alg none", authtest.AlgNone(t, good), auth.CodeInvalid, `algorithm "none" is not accepted`},
		{"algorithm confusion", k.Confused(t, good), auth.CodeInvalid, "signature does not verify"},
		{"an algorithm no key has", authtest.SignWith(t, "ES384", mustEC384(t), good), auth.CodeInvalid, `algorithm "ES384" is not accepted`},
		{"bad rights", k.Sign(t, "HS256", badRights, ""), auth.CodeInvalid, "unknown action"},
		{"rights not an object", k.Sign(t, "HS256", rightsNotObject, ""), auth.CodeInvalid, "want an object of rights"},
		{"placeholder escape", k.Sign(t, "HS256", escape, ""), auth.CodeInvalid, `"sub" has '/'`},
		{"garbage", "a.b.c", auth.CodeInvalid, "malformed"},
	} {
		_, err := v.Verify(c.token)
		expectRefused(t, c.name, err, c.code, c.msg)
	}
}

func mustEC384(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestLeewayAndClock(t *testing.T) {
	k := authtest.NewKeys(t)
	secret, _ := auth.LoadSecretFile(k.Files.Secret)
	now := time.Now()
	clock := now
	v, err := auth.NewJWTVerifier(auth.JWTOptions{Keys: []*auth.Key{secret}, Leeway: 30 * time.Second, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	tok := k.Sign(t, "HS256", jwt.MapClaims{"exp": now.Add(time.Minute).Unix()}, "")
	clock = now.Add(80 * time.Second) // within exp + leeway
	g, err := v.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Unix(now.Add(time.Minute).Unix(), 0).Add(30 * time.Second); !g.Expires.Equal(want) {
		t.Fatalf("expires %v, want %v (exp + leeway)", g.Expires, want)
	}
	clock = now.Add(2 * time.Minute)
	_, err = v.Verify(tok)
	expectRefused(t, "past leeway", err, auth.CodeExpired, "expired")
}

func TestKeyFilesAreChecked(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(data), 0o600)
		return p
	}
	if _, err := auth.LoadSecretFile(write("short", "too short\n")); err == nil || !strings.Contains(err.Error(), "at least 32 bytes") {
		t.Errorf("short secret: %v", err)
	}
	if _, err := auth.LoadPEMFile(write("priv.pem", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")); err == nil || !strings.Contains(err.Error(), "give the broker the public key only") {
		t.Errorf("private key: %v", err)
	}
	if _, err := auth.LoadPEMFile(write("empty.pem", "nothing here")); err == nil || !strings.Contains(err.Error(), "no PEM block") {
		t.Errorf("no PEM: %v", err)
	}
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	if _, err := auth.PublicKey(&small.PublicKey, "", "small"); err == nil || !strings.Contains(err.Error(), "at least 2048 bits") {
		t.Errorf("small RSA key: %v", err)
	}
	for _, c := range []struct{ jwks, want string }{
		{`{"keys":[]}`, "no signing key"},
		{`[]`, "not a JSON Web Key Set"},
		{`{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}`, "32 bytes"},
		{`{"keys":[{"kty":"OKP","crv":"X25519","x":"AA"}]}`, "not supported"},
		{`{"keys":[{"kty":"oct","k":"c2hvcnQ"}]}`, "at least 32 bytes"},
		{`{"keys":[{"kty":"OKP","crv":"Ed25519","alg":"RS256","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`, "does not fit"},
		{`{"keys":[{"kid":"x"}]}`, `"kty" is missing`},
		{`{"keys":[{"kty":"RSA","n":"!!","e":"AQAB"}]}`, "not base64url"},
	} {
		if _, err := auth.ParseJWKS([]byte(c.jwks), "jwks.json"); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.jwks, err, c.want)
		}
	}
}
