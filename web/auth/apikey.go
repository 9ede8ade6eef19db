package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
)

// APIKey is a static credential for a service. The broker keeps only its
// hash: a leaked config file does not leak the keys.
type APIKey struct {
	Name   string
	Rights Rights
	hash   keyHash
}

type keyHash [sha256.Size]byte

// hashPrefix starts every key hash, naming the function.
const hashPrefix = "sha256:"

// NewAPIKey returns an API key of the given name and rights from its hash,
// as HashKey printed it.
func NewAPIKey(name, hash string, rights Rights) (APIKey, error) {
	hexHash, ok := strings.CutPrefix(hash, hashPrefix)
	if !ok {
		return APIKey{}, fmt.Errorf("API key %q: hash %q: want %s followed by 64 hex digits (mercury auth hash-key prints it)", name, hash, hashPrefix)
	}
	b, err := hex.DecodeString(hexHash)
	if err != nil || len(b) != sha256.Size {
		return APIKey{}, fmt.Errorf("API key %q: hash %q: want %s followed by 64 hex digits (mercury auth hash-key prints it)", name, hash, hashPrefix)
	}
	k := APIKey{Name: name, Rights: rights}
	copy(k.hash[:], b)
	return k, nil
}

// MinKeyLength is the shortest API key HashKey accepts: a key is only as
// strong as it is long, and a fast hash is enough only for long random
// keys.
const MinKeyLength = 32

// HashKey returns what the config file stores for key.
func HashKey(key string) (string, error) {
	if len(key) < MinKeyLength {
		return "", fmt.Errorf("an API key needs at least %d characters, got %d (mercury auth new-key makes one)", MinKeyLength, len(key))
	}
	if strings.Count(key, ".") == 2 {
		return "", fmt.Errorf("an API key must not look like a JWT (two dots)")
	}
	for _, r := range key {
		if r <= ' ' || r == 0x7f || r == ',' {
			return "", fmt.Errorf("an API key must not hold spaces, commas or control characters")
		}
	}
	h := hashKey(key)
	return hashPrefix + hex.EncodeToString(h[:]), nil
}

func hashKey(key string) keyHash { return sha256.Sum256([]byte(key)) }

// GenerateKey returns a new random API key: "mk_" and 256 random bits in
// base64url.
func GenerateKey() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	return "mk_" + base64.RawURLEncoding.EncodeToString(b)
}
