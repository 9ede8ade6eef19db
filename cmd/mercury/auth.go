package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	goio "io"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mercury-broker/mercury/cmd/mercury/internal/command"
	"github.com/mercury-broker/mercury/web/auth"
)

// runAuth runs "mercury auth new-key | hash-key | new-secret | token":
// the helpers of the broker's auth configuration.
func runAuth(ctx context.Context, args []string, io command.Stdio) error {
	usage := "want: mercury auth new-key | hash-key | new-secret | token [flags]"
	if len(args) == 0 {
		return command.UsageError("%s", usage)
	}
	switch args[0] {
	case "new-key":
		return runAuthNewKey(args[1:], io)
	case "hash-key":
		return runAuthHashKey(args[1:], io)
	case "new-secret":
		return runAuthNewSecret(args[1:], io)
	case "token":
		return runAuthToken(args[1:], io)
	case "-h", "--help", "help":
		goio.WriteString(io.Err, "Usage: mercury auth new-key | hash-key | new-secret | token [flags]\n\n"+
			"  new-key     print a new random API key and the hash the config file stores\n"+
			"  hash-key    read an API key on standard input, print its hash\n"+
			"  new-secret  write a new random HMAC secret file for auth.jwt.secret_file\n"+
			"  token       sign a token with an HMAC secret file, for tests and scripts\n\n"+
			"Examples:\n"+
			"  mercury auth new-key\n"+
			"  printf %s \"$KEY\" | mercury auth hash-key\n"+
			"  mercury auth new-secret hs256.secret\n"+
			"  mercury auth token --secret-file hs256.secret --sub 42 --rights '{\"sub\":[\"/livesys/{sub}\"]}'\n")
		return nil
	}
	return command.UsageError("unknown auth command %q: %s", args[0], usage)
}

func runAuthNewKey(args []string, io command.Stdio) error {
	fs := command.NewFlagSet("auth new-key", "[flags]",
		"mercury auth new-key    # key: give it to the service; hash: put it in auth.api_keys")
	if err := command.ParseFlags(fs, args, io); err != nil {
		return err
	}
	key := auth.GenerateKey()
	hash, err := auth.HashKey(key)
	if err != nil {
		return err
	}
	fmt.Fprintf(io.Out, "key:  %s\nhash: %s\n", key, hash)
	return nil
}

func runAuthHashKey(args []string, io command.Stdio) error {
	fs := command.NewFlagSet("auth hash-key", "< KEY",
		"printf %s \"$KEY\" | mercury auth hash-key    # the key on standard input, not in the shell history")
	if err := command.ParseFlags(fs, args, io); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return command.UsageError("the key is read from standard input, not from the command line (it would show in ps and the shell history)")
	}
	line, err := bufio.NewReader(io.In).ReadString('\n')
	if err != nil && line == "" {
		return command.UsageError("no key on standard input")
	}
	hash, err := auth.HashKey(strings.TrimRight(line, "\r\n"))
	if err != nil {
		return command.UsageError("%v", err)
	}
	fmt.Fprintln(io.Out, hash)
	return nil
}

// secretBytes is the random part of a new HMAC secret: 256 bits, the
// least the broker accepts, and more than HS256 can use.
const secretBytes = 48

func runAuthNewSecret(args []string, io command.Stdio) error {
	fs := command.NewFlagSet("auth new-secret", "FILE",
		"mercury auth new-secret hs256.secret    # then: auth.jwt.secret_file: hs256.secret")
	if err := command.ParseFlags(fs, args, io); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return command.UsageError("want one FILE to write the secret to")
	}
	b := make([]byte, secretBytes)
	rand.Read(b)
	secret := base64.RawURLEncoding.EncodeToString(b) + "\n"
	// O_EXCL: a secret in use is never overwritten by mistake.
	f, err := os.OpenFile(fs.Arg(0), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("failed to create the secret file: %w", err)
	}
	if _, err := f.WriteString(secret); err != nil {
		f.Close()
		return fmt.Errorf("failed to write the secret file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("failed to write the secret file: %w", err)
	}
	fmt.Fprintf(io.Err, "wrote a %d-byte HMAC secret to %s (mode 0600)\n", len(secret)-1, fs.Arg(0))
	return nil
}

func runAuthToken(args []string, io command.Stdio) error {
	fs := command.NewFlagSet("auth token", "--secret-file FILE [flags]",
		`mercury auth token --secret-file hs256.secret --sub 42 --rights '{"sub":["/livesys/{sub}"]}' --ttl 1h`)
	secretFile := fs.String("secret-file", "", "the HMAC secret `FILE` the broker's auth.jwt.secret_file names")
	sub := fs.String("sub", "", "the token's subject (sub claim)")
	rights := fs.String("rights", "{}", "the \"mercury\" claim, `JSON`: {\"sub\":[…],\"pub\":[…],\"admin\":true}")
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid")
	iss := fs.String("iss", "", "issuer (iss claim)")
	aud := fs.String("aud", "", "audience (aud claim)")
	if err := command.ParseFlags(fs, args, io); err != nil {
		return err
	}
	if *secretFile == "" {
		return command.UsageError("--secret-file is needed")
	}
	data, err := os.ReadFile(*secretFile)
	if err != nil {
		return fmt.Errorf("failed to read the secret: %w", err)
	}
	key := []byte(strings.TrimRight(string(data), "\r\n"))
	// The broker's rule: a token signed with a shorter secret could never
	// be verified.
	if _, err := auth.SecretKey(key, *secretFile); err != nil {
		return command.UsageError("%v (make one with: mercury auth new-secret FILE)", err)
	}
	var r map[string]any
	if err := json.Unmarshal([]byte(*rights), &r); err != nil {
		return command.UsageError("--rights: %v", err)
	}
	if _, err := auth.ParseSpec(r); err != nil {
		return command.UsageError("--rights: %v", err)
	}
	now := time.Now()
	claims := jwt.MapClaims{"iat": now.Unix(), "exp": now.Add(*ttl).Unix(), "mercury": r}
	for name, v := range map[string]string{"sub": *sub, "iss": *iss, "aud": *aud} {
		if v != "" {
			claims[name] = v
		}
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(key)
	if err != nil {
		return err
	}
	fmt.Fprintln(io.Out, tok)
	return nil
}
