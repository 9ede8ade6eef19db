package auth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
)

// Key is one key that verifies tokens. Its type fixes the algorithms it
// accepts, so a token can never pick how it is checked: an HMAC secret
// verifies HS256/384/512 only, an RSA key RS* and PS*, an ECDSA key the
// ES algorithm of its curve, an Ed25519 key EdDSA.
type Key struct {
	ID     string   // kid; "" matches a token with any kid
	Source string   // the file it came from, for logs and errors
	key    any      // []byte, *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
	algs   []string // the algorithms it verifies
}

// Algorithms returns the algorithms the key verifies.
func (k *Key) Algorithms() []string { return k.algs }

// minSecret is the shortest HMAC secret accepted: 256 bits, as RFC 7518
// asks for HS256.
const minSecret = 32

// minRSABits is the smallest RSA modulus accepted.
const minRSABits = 2048

// SecretKey makes a key from an HMAC secret.
func SecretKey(secret []byte, source string) (*Key, error) {
	if len(secret) < minSecret {
		return nil, fmt.Errorf("%s: an HMAC secret needs at least %d bytes, got %d", source, minSecret, len(secret))
	}
	return &Key{Source: source, key: bytes.Clone(secret), algs: []string{"HS256", "HS384", "HS512"}}, nil
}

// LoadSecretFile reads an HMAC secret from a file; a final newline is not
// part of it.
func LoadSecretFile(file string) (*Key, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("failed to read the secret: %w", err)
	}
	return SecretKey(bytes.TrimRight(data, "\r\n"), file)
}

// PublicKey makes a key from an RSA, ECDSA or Ed25519 public key.
func PublicKey(pub any, id, source string) (*Key, error) {
	k := &Key{ID: id, Source: source}
	switch pk := pub.(type) {
	case *rsa.PublicKey:
		if pk.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("%s: an RSA key needs at least %d bits, got %d", source, minRSABits, pk.N.BitLen())
		}
		k.key, k.algs = pk, []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
	case *ecdsa.PublicKey:
		switch pk.Curve {
		case elliptic.P256():
			k.algs = []string{"ES256"}
		case elliptic.P384():
			k.algs = []string{"ES384"}
		case elliptic.P521():
			k.algs = []string{"ES512"}
		default:
			return nil, fmt.Errorf("%s: an ECDSA key on an unsupported curve (want P-256, P-384 or P-521)", source)
		}
		k.key = pk
	case ed25519.PublicKey:
		k.key, k.algs = pk, []string{"EdDSA"}
	default:
		return nil, fmt.Errorf("%s: a %T key is not supported (want RSA, ECDSA or Ed25519)", source, pub)
	}
	return k, nil
}

// LoadPEMFile reads the public keys of a PEM file: PUBLIC KEY blocks
// (PKIX: RSA, ECDSA, Ed25519), RSA PUBLIC KEY blocks and CERTIFICATE
// blocks. A private key is refused: the broker only verifies.
func LoadPEMFile(file string) ([]*Key, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("failed to read the key file: %w", err)
	}
	var keys []*Key
	for n := 1; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		where := fmt.Sprintf("%s: PEM block %d (%s)", file, n, block.Type)
		var pub any
		switch block.Type {
		case "PUBLIC KEY":
			pub, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
				pub = cert.PublicKey
			}
		case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY":
			return nil, fmt.Errorf("%s: a private key: give the broker the public key only (openssl pkey -pubout)", where)
		default:
			return nil, fmt.Errorf("%s: want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE", where)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		k, err := PublicKey(pub, "", where)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: no PEM block found", file)
	}
	return keys, nil
}

// jwk is one JSON Web Key (RFC 7517, 7518, 8037), the members we use.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	N   string `json:"n"`   // RSA modulus
	E   string `json:"e"`   // RSA exponent
	Crv string `json:"crv"` // EC, OKP
	X   string `json:"x"`
	Y   string `json:"y"`
	K   string `json:"k"` // oct: the secret
}

