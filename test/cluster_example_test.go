package test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// Docker does not run here: the example compose file of the deployment
// guide is checked by reading it. Its NATS servers form one JetStream
// cluster, its brokers share a config that `mercury config check` accepts
// and that names those servers, and its load balancer sends connections
// only to brokers whose /readyz answers.
func TestClusterExampleCompose(t *testing.T) {
	const dir = "../examples/cluster/"
	data, err := os.ReadFile(dir + "compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Image     string   `yaml:"image"`
			Build     string   `yaml:"build"`
			Command   []string `yaml:"command"`
			Volumes   []string `yaml:"volumes"`
			Ports     []string `yaml:"ports"`
			DependsOn any      `yaml:"depends_on"`
		} `yaml:"services"`
		Volumes map[string]any `yaml:"volumes"`
	}
	if err := yaml.Unmarshal(data, &compose); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	nats := []string{"nats1", "nats2", "nats3"}
	brokers := []string{"mercury1", "mercury2", "mercury3"}
	for _, name := range nats {
		s, ok := compose.Services[name]
		if !ok {
			t.Fatalf("no service %s", name)
		}
		cmd := strings.Join(s.Command, " ")
		for _, want := range []string{"--name " + name, "--js", "--sd /data", "--cluster_name mercury-nats",
			"--routes nats://nats1:6222,nats://nats2:6222,nats://nats3:6222"} {
			if !strings.Contains(cmd, want) {
				t.Errorf("%s: command %q lacks %q", name, cmd, want)
			}
		}
		if len(s.Volumes) != 1 || !strings.HasPrefix(s.Volumes[0], name+":") {
			t.Errorf("%s: volumes %v: want its own for JetStream", name, s.Volumes)
		}
		if _, ok := compose.Volumes[name]; !ok {
			t.Errorf("volume %s not declared", name)
		}
	}
	for _, name := range brokers {
		s, ok := compose.Services[name]
		if !ok {
			t.Fatalf("no service %s", name)
		}
		if s.Build != "../.." || s.DependsOn == nil {
			t.Errorf("%s: build %q, depends_on %v", name, s.Build, s.DependsOn)
		}
		cmd := strings.Join(s.Command, " ")
		if !strings.HasPrefix(cmd, "serve ") || !strings.Contains(cmd, "--config /etc/mercury/mercury.yaml") {
			t.Errorf("%s: command %q", name, cmd)
		}
		if len(s.Volumes) != 1 || s.Volumes[0] != "./mercury.yaml:/etc/mercury/mercury.yaml:ro" {
			t.Errorf("%s: volumes %v", name, s.Volumes)
		}
	}
	if lb := compose.Services["lb"]; len(lb.Ports) != 1 || lb.Ports[0] != "3000:3000" {
		t.Errorf("lb: ports %v", lb.Ports)
	}

	out, err := exec.Command(mercuryBin, "config", "check", dir+"mercury.yaml").CombinedOutput()
	if err != nil {
		t.Fatalf("mercury config check: %v\n%s", err, out)
	}
	var cfg struct {
		Cluster struct {
			URLs []string `yaml:"urls"`
		} `yaml:"cluster"`
	}
	data, _ = os.ReadFile(dir + "mercury.yaml")
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Cluster.URLs, ",") != "nats://nats1:4222,nats://nats2:4222,nats://nats3:4222" {
		t.Errorf("mercury.yaml: cluster urls %v", cfg.Cluster.URLs)
	}

	haproxy, err := os.ReadFile(dir + "haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range append([]string{"option httpchk GET /readyz", "http-check expect status 200", "timeout tunnel"},
		"server mercury1 mercury1:3000 check", "server mercury2 mercury2:3000 check", "server mercury3 mercury3:3000 check") {
		if !strings.Contains(string(haproxy), want) {
			t.Errorf("haproxy.cfg lacks %q", want)
		}
	}
	// The proxy passes each client's address, and the brokers trust it
	// for that: the lb's fixed address is the one trusted.
	for _, line := range strings.Split(string(haproxy), "\n") {
		if strings.Contains(line, "server mercury") && !strings.Contains(line, "send-proxy-v2") {
			t.Errorf("haproxy.cfg: %q does not pass the client's address (send-proxy-v2)", strings.TrimSpace(line))
		}
	}
	var proxy struct {
		TrustedProxies []string `yaml:"trusted_proxies"`
		ProxyProtocol  bool     `yaml:"proxy_protocol"`
	}
	if err := yaml.Unmarshal(data, &proxy); err != nil {
		t.Fatal(err)
	}
	var lb struct {
		Services struct {
			LB struct {
				Networks map[string]struct {
					IPv4 string `yaml:"ipv4_address"`
				} `yaml:"networks"`
			} `yaml:"lb"`
		} `yaml:"services"`
	}
	composeData, _ := os.ReadFile(dir + "compose.yaml")
	if err := yaml.Unmarshal(composeData, &lb); err != nil {
		t.Fatal(err)
	}
	lbAddr := lb.Services.LB.Networks["default"].IPv4
	if !proxy.ProxyProtocol || lbAddr == "" || strings.Join(proxy.TrustedProxies, ",") != lbAddr {
		t.Errorf("mercury.yaml: trusted_proxies %v, proxy_protocol %v; want the lb's address %q and the PROXY protocol",
			proxy.TrustedProxies, proxy.ProxyProtocol, lbAddr)
	}
}
