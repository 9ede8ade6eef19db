package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	goio "io"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mercury-broker/mercury/web/auth"
)

// runAuth runs "mercury auth new-key | hash-key | token": the helpers of
// the broker's auth configuration.
func runAuth(ctx context.Context, args []string, io stdio) error {
	usage := "want: mercury auth new-key | hash-key | token [flags]"
	if len(args) == 0 {
		return usageError("%s", usage)
	}
	switch args[0] {
	case "new-key":
		return runAuthNewKey(args[1:], io)
	case "hash-key":
		return runAuthHashKey(args[1:], io)
	case "token":
		return runAuthToken(args[1:], io)
	case "-h", "--help", "help":
		goio.WriteString(io.err, "Usage: mercury auth new-key | hash-key | token [flags]\n\n"+
			"  new-key   print a new random API key and the hash the config file stores\n"+
			"  hash-key  read an API key on standard input, print its hash\n"+
			"  token     sign a token with an HMAC secret file, for tests and scripts\n\n"+
			"Examples:\n"+
			"  mercury auth new-key\n"+
			"  printf %s \"$KEY\" | mercury auth hash-key\n"+
			"  mercury auth token --secret-file hs256.secret --sub 42 --rights '{\"sub\":[\"/livesys/{sub}\"]}'\n")
		return nil
	}
	return usageError("unknown auth command %q: %s", args[0], usage)
}

func runAuthNewKey(args []string, io stdio) error {
	fs := newFlagSet("auth new-key", "[flags]",
		"mercury auth new-key    # key: give it to the service; hash: put it in auth.api_keys")
	if err := parseFlags(fs, args, io); err != nil {
		return err
	}
	key := auth.GenerateKey()
	hash, err := auth.HashKey(key)
	if err != nil {
		return err
	}
	fmt.Fprintf(io.out, "key:  %s\nhash: %s\n", key, hash)
	return nil
}

func runAuthHashKey(args []string, io stdio) error {
	fs := newFlagSet("auth hash-key", "< KEY",
		"printf %s \"$KEY\" | mercury auth hash-key    # the key on standard input, not in the shell history")
	if err := parseFlags(fs, args, io); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("the key is read from standard input, not from the command line (it would show in ps and the shell history)")
	}
	line, err := bufio.NewReader(io.in).ReadString('\n')
	if err != nil && line == "" {
		return usageError("no key on standard input")
	}
	hash, err := auth.HashKey(strings.TrimRight(line, "\r\n"))
	if err != nil {
		return usageError("%v", err)
	}
	fmt.Fprintln(io.out, hash)
	return nil
}

func runAuthToken(args []string, io stdio) error {
	fs := newFlagSet("auth token", "--secret-file FILE [flags]",
		`mercury auth token --secret-file hs256.secret --sub 42 --rights '{"sub":["/livesys/{sub}"]}' --ttl 1h`)
	secretFile := fs.String("secret-file", "", "the HMAC secret `FILE` the broker's auth.jwt.secret_file names")
	sub := fs.String("sub", "", "the token's subject (sub claim)")
	rights := fs.String("rights", "{}", "the \"mercury\" claim, `JSON`: {\"sub\":[…],\"pub\":[…],\"admin\":true}")
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid")
	iss := fs.String("iss", "", "issuer (iss claim)")
	aud := fs.String("aud", "", "audience (aud claim)")
	if err := parseFlags(fs, args, io); err != nil {
		return err
	}
	if *secretFile == "" {
		return usageError("--secret-file is needed")
	}
	key, err := os.ReadFile(*secretFile)
	if err != nil {
		return fmt.Errorf("failed to read the secret: %w", err)
	}
	var r map[string]any
	if err := json.Unmarshal([]byte(*rights), &r); err != nil {
		return usageError("--rights: %v", err)
	}
	if _, err := auth.ParseSpec(r); err != nil {
		return usageError("--rights: %v", err)
	}
	now := time.Now()
	claims := jwt.MapClaims{"iat": now.Unix(), "exp": now.Add(*ttl).Unix(), "mercury": r}
	for name, v := range map[string]string{"sub": *sub, "iss": *iss, "aud": *aud} {
		if v != "" {
			claims[name] = v
		}
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(strings.TrimRight(string(key), "\r\n")))
	if err != nil {
		return err
	}
	fmt.Fprintln(io.out, tok)
	return nil
}
