package auth

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Kind is what a grant was made from.
type Kind string

// Kinds of grants.
const (
	KindAnonymous Kind = "anonymous"
	KindToken     Kind = "token"
	KindAPIKey    Kind = "api_key"
)

// Grant is what a client may do, as its credential says.
type Grant struct {
	Kind    Kind
	Subject string // the token's sub claim, or the API key's name
	Rights  Rights
	// Expires is when the credential stops being valid (exp plus the
	// leeway); zero: never (API keys, anonymous).
	Expires time.Time
}

// Codes of CredentialError.
const (
	CodeMissing     = "unauthorized"        // no credential, and anonymous clients may not do this
	CodeInvalid     = "token_invalid"       // bad signature, issuer, audience, claims …
	CodeExpired     = "token_expired"       // past exp
	CodeNotYetValid = "token_not_yet_valid" // before nbf or iat
	CodeUnknownKey  = "api_key_unknown"     // an API key that is not configured
)

// ErrCredential is matched (with errors.Is) by every refused credential.
var ErrCredential = errors.New("auth: credential refused")

// CredentialError is a refused credential: Code for programs, Msg for
// people.
type CredentialError struct {
	Code string
	Msg  string
}

func (e *CredentialError) Error() string { return e.Msg }

// Is makes errors.Is(err, ErrCredential) true.
func (e *CredentialError) Is(target error) bool { return target == ErrCredential }

// Options configures an Authenticator.
type Options struct {
	JWT       *JWTVerifier // nil: tokens are refused
	APIKeys   []APIKey
	Anonymous Rights // what a client without a credential may do
}

// Authenticator turns credentials into grants. It is immutable: a reload
// builds a new one.
type Authenticator struct {
	jwt       *JWTVerifier
	keys      map[keyHash]*APIKey
	anonymous *Grant
}

// New returns an Authenticator. API keys must have distinct hashes.
func New(opts Options) (*Authenticator, error) {
	a := &Authenticator{jwt: opts.JWT, keys: make(map[keyHash]*APIKey, len(opts.APIKeys)),
		anonymous: &Grant{Kind: KindAnonymous, Rights: opts.Anonymous}}
	for i := range opts.APIKeys {
		k := &opts.APIKeys[i]
		if prev, dup := a.keys[k.hash]; dup {
			return nil, errors.New("auth: API keys " + prev.Name + " and " + k.Name + " have the same hash")
		}
		a.keys[k.hash] = k
	}
	return a, nil
}

// Anonymous returns the grant of a client without a credential.
func (a *Authenticator) Anonymous() *Grant { return a.anonymous }

// Authenticate verifies credential: a JWT (three dot-separated parts) or
// an API key. The empty credential is anonymous.
func (a *Authenticator) Authenticate(credential string) (*Grant, error) {
	switch {
	case credential == "":
		return a.anonymous, nil
	case strings.Count(credential, ".") == 2:
		if a.jwt == nil {
			return nil, &CredentialError{Code: CodeInvalid, Msg: "this broker accepts no tokens (no JWT keys are configured)"}
		}
		return a.jwt.Verify(credential)
	}
	k, ok := a.keys[hashKey(credential)]
	if !ok {
		return nil, &CredentialError{Code: CodeUnknownKey, Msg: "unknown API key"}
	}
	return &Grant{Kind: KindAPIKey, Subject: k.Name, Rights: k.Rights}, nil
}

// String describes what the authenticator accepts, for logs and
// mercury config check.
func (a *Authenticator) String() string {
	var parts []string
	if a.jwt != nil {
		parts = append(parts, fmt.Sprintf("tokens (%d keys: %s)", len(a.jwt.opts.Keys), strings.Join(a.jwt.Algorithms(), ", ")))
	}
	parts = append(parts, fmt.Sprintf("%d API keys", len(a.keys)))
	var anon []string
	for _, act := range Actions {
		if a.anonymous.Rights.Any(act) {
			anon = append(anon, a.anonymous.Rights.Describe(act))
		}
	}
	if len(anon) == 0 {
		parts = append(parts, "anonymous clients may do nothing")
	} else {
		parts = append(parts, "anonymous clients: "+strings.Join(anon, "; "))
	}
	return strings.Join(parts, ", ")
}