// LoadJWKSFile reads a JSON Web Key Set file: {"keys":[…]}. Keys for
// encryption ("use":"enc") are skipped; RSA, EC (P-256, P-384, P-521), OKP
// (Ed25519) and oct keys are read; a key with "alg" verifies that
// algorithm only.
func LoadJWKSFile(file string) ([]*Key, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("failed to read the JWKS file: %w", err)
	}
	keys, err := ParseJWKS(data, file)
	if err != nil {
		return nil, err
	}
	return keys, nil
}

// ParseJWKS reads a JSON Web Key Set; source names it in errors.
func ParseJWKS(data []byte, source string) ([]*Key, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("%s: not a JSON Web Key Set: %w", source, err)
	}
	var keys []*Key
	for i, raw := range set.Keys {
		var j jwk
		if err := json.Unmarshal(raw, &j); err != nil {
			return nil, fmt.Errorf("%s: key %d: %w", source, i, err)
		}
		where := fmt.Sprintf("%s: key %d", source, i)
		if j.Kid != "" {
			where = fmt.Sprintf("%s: key %q", source, j.Kid)
		}
		if j.Use != "" && j.Use != "sig" {
			continue
		}
		k, err := j.key(where)
		if err != nil {
			return nil, err
		}
		k.ID = j.Kid
		if j.Alg != "" {
			ok := false
			for _, a := range k.algs {
				ok = ok || a == j.Alg
			}
			if !ok {
				return nil, fmt.Errorf("%s: alg %q does not fit a %s key (it verifies %v)", where, j.Alg, j.Kty, k.algs)
			}
			k.algs = []string{j.Alg}
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: no signing key in the set", source)
	}
	return keys, nil
}

func (j *jwk) key(where string) (*Key, error) {
	b64 := func(name, s string) ([]byte, error) {
		if s == "" {
			return nil, fmt.Errorf("%s: %q is missing", where, name)
		}
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not base64url: %w", where, name, err)
		}
		return b, nil
	}
	switch j.Kty {
	case "RSA":
		n, err := b64("n", j.N)
		if err != nil {
			return nil, err
		}
		e, err := b64("e", j.E)
		if err != nil {
			return nil, err
		}
		exp := new(big.Int).SetBytes(e)
		if !exp.IsInt64() || exp.Int64() < 3 || exp.Int64() > 1<<31-1 || exp.Bit(0) == 0 {
			return nil, fmt.Errorf("%s: bad RSA exponent", where)
		}
		return PublicKey(&rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(exp.Int64())}, j.Kid, where)
	case "EC":
		var curve elliptic.Curve
		switch j.Crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		case "P-521":
			curve = elliptic.P521()
		default:
			return nil, fmt.Errorf("%s: curve %q is not supported (want P-256, P-384 or P-521)", where, j.Crv)
		}
		x, err := b64("x", j.X)
		if err != nil {
			return nil, err
		}
		y, err := b64("y", j.Y)
		if err != nil {
			return nil, err
		}
		size := (curve.Params().BitSize + 7) / 8
		if len(x) != size || len(y) != size {
			return nil, fmt.Errorf("%s: x and y must be %d bytes each for %s", where, size, j.Crv)
		}
		pk, err := ecdsa.ParseUncompressedPublicKey(curve, append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		return PublicKey(pk, j.Kid, where)
	case "OKP":
		if j.Crv != "Ed25519" {
			return nil, fmt.Errorf("%s: OKP curve %q is not supported (want Ed25519)", where, j.Crv)
		}
		x, err := b64("x", j.X)
		if err != nil {
			return nil, err
		}
		if len(x) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%s: an Ed25519 key is %d bytes, got %d", where, ed25519.PublicKeySize, len(x))
		}
		return PublicKey(ed25519.PublicKey(x), j.Kid, where)
	case "oct":
		k, err := b64("k", j.K)
		if err != nil {
			return nil, err
		}
		return SecretKey(k, where)
	case "":
		return nil, errors.New(where + `: "kty" is missing`)
	}
	return nil, fmt.Errorf("%s: key type %q is not supported (want RSA, EC, OKP or oct)", where, j.Kty)
}
