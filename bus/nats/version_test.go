package nats

import (
	"bufio"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseVersion(t *testing.T) {
	for _, c := range []struct {
		in   string
		want version
		ok   bool
	}{
		{"2.9.10", version{2, 9, 10}, true},
		{"v2.11.0-RC.1", version{2, 11, 0}, true},
		{"2.10.0+build", version{2, 10, 0}, true},
		{"2.10", version{}, false},
		{"x.y.z", version{}, false},
		{"", version{}, false},
	} {
		got, ok := parseVersion(c.in)
		if got != c.want || ok != c.ok {
			t.Errorf("parseVersion(%q) = %v, %v; want %v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
	for _, c := range []struct {
		v, o version
		want bool
	}{
		{version{2, 9, 10}, v2_9, true}, {version{2, 9, 10}, v2_10, false}, {version{2, 10, 0}, v2_10, true},
		{version{2, 8, 4}, v2_9, false}, {version{3, 0, 0}, v2_10, true}, {version{2, 15, 2}, v2_10, true},
	} {
		if got := c.v.atLeast(c.o); got != c.want {
			t.Errorf("%v.atLeast(%v) = %v", c.v, c.o, got)
		}
	}
}

// TestRefusesServerBefore29: Connect to a server that says it is 2.8
// fails, naming the version needed and the one found. No NATS 2.8 is at
// hand, so the server is one that says hello as 2.8.4 does and answers
// pings.
func TestRefusesServerBefore29(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer ln.Close()
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { speakNATS28(c) })
		}
	})
	bp, err := Connect(Options{URLs: []string{"nats://" + ln.Addr().String()}, Name: clusterName(), Logger: testLogger(), Timeout: 2 * time.Second})
	if err == nil {
		bp.Close()
		t.Fatal("connected to a NATS 2.8 server")
	}
	if !errors.Is(err, ErrServerTooOld) || !strings.Contains(err.Error(), "2.9.0") || !strings.Contains(err.Error(), "runs 2.8.4") {
		t.Fatalf("error %q does not name the versions", err)
	}
}

// speakNATS28 greets as a NATS 2.8.4 server and answers PING until the
// client leaves.
func speakNATS28(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte(`INFO {"server_id":"OLD","server_name":"old","version":"2.8.4","proto":1,"go":"go1.17","host":"127.0.0.1","port":4222,"headers":true,"max_payload":1048576,"jetstream":true}` + "\r\n"))
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if strings.HasPrefix(line, "PING") {
			c.Write([]byte("PONG\r\n"))
		}
	}
}
