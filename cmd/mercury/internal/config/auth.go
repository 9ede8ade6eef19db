package config

import (
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mercury-broker/mercury/web/auth"
)

// Auth is the auth section of the configuration:
//
//	auth:
//	  jwt: {secret_file: …, keys: [...], jwks: …, issuer: …, audience: …, leeway: 30s}
//	  api_keys:
//	    - {name: minion-bridge, hash: "sha256:…", rights: {pub: [/minion]}}
//	  anonymous: {sub: [/public]}
//
// SIGHUP and POST /api/reload re-read it, with the buses.
type Auth struct {
	SecretFile string
	Keys       []string
	JWKS       string
	Issuer     string
	Audience   string
	Leeway     time.Duration
	// Anonymous holds, per action, what clients without a credential may
	// use: topic prefixes, or "true" for every topic.
	Anonymous [len(actionRows)][]string
	APIKeys   []APIKey // from the file only
}

// APIKey is one static key of the file: its name, the hash of the key
// (mercury auth hash-key prints it) and its rights.
type APIKey struct {
	Name   string
	Hash   string
	Rights auth.Spec
	Line   int
}

var actionRows = [...]auth.Action{auth.Sub, auth.Pub, auth.Bus, auth.Push, auth.Pull, auth.Admin}

// anonymousRow is the setting of anonymous clients' rights for action a.
func anonymousRow(a auth.Action) setting {
	field := func(c *Config) *[]string { return &c.Auth.Anonymous[a] }
	k := list(field)
	parse := k.parse
	k.parse = func(c *Config, vals []string) error {
		if err := parse(c, vals); err != nil {
			return err
		}
		spec, err := auth.ParseSpecStrings(map[string][]string{a.String(): *field(c)})
		if err != nil {
			return err
		}
		if spec.HasPlaceholders() {
			return fmt.Errorf("anonymous clients have no claims to fill a placeholder such as {sub}")
		}
		return nil
	}
	return setting{"auth.anonymous." + a.String(), "",
		fmt.Sprintf("topic `PREFIX` under which clients without a token may %s (repeatable, or comma-separated; true: every topic)", a), k}
}

// Configured reports whether any authentication is configured: keys,
// API keys or anonymous rights. Without it, every client may do
// everything, which serve allows only on loopback or with
// --allow-anonymous.
func (a *Auth) Configured() bool {
	if a.SecretFile != "" || len(a.Keys) > 0 || a.JWKS != "" || len(a.APIKeys) > 0 {
		return true
	}
	for _, vals := range a.Anonymous {
		if len(vals) > 0 {
			return true
		}
	}
	return false
}

