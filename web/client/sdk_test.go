package client_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/web/client"
)

// A refusal reconnecting cannot mend ends Subscribe with the broker's
// error, over a WebSocket and over Server-Sent Events alike.
func TestSubscribeEndsOnARefusal(t *testing.T) {
	tb := startBroker(t, false)
	m := client.New(tb.srv.URL, &client.Config{Backoff: time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tr := range []client.Transport{client.TransportWebSocket, client.TransportSSE, client.TransportAuto} {
		var states []client.State
		err := m.Subscribe(ctx, "/a//b", &client.SubscribeOptions{Transport: tr, OnState: func(s client.State, _ error) { states = append(states, s) }},
			func(client.Message) error { return nil })
		var he *client.HandshakeError
		var api *client.APIError
		switch {
		case errors.As(err, &he) && tr == client.TransportWebSocket && he.Status == 400:
		case errors.As(err, &api) && tr != client.TransportWebSocket && api.Status == 400 && api.Code == "topic":
		default:
			t.Errorf("%q: %v", tr, err)
		}
		if len(states) == 0 || states[len(states)-1] != client.StateClosed {
			t.Errorf("%q: states %v", tr, states)
		}
	}
}

// A subscription forced onto Server-Sent Events gets what a WebSocket
// would: messages in order, and text and binary payloads as published.
func TestSubscribeServerSentEvents(t *testing.T) {
	tb := startBroker(t, false)
	m := client.New(tb.srv.URL, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan client.Message, 10)
	done := make(chan error, 1)
	go func() {
		done <- m.Subscribe(ctx, "/s", &client.SubscribeOptions{Transport: client.TransportSSE}, func(msg client.Message) error {
			got <- msg
			return nil
		})
	}()
	// The stream's headers come with its first event: publish until one
	// arrives.
	var first client.Message
	for first.Seq == 0 {
		if _, err := m.Publish(ctx, "/s/x", "warm-up"); err != nil {
			t.Fatal(err)
		}
		select {
		case first = <-got:
		case <-time.After(50 * time.Millisecond):
		}
	}
	for _, d := range []any{"text", client.Binary{0, 1, 2}, map[string]int{"n": 1}} {
		if _, err := m.Publish(ctx, "/s/x", d); err != nil {
			t.Fatal(err)
		}
	}
	var seen []string
	for len(seen) < 3 {
		msg := <-got
		if string(msg.Data) == "warm-up" {
			continue
		}
		seen = append(seen, string(msg.Data)+"|"+map[bool]string{true: "binary", false: "text"}[msg.Binary])
	}
	if strings.Join(seen, " ") != "text|text \x00\x01\x02|binary {\"n\":1}|text" {
		t.Fatalf("got %q", seen)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}

// A bus peer's Send returns the message's sequence number; with Echo the
// peer gets its own message; after Close, Send fails with ErrBusClosed.
func TestBusSendEchoAndClose(t *testing.T) {
	tb := startBroker(t, false)
	m := client.New(tb.srv.URL, &client.Config{Backoff: time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var mu sync.Mutex
	var got []string
	b := m.Bus(ctx, "/room", &client.BusOptions{Echo: true}, func(msg client.Message) error {
		mu.Lock()
		got = append(got, string(msg.Data))
		mu.Unlock()
		return nil
	})
	seq, err := b.Send(ctx, "hello")
	if err != nil || seq == 0 {
		t.Fatalf("Send: %d %v", seq, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no echo")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Send(ctx, "late"); !errors.Is(err, client.ErrBusClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
}

// A 401 is answered with a fresh token from GetToken, and the request is
// made again with it.
func TestPublishRefreshesItsTokenAfterA401(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer fresh" {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":{"code":"token_expired","message":"token expired"}}`))
			return
		}
		w.Write([]byte(`{"seq":7}`))
	}))
	defer srv.Close()
	m := client.New(srv.URL, &client.Config{Token: "stale", GetToken: func(context.Context) (string, error) { return "fresh", nil }})
	seq, err := m.Publish(context.Background(), "/t", "x")
	if seq != 7 || err != nil || strings.Join(seen, ",") != "Bearer stale,Bearer fresh" {
		t.Fatalf("seq %d, err %v, tokens %v", seq, err, seen)
	}
	m = client.New(srv.URL, &client.Config{Token: "stale"})
	_, err = m.Publish(context.Background(), "/t", "x")
	var api *client.APIError
	if !errors.As(err, &api) || api.Status != 401 || api.Code != "token_expired" || api.Topic != "/t" {
		t.Fatalf("without GetToken: %v", err)
	}
}

// A GetToken that hands back a token about to expire is not called in a
// loop.
func TestGetTokenOfShortTokensIsNotCalledInALoop(t *testing.T) {
	tb := startBroker(t, false)
	var mu sync.Mutex
	calls := 0
	// exp one second ago: each is about to expire (the broker here does
	// not check tokens).
	m := client.New(tb.srv.URL, &client.Config{GetToken: func(context.Context) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		claims := fmt.Sprintf(`{"exp":%d,"n":%d}`, time.Now().Unix()-1, calls)
		return "e30." + base64.RawURLEncoding.EncodeToString([]byte(claims)) + ".sig", nil
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	m.Subscribe(ctx, "/t", nil, func(client.Message) error { return nil })
	mu.Lock()
	defer mu.Unlock()
	if calls > 5 {
		t.Fatalf("GetToken called %d times in 2.5 s", calls)
	}
}
