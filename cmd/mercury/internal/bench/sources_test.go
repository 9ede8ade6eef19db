package bench

import (
	"context"
	"net"
	"testing"
	"time"
)

func TestSourceAddrsFlag(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"1", "127.0.0.1"},
		{"4", "127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4"},
		{"127.0.0.5, ::1", "127.0.0.5,::1"},
	} {
		var s sourceAddrs
		if err := s.Set(c.in); err != nil {
			t.Fatalf("Set(%q): %v", c.in, err)
		}
		if got := s.String(); got != c.want {
			t.Errorf("Set(%q) = %s, want %s", c.in, got, c.want)
		}
	}
	if got := loopbackSources(300)[299].String(); got != "127.0.1.44" {
		t.Errorf("the 300th loopback source = %s, want 127.0.1.44", got)
	}
	for _, bad := range []string{"0", "-1", "localhost", "127.0.0.1,x"} {
		var s sourceAddrs
		if err := s.Set(bad); err == nil {
			t.Errorf("Set(%q) = %v, want an error", bad, s)
		}
	}
}

// Connections are dialed from each source address in turn (Linux routes
// all of 127.0.0.0/8 to loopback).
func TestDialsComeFromEachSourceAddressInTurn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var s sourceAddrs
	if err := s.Set("3"); err != nil {
		t.Fatal(err)
	}
	dial := s.dialContext(5 * time.Second)
	var got []string
	for range 4 {
		c, err := dial(context.Background(), "tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		sc, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, sc.RemoteAddr().(*net.TCPAddr).IP.String())
		sc.Close()
		c.Close()
	}
	want := []string{"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.1"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("source addresses %v, want %v", got, want)
		}
	}
}
