package auth

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// JWTOptions configures a JWTVerifier.
type JWTOptions struct {
	Keys     []*Key        // at least one
	Issuer   string        // when set, the iss claim must equal it
	Audience string        // when set, the aud claim must contain it
	Leeway   time.Duration // allowed clock skew for exp and nbf
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// JWTVerifier checks JSON Web Tokens: signature with one of its keys (the
// key's type fixes the algorithm), exp (required), nbf, iss and aud.
type JWTVerifier struct {
	opts   JWTOptions
	parser *jwt.Parser
}

// RightsClaim is the claim that holds a token's rights.
const RightsClaim = "mercury"

// NewJWTVerifier returns a verifier for opts.
func NewJWTVerifier(opts JWTOptions) (*JWTVerifier, error) {
	if len(opts.Keys) == 0 {
		return nil, errors.New("auth: a JWT verifier needs at least one key")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	var algs []string
	for _, k := range opts.Keys {
		for _, a := range k.algs {
			if !slices.Contains(algs, a) {
				algs = append(algs, a)
			}
		}
	}
	popts := []jwt.ParserOption{
		jwt.WithValidMethods(algs), // never "none"
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(opts.Leeway),
		jwt.WithTimeFunc(opts.Now),
		jwt.WithIssuedAt(),
	}
	if opts.Issuer != "" {
		popts = append(popts, jwt.WithIssuer(opts.Issuer))
	}
	if opts.Audience != "" {
		popts = append(popts, jwt.WithAudience(opts.Audience))
	}
	return &JWTVerifier{opts: opts, parser: jwt.NewParser(popts...)}, nil
}

// Algorithms returns the algorithms the verifier's keys accept.
func (v *JWTVerifier) Algorithms() []string {
	var algs []string
	for _, k := range v.opts.Keys {
		for _, a := range k.algs {
			if !slices.Contains(algs, a) {
				algs = append(algs, a)
			}
		}
	}
	return algs
}

// keyFor returns the keys that may verify t: those whose type fits the
// token's algorithm and whose kid, when both have one, is the token's.
func (v *JWTVerifier) keyFor(t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	kid, _ := t.Header["kid"].(string)
	var set jwt.VerificationKeySet
	for _, k := range v.opts.Keys {
		if !slices.Contains(k.algs, alg) {
			continue
		}
		if kid != "" && k.ID != "" && k.ID != kid {
			continue
		}
		set.Keys = append(set.Keys, k.key)
	}
	if len(set.Keys) == 0 {
		if kid != "" {
			return nil, fmt.Errorf("no %s key with kid %q is configured", alg, kid)
		}
		return nil, fmt.Errorf("no %s key is configured", alg)
	}
	return set, nil
}

// Verify checks token and returns its grant: rights from its "mercury"
// claim, placeholders filled from its other claims; subject; expiry.
func (v *JWTVerifier) Verify(token string) (*Grant, error) {
	claims := jwt.MapClaims{}
	tok, err := v.parser.ParseWithClaims(token, claims, v.keyFor)
	if err != nil {
		alg := ""
		if tok != nil && tok.Method != nil {
			alg = tok.Method.Alg()
		}
		return nil, v.explain(err, claims, alg)
	}
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		return nil, &CredentialError{Code: CodeInvalid, Msg: "token has no valid exp claim: tokens must expire"}
	}
	g := &Grant{Kind: KindToken, Expires: exp.Time.Add(v.opts.Leeway)}
	g.Subject, _ = claims["sub"].(string)
	spec := Spec{}
	if raw, ok := claims[RightsClaim]; ok {
		m, ok := raw.(map[string]any)
		if !ok {
			return nil, &CredentialError{Code: CodeInvalid, Msg: fmt.Sprintf("token claim %q: want an object of rights such as {\"sub\":[\"/livesys/{sub}\"]}", RightsClaim)}
		}
		if spec, err = ParseSpec(m); err != nil {
			return nil, &CredentialError{Code: CodeInvalid, Msg: fmt.Sprintf("token claim %q: %v", RightsClaim, err)}
		}
	}
	g.Rights, err = spec.Expand(func(name string) (string, bool) {
		s, ok := claims[name].(string)
		return s, ok
	})
	if err != nil {
		return nil, &CredentialError{Code: CodeInvalid, Msg: fmt.Sprintf("token claim %q: %v", RightsClaim, err)}
	}
	return g, nil
}

// explain turns the JWT library's error into a refusal that says what is
// wrong with the token.
func (v *JWTVerifier) explain(err error, claims jwt.MapClaims, alg string) error {
	at := func(get func() (*jwt.NumericDate, error)) string {
		if d, e := get(); e == nil && d != nil {
			return " at " + d.Time.UTC().Format(time.RFC3339)
		}
		return ""
	}
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return &CredentialError{Code: CodeInvalid, Msg: "token is malformed: " + lastCause(err)}
	case errors.Is(err, jwt.ErrTokenSignatureInvalid) && alg != "" && !slices.Contains(v.Algorithms(), alg):
		return &CredentialError{Code: CodeInvalid, Msg: fmt.Sprintf("token algorithm %q is not accepted (accepted: %s)",
			alg, strings.Join(v.Algorithms(), ", "))}
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return &CredentialError{Code: CodeInvalid, Msg: "token signature does not verify with the configured keys"}
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return &CredentialError{Code: CodeInvalid, Msg: "token cannot be verified: " + lastCause(err) +
			" (accepted algorithms: " + strings.Join(v.Algorithms(), ", ") + ")"}
	case errors.Is(err, jwt.ErrTokenExpired):
		return &CredentialError{Code: CodeExpired, Msg: "token expired" + at(claims.GetExpirationTime)}
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return &CredentialError{Code: CodeNotYetValid, Msg: "token is not valid before" + at(claims.GetNotBefore)}
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return &CredentialError{Code: CodeNotYetValid, Msg: "token was issued in the future" + at(claims.GetIssuedAt)}
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		iss, _ := claims.GetIssuer()
		return &CredentialError{Code: CodeInvalid, Msg: fmt.Sprintf("token issuer is %q, want %q", iss, v.opts.Issuer)}
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		aud, _ := claims.GetAudience()
		return &CredentialError{Code: CodeInvalid, Msg: fmt.Sprintf("token audience is %q, want %q", []string(aud), v.opts.Audience)}
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		msg := "token lacks a required claim: " + lastCause(err)
		if strings.Contains(msg, "exp ") {
			msg += " (tokens must expire)"
		}
		return &CredentialError{Code: CodeInvalid, Msg: msg}
	}
	return &CredentialError{Code: CodeInvalid, Msg: "token refused: " + lastCause(err)}
}

// lastCause returns the most specific part of a wrapped error's text.
func lastCause(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		return msg[i+2:]
	}
	return msg
}
