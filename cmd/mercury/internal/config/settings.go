package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/schema"
	"github.com/mercury-broker/mercury/web"
	"github.com/mercury-broker/mercury/web/auth"
)

// Config is the whole configuration.
type Config struct {
	File string // the config file; "" without one

	origins map[string]origin // by key: where each value not a default came from

	Listen         string
	AllowOrigins   []string
	MaxMessageSize int64
	MaxConnections int
	OutgoingQueue  int
	QueueLimit     int
	MaxMemory      int64
	PingInterval   time.Duration
	WriteCoalesce  time.Duration
	LogLevel       string
	LogFormat      string
	LogBodies      bool
	Pprof          string
	DataDir        string

	// The Minion audit bridge, run inside the broker when MinionPG is set.
	MinionPG        string
	MinionSchema    string
	MinionTopic     string
	MinionCompatBus string
	// On SQLite instead (Minion::Backend::SQLite): the bridge, and the audit
	// log kept in a SQLite file, both run inside the broker.
	MinionSQLite string
	AuditSQLite  string

	// Security and limits (see SECURITY.md).
	AllowAnonymous      bool
	AdminListen         string
	TLSCert, TLSKey     string
	MaxConnectionsPerIP int
	PublishRate         int
	PublishBurst        int
	MaxJSONDepth        int
	SocketSendBuffer    int
	MaxTopicLength      int
	MaxTopicDepth       int
	HandshakeTimeout    time.Duration
	IdleTimeout         time.Duration
	Compression         bool
	TrustedProxies      []string
	ProxyProtocol       bool
	AllowedHosts        []string
	Auth                Auth

	Cluster Cluster

	Buses []Bus // in the order of the file
}

// Cluster is how the broker joins others on NATS JetStream; no URLs: a
// single broker.
type Cluster struct {
	URLs     []string
	Name     string
	Creds    string
	TLSCA    string
	TLSCert  string
	TLSKey   string
	Replicas int
	MaxBytes int64
}