// Authenticator loads the keys the section names and returns the
// authenticator, with extra API keys beside the configured ones; nil when
// nothing is configured.
func (c *Config) Authenticator(extra ...auth.APIKey) (*auth.Authenticator, error) {
	a := &c.Auth
	if !a.Configured() {
		return nil, nil
	}
	var keys []*auth.Key
	if a.SecretFile != "" {
		k, err := auth.LoadSecretFile(a.SecretFile)
		if err != nil {
			return nil, &Error{Where: c.where(), Key: "auth.jwt.secret_file", Msg: err.Error()}
		}
		keys = append(keys, k)
	}
	for _, f := range a.Keys {
		ks, err := auth.LoadPEMFile(f)
		if err != nil {
			return nil, &Error{Where: c.where(), Key: "auth.jwt.keys", Msg: err.Error()}
		}
		keys = append(keys, ks...)
	}
	if a.JWKS != "" {
		ks, err := auth.LoadJWKSFile(a.JWKS)
		if err != nil {
			return nil, &Error{Where: c.where(), Key: "auth.jwt.jwks", Msg: err.Error()}
		}
		keys = append(keys, ks...)
	}
	opts := auth.Options{}
	if len(keys) > 0 {
		v, err := auth.NewJWTVerifier(auth.JWTOptions{Keys: keys, Issuer: a.Issuer, Audience: a.Audience, Leeway: a.Leeway})
		if err != nil {
			return nil, &Error{Where: c.where(), Key: "auth.jwt", Msg: err.Error()}
		}
		opts.JWT = v
	} else if a.Issuer != "" || a.Audience != "" {
		return nil, &Error{Where: c.where(), Key: "auth.jwt", Msg: "issuer or audience without a key: set secret_file, keys or jwks"}
	}
	anon := map[string][]string{}
	for i, vals := range a.Anonymous {
		anon[actionRows[i].String()] = vals
	}
	spec, err := auth.ParseSpecStrings(anon)
	if err == nil {
		opts.Anonymous, err = spec.Expand(nil)
	}
	if err != nil {
		return nil, &Error{Where: c.where(), Key: "auth.anonymous", Msg: err.Error()}
	}
	for _, k := range a.APIKeys {
		rights, err := k.Rights.Expand(nil)
		where := fmt.Sprintf("%s:%d", c.File, k.Line)
		if err != nil {
			return nil, &Error{Where: where, Key: "auth.api_keys." + k.Name + ".rights", Msg: err.Error()}
		}
		key, err := auth.NewAPIKey(k.Name, k.Hash, rights)
		if err != nil {
			return nil, &Error{Where: where, Key: "auth.api_keys." + k.Name + ".hash", Msg: err.Error()}
		}
		opts.APIKeys = append(opts.APIKeys, key)
	}
	opts.APIKeys = append(opts.APIKeys, extra...)
	authn, err := auth.New(opts)
	if err != nil {
		return nil, &Error{Where: c.where(), Key: "auth.api_keys", Msg: err.Error()}
	}
	return authn, nil
}

func (c *Config) where() string {
	if c.File == "" {
		return "configuration"
	}
	return c.File
}

// apiKeys reads auth.api_keys: a list of {name, hash, rights}.
func (p *fileParser) apiKeys(v *yaml.Node) error {
	const key = "auth.api_keys"
	if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
		return nil
	}
	if v.Kind != yaml.SequenceNode {
		return p.errorf(v, key, "want a list of {name, hash, rights}, got %s", describe(v))
	}
	names := map[string]int{}
	for _, item := range v.Content {
		item = resolve(item)
		k := APIKey{Line: item.Line}
		var rights *yaml.Node
		err := p.section(item, key, map[string]func(*yaml.Node, string) error{
			"name": func(v *yaml.Node, key string) error { return p.word(v, key, &k.Name) },
			"hash": func(v *yaml.Node, key string) error { return p.word(v, key, &k.Hash) },
			"rights": func(v *yaml.Node, key string) error {
				rights = v
				return nil
			},
		})
		if err != nil {
			return err
		}
		if k.Name == "" || k.Hash == "" {
			return p.errorf(item, key, "an API key needs a name and a hash (mercury auth new-key prints both)")
		}
		if first, dup := names[k.Name]; dup {
			return p.errorf(item, key+"."+k.Name, "given twice (first on line %d)", first)
		}
		names[k.Name] = item.Line
		if rights != nil {
			var m map[string]any
			if rights.Kind != yaml.MappingNode || rights.Decode(&m) != nil {
				return p.errorf(rights, key+"."+k.Name+".rights", "want a mapping of actions to topic prefixes, such as {pub: [/jobs]}, got %s", describe(rights))
			}
			spec, err := auth.ParseSpec(m)
			if err != nil {
				return p.errorf(rights, key+"."+k.Name+".rights", "%v", err)
			}
			if spec.HasPlaceholders() {
				return p.errorf(rights, key+"."+k.Name+".rights", "an API key has no claims to fill a placeholder such as {sub}")
			}
			k.Rights = spec
		}
		p.out.apiKeys = append(p.out.apiKeys, k)
	}
	return nil
}

// word reads a non-empty scalar.
func (p *fileParser) word(v *yaml.Node, key string, out *string) error {
	if v.Kind != yaml.ScalarNode || v.Tag == "!!null" || strings.TrimSpace(v.Value) == "" {
		return p.errorf(v, key, "want a value, got %s", describe(v))
	}
	*out = v.Value
	return nil
}
