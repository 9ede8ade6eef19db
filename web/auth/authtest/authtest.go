// Package authtest makes signing keys, key files and tokens for tests of
// Mercury's authorization: real keys, real signatures, and the forged
// tokens an attacker would try (alg none, algorithm confusion).
package authtest

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Keys is a set of signing keys and the files that give the broker their
// verifying halves.
type Keys struct {
	Secret   []byte
	RSA      *rsa.PrivateKey
	EC       *ecdsa.PrivateKey
	Ed       ed25519.PrivateKey
	RSAKid   string // the kid of the RSA key in the JWKS file
	dir      string
	Files    Files
	Issuer   string
	Audience string
}

// Files are the key files written for the broker.
type Files struct {
	Secret string // the HMAC secret
	RSA    string // PEM public keys
	EC     string
	Ed     string
	JWKS   string // the RSA, EC and Ed25519 public keys as a JWKS
	RSAPub []byte // the RSA public key's PEM bytes, for algorithm confusion
}

// NewKeys makes fresh keys and writes their files into a temporary folder.
func NewKeys(t testing.TB) *Keys {
	t.Helper()
	k := &Keys{dir: t.TempDir(), RSAKid: "rsa-1", Issuer: "https://auth.example.com", Audience: "mercury"}
	// A secret file holds text: 32 random bytes in hex (a binary secret
	// could end in a newline, which the broker does not count).
	raw := make([]byte, 32)
	rand.Read(raw)
	k.Secret = []byte(hex.EncodeToString(raw))
	var err error
	if k.RSA, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if k.EC, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	if _, k.Ed, err = ed25519.GenerateKey(rand.Reader); err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(k.dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pub := func(key any) []byte {
		der, err := x509.MarshalPKIXPublicKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}
	k.Files.Secret = write("hs256.secret", append(append([]byte{}, k.Secret...), '\n'))
	k.Files.RSAPub = pub(&k.RSA.PublicKey)
	k.Files.RSA = write("rsa.pem", k.Files.RSAPub)
	k.Files.EC = write("ec.pem", pub(&k.EC.PublicKey))
	k.Files.Ed = write("ed25519.pem", pub(k.Ed.Public()))
	b64 := base64.RawURLEncoding.EncodeToString
	ecPub, err := k.EC.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(map[string]any{"keys": []map[string]any{
		{"kty": "RSA", "kid": k.RSAKid, "use": "sig", "alg": "RS256",
			"n": b64(k.RSA.N.Bytes()), "e": b64([]byte{1, 0, 1})},
		{"kty": "EC", "kid": "ec-1", "crv": "P-256", "x": b64(ecPub[1:33]), "y": b64(ecPub[33:])},
		{"kty": "OKP", "kid": "ed-1", "crv": "Ed25519", "x": b64(k.Ed.Public().(ed25519.PublicKey))},
		{"kty": "RSA", "kid": "enc-1", "use": "enc", "n": "AQAB", "e": "AQAB"}, // skipped: encryption
	}})
	k.Files.JWKS = write("jwks.json", jwks)
	return k
}

// Claims returns standard claims for a token valid for d: iss, aud, sub,
// exp, iat, and the rights in the "mercury" claim.
func (k *Keys) Claims(sub string, d time.Duration, rights map[string]any) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{"iss": k.Issuer, "aud": k.Audience, "sub": sub,
		"iat": now.Add(-time.Minute).Unix(), "exp": now.Add(d).Unix()}
	if rights != nil {
		c["mercury"] = rights
	}
	return c
}

// Sign signs claims with alg: HS256, RS256, ES256 or EdDSA, with the
// matching key; kid is put in the header when not empty.
func (k *Keys) Sign(t testing.TB, alg string, claims jwt.MapClaims, kid string) string {
	t.Helper()
	var key any
	switch alg {
	case "HS256":
		key = k.Secret
	case "RS256":
		key = k.RSA
	case "ES256":
		key = k.EC
	case "EdDSA":
		key = k.Ed
	default:
		t.Fatalf("authtest: no key for %s", alg)
	}
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(alg), claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// SignWith signs claims with alg and any key: a forger's token.
func SignWith(t testing.TB, alg string, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.GetSigningMethod(alg), claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// AlgNone returns an unsigned token ("alg":"none").
func AlgNone(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Confused returns a token signed with HS256 using the RSA public key's
// PEM bytes as the secret: the algorithm confusion attack on verifiers
// that let the token pick the algorithm.
func (k *Keys) Confused(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	return SignWith(t, "HS256", k.Files.RSAPub, claims)
}