// settings is every setting but the buses. Adding one is adding a row.
var settings = []setting{
	{"listen", "127.0.0.1:3000", "`HOST:PORT` to listen on (\":3000\" for every interface)", text(func(c *Config) *string { return &c.Listen })},
	{"allow_origin", "", "browser origin `PATTERN` allowed to connect, e.g. example.com, *.example.com, https://example.com (repeatable, or comma-separated)", list(func(c *Config) *[]string { return &c.AllowOrigins })},
	{"max_message_size", itoa(web.DefaultMaxMessageSize), "largest message in `BYTES` (suffixes KiB, MiB, GiB)", byteSize(func(c *Config) *int64 { return &c.MaxMessageSize })},
	{"max_connections", itoa(web.DefaultMaxConnections), "most concurrent WebSocket connections (`N`)", count(func(c *Config) *int { return &c.MaxConnections })},
	{"outgoing_queue", itoa(web.DefaultOutgoingQueue), "`BYTES` waiting for one connection before it is closed as a slow consumer (each message counts 64 bytes more than its size); also the bytes a puller is offered at once (suffixes KiB, MiB, GiB)", byteSizeInt(func(c *Config) *int { return &c.OutgoingQueue })},
	{"queue_limit", itoa(broker.DefaultQueueLimit), "messages (`N`) waiting in one push/pull queue", count(func(c *Config) *int { return &c.QueueLimit })},
	{"max_memory", "0", "`BYTES` of messages the broker holds for clients (queued messages, dead letters and in-memory history); past it a WebSocket pusher is paused and an HTTP push gets 503 queue_full (suffixes KiB, MiB, GiB); 0: a quarter of the machine's memory or 1GiB, whichever is less", byteSize(func(c *Config) *int64 { return &c.MaxMemory })},
	{"write_coalesce", "5ms", "hold a subscriber's next write until this `DURATION` after its last one (or until 4 messages or 4 KiB wait), so that under sustained traffic messages share system calls: less CPU for at most this much latency; a subscriber whose messages come further apart than what is left of the window is written at once (0: write at once)", duration(func(c *Config) *time.Duration { return &c.WriteCoalesce })},
	{"ping_interval", web.DefaultPingInterval.String(), "how often each connection is pinged (`DURATION`)", duration(func(c *Config) *time.Duration { return &c.PingInterval })},
	{"log_level", "info", "`LEVEL` of logging: debug, info, warn or error", oneOf(func(c *Config) *string { return &c.LogLevel }, "debug", "info", "warn", "error")},
	{"log_format", "text", "`FORMAT` of logs: text or json", oneOf(func(c *Config) *string { return &c.LogFormat }, "text", "json")},
	{"log_bodies", "false", "add the message body to the log line of a refused message (off: bodies never reach the logs)", boolean(func(c *Config) *bool { return &c.LogBodies })},
	{"data_dir", "./mercury-data", "`DIR` where durable buses keep their messages and queues; created only when a bus is durable", text(func(c *Config) *string { return &c.DataDir })},
	{"minion.pg", "", "run the Minion audit bridge inside the broker: PostgreSQL `URL` of Minion's database (see 'mercury bridge minion')", text(func(c *Config) *string { return &c.MinionPG })},
	{"minion.sqlite", "", "run the Minion audit bridge inside the broker on Minion's SQLite database at `PATH` (Minion::Backend::SQLite), instead of minion.pg", text(func(c *Config) *string { return &c.MinionSQLite })},
	{"audit.sqlite", "", "run the audit logger inside the broker, keeping the bridge's events in the SQLite file at `PATH` (created when missing; see 'mercury audit')", text(func(c *Config) *string { return &c.AuditSQLite })},
	{"minion.schema", "", "`SCHEMA` of Minion's tables (default: where the search path finds minion_jobs)", text(func(c *Config) *string { return &c.MinionSchema })},
	{"minion.topic", "/audit/minion", "base `TOPIC` of the bridge's events", text(func(c *Config) *string { return &c.MinionTopic })},
	{"minion.compat_bus", "", "also send the old notifier's [id,\"enqueue\"…] frames to this bus `TOPIC`, e.g. /jobs", text(func(c *Config) *string { return &c.MinionCompatBus })},
	{"cluster.urls", "", "join the brokers sharing this NATS JetStream deployment: server `URL`s, e.g. nats://nats1:4222 (repeatable, or comma-separated); none: a single broker", list(func(c *Config) *[]string { return &c.Cluster.URLs })},
	{"cluster.name", "mercury", "`NAME` shared by the brokers that act as one: their streams and buckets on NATS (lower-case letters, digits, - and _)", text(func(c *Config) *string { return &c.Cluster.Name })},
	{"cluster.creds", "", "NATS credentials `FILE` (user JWT and nkey seed)", paths(text(func(c *Config) *string { return &c.Cluster.Creds }))},
	{"cluster.tls.ca", "", "PEM `FILE` of the CA that signed the NATS servers' certificates", paths(text(func(c *Config) *string { return &c.Cluster.TLSCA }))},
	{"cluster.tls.cert", "", "PEM `FILE` of a client certificate for NATS (with --cluster-tls-key)", paths(text(func(c *Config) *string { return &c.Cluster.TLSCert }))},
	{"cluster.tls.key", "", "PEM `FILE` of the client certificate's key", paths(text(func(c *Config) *string { return &c.Cluster.TLSKey }))},
	{"cluster.replicas", "0", "NATS servers (`N`) keeping each stream; 0: 3 on a NATS cluster, 1 on a single server", count(func(c *Config) *int { return &c.Cluster.Replicas })},
	{"cluster.max_bytes", "1GiB", "published messages kept on NATS for replay, at most (`BYTES`, suffixes KiB, MiB, GiB)", byteSize(func(c *Config) *int64 { return &c.Cluster.MaxBytes })},
	{"pprof", "", "serve Go's profiler (net/http/pprof) on `HOST:PORT`, for 'go tool pprof'; off by default, keep it on loopback", text(func(c *Config) *string { return &c.Pprof })},

	{"allow_anonymous", "false", "with no auth configured, serve everyone everything even on a non-loopback address (without it such a broker refuses to start)", boolean(func(c *Config) *bool { return &c.AllowAnonymous })},
	{"admin_listen", "", "serve the admin API (/api/…) on its own `HOST:PORT` instead of the main listener; it still needs the admin right", text(func(c *Config) *string { return &c.AdminListen })},
	{"tls_cert", "", "TLS certificate chain `FILE` (PEM); with tls_key, serve HTTPS and wss://; re-read on SIGHUP", paths(text(func(c *Config) *string { return &c.TLSCert }))},
	{"tls_key", "", "TLS private key `FILE` (PEM) of tls_cert", paths(text(func(c *Config) *string { return &c.TLSKey }))},
	{"max_connections_per_ip", "0", "most concurrent WebSocket connections and event streams from one client address (`N`), for a broker clients reach from the internet (behind a proxy, set trusted_proxies); 0: no limit", count(func(c *Config) *int { return &c.MaxConnectionsPerIP })},
	{"publish_rate", "0", "messages per second (`N`) one WebSocket connection, or one client address over HTTP, may publish; past it the connection is paused (its socket is not read until the rate allows) and a POST gets 429 with Retry-After, nothing is dropped; 0: no limit", count(func(c *Config) *int { return &c.PublishRate })},
	{"publish_burst", "0", "messages (`N`) a connection may publish at once above publish_rate; 0: one second's worth", count(func(c *Config) *int { return &c.PublishBurst })},
	{"max_json_depth", itoa(schema.DefaultMaxDepth), "deepest nesting of arrays and objects (`N`) in a message on a bus with a schema; deeper is refused (422 json) before validation", count(func(c *Config) *int { return &c.MaxJSONDepth })},
	{"socket_send_buffer", itoa(web.DefaultSocketSendBuf), "kernel send buffer (`BYTES`, SO_SNDBUF) of each connection, WebSocket or event stream, so a client that stops reading pins little kernel memory (suffixes KiB, MiB, GiB); 0: the kernel's own sizing", byteSizeInt(func(c *Config) *int { return &c.SocketSendBuffer })},
	{"max_topic_length", itoa(broker.DefaultMaxTopicLength), "longest topic in `BYTES`", count(func(c *Config) *int { return &c.MaxTopicLength })},
	{"max_topic_depth", itoa(broker.DefaultMaxTopicDepth), "most segments (`N`) in a topic", count(func(c *Config) *int { return &c.MaxTopicDepth })},
	{"handshake_timeout", web.DefaultRequestTimeout.String(), "how long a client may take to send its request headers (HTTP or WebSocket handshake) and a POST its body (`DURATION`)", duration(func(c *Config) *time.Duration { return &c.HandshakeTimeout })},
	{"idle_timeout", "0s", "close a WebSocket connection on which no message went either way for this long (`DURATION`; pings do not count); 0: never", duration(func(c *Config) *time.Duration { return &c.IdleTimeout })},
	{"compression", "false", "offer permessage-deflate to clients that ask; max_message_size caps the decompressed size", boolean(func(c *Config) *bool { return &c.Compression })},

	{"trusted_proxies", "", "reverse proxies (`CIDR`s or addresses, e.g. 10.0.0.0/8) believed about the client's address: Forwarded, X-Forwarded-For, and the PROXY protocol with proxy_protocol (repeatable, or comma-separated)", addressRanges(func(c *Config) *[]string { return &c.TrustedProxies })},
	{"proxy_protocol", "false", "accept the PROXY protocol (v1 and v2, e.g. HAProxy's send-proxy-v2) on the listeners from trusted_proxies", boolean(func(c *Config) *bool { return &c.ProxyProtocol })},
	{"allowed_hosts", "", "names (`PATTERN`s, e.g. broker.example.com, *.example.com, or * for any) the broker answers to in the Host header; default: with auth any, without only loopback names and the listen address (repeatable, or comma-separated)", list(func(c *Config) *[]string { return &c.AllowedHosts })},

	{"auth.jwt.secret_file", "", "`FILE` holding the HMAC secret (at least 32 bytes) that verifies HS256 tokens", paths(text(func(c *Config) *string { return &c.Auth.SecretFile }))},
	{"auth.jwt.keys", "", "PEM `FILE`s of public keys (RSA, ECDSA, Ed25519) that verify RS256, ES256 or EdDSA tokens (repeatable, or comma-separated)", paths(list(func(c *Config) *[]string { return &c.Auth.Keys }))},
	{"auth.jwt.jwks", "", "JSON Web Key Set `FILE` of keys that verify tokens", paths(text(func(c *Config) *string { return &c.Auth.JWKS }))},
	{"auth.jwt.issuer", "", "the iss claim tokens must have (`ISSUER`)", text(func(c *Config) *string { return &c.Auth.Issuer })},
	{"auth.jwt.audience", "", "the aud claim tokens must include (`AUDIENCE`)", text(func(c *Config) *string { return &c.Auth.Audience })},
	{"auth.jwt.leeway", "0s", "clock skew allowed on exp, nbf and iat (`DURATION`)", duration(func(c *Config) *time.Duration { return &c.Auth.Leeway })},
	anonymousRow(auth.Sub), anonymousRow(auth.Pub), anonymousRow(auth.Bus),
	anonymousRow(auth.Push), anonymousRow(auth.Pull), anonymousRow(auth.Admin),
}

// setting is one configuration setting.
type setting struct {
	key  string // in the file; dotted for a nested mapping
	def  string // the default, as a flag value
	help string // the flag's usage
	kind kind
}

// shortNames are the flags (and variables) shorter than their keys.
var shortNames = map[string]string{"cluster.urls": "cluster"}

// Flag returns the setting's command-line flag, without dashes.
func (s setting) Flag() string {
	key := s.key
	if short, ok := shortNames[key]; ok {
		key = short
	}
	return strings.NewReplacer("_", "-", ".", "-").Replace(key)
}

// Env returns the setting's environment variable.
func (s setting) Env() string {
	key := s.key
	if short, ok := shortNames[key]; ok {
		key = short
	}
	return "MERCURY_" + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(key))
}

// kind parses and holds one type of value.
type kind struct {
	list   bool                                 // several values: a YAML sequence, repeated flags, a comma-separated variable
	isBool bool                                 // a flag without a value means true
	paths  bool                                 // file paths: in the file, relative to its folder
	parse  func(c *Config, vals []string) error // stores vals into c
	field  func(c *Config) any                  // the value in c, for comparisons
}

// scalar makes the kind of a single value stored by set.
func scalar[T any](field func(*Config) *T, parse func(string) (T, error)) kind {
	return kind{
		parse: func(c *Config, vals []string) error {
			v, err := parse(vals[len(vals)-1]) // a repeated flag: the last wins
			if err != nil {
				return err
			}
			*field(c) = v
			return nil
		},
		field: func(c *Config) any { return *field(c) },
	}
}

func boolean(field func(*Config) *bool) kind {
	k := scalar(field, func(s string) (bool, error) {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return false, fmt.Errorf("want true or false, got %q", s)
		}
		return b, nil
	})
	k.isBool = true
	return k
}

// paths marks a kind's values as file paths.
func paths(k kind) kind {
	k.paths = true
	return k
}

func text(field func(*Config) *string) kind {
	return scalar(field, func(s string) (string, error) { return s, nil })
}

func list(field func(*Config) *[]string) kind {
	return kind{
		list: true,
		parse: func(c *Config, vals []string) error {
			var out []string
			for _, v := range vals {
				for s := range strings.SplitSeq(v, ",") {
					if s = strings.TrimSpace(s); s != "" {
						out = append(out, s)
					}
				}
			}
			*field(c) = out
			return nil
		},
		field: func(c *Config) any { return *field(c) },
	}
}

// addressRanges is a list of addresses and CIDR ranges, checked.
func addressRanges(field func(*Config) *[]string) kind {
	k := list(field)
	parse := k.parse
	k.parse = func(c *Config, vals []string) error {
		if err := parse(c, vals); err != nil {
			return err
		}
		_, err := web.ParseTrustedProxies(*field(c))
		return err
	}
	return k
}

func count(field func(*Config) *int) kind {
	return scalar(field, func(s string) (int, error) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("want a whole number, got %q", s)
		}
		return n, nil
	})
}

func byteSize(field func(*Config) *int64) kind {
	return scalar(field, parseBytes)
}

func byteSizeInt(field func(*Config) *int) kind {
	return scalar(field, func(s string) (int, error) {
		n, err := parseBytes(s)
		return int(n), err
	})
}

// parseBytes reads a size in bytes: 1048576, 1024KiB, 1MiB, 1GiB.
func parseBytes(s string) (int64, error) {
	num, unit := s, int64(1)
	for suffix, mult := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			num, unit = strings.TrimSpace(n), mult
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/unit {
		return 0, fmt.Errorf("want a size in bytes such as 1048576 or 1MiB, got %q", s)
	}
	return n * unit, nil
}

func duration(field func(*Config) *time.Duration) kind {
	return scalar(field, parseDuration)
}

func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("want a duration such as 30s, 5m or 48h, got %q", s)
	}
	return d, nil
}

func oneOf(field func(*Config) *string, choices ...string) kind {
	return scalar(field, func(s string) (string, error) {
		for _, c := range choices {
			if strings.EqualFold(s, c) {
				return c, nil
			}
		}
		return "", fmt.Errorf("want %s, got %q", strings.Join(choices, " or "), s)
	})
}

func itoa(n int) string { return strconv.Itoa(n) }

// find returns the setting of key.
func find(key string) (setting, bool) {
	for _, s := range settings {
		if s.key == key {
			return s, true
		}
	}
	return setting{}, false
}

// isSection reports whether key is the mapping of dotted settings below it.
func isSection(key string) bool {
	for _, s := range settings {
		if strings.HasPrefix(s.key, key+".") {
			return true
		}
	}
	return false
}

// Restart lists the settings whose values differ between a and b: a
// reload applies the buses and auth only, these need a restart.
func Restart(a, b *Config) []string {
	var out []string
	for _, s := range settings {
		if strings.HasPrefix(s.key, "auth.") {
			continue
		}
		if !reflect.DeepEqual(s.kind.field(a), s.kind.field(b)) {
			out = append(out, s.key)
		}
	}
	return out
}
