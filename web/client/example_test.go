package client_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/web"
	"github.com/mercury-broker/mercury/web/client"
)

// runBroker runs a broker for the examples; in real use the server is
// "ws://127.0.0.1:3000", or wherever mercury serve listens.
func runBroker() (server string, stop func()) {
	b := broker.New(broker.Options{})
	s, err := web.New(b, web.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	hs := httptest.NewServer(s)
	return "ws" + strings.TrimPrefix(hs.URL, "http"), func() {
		s.Shutdown(context.Background())
		hs.Close()
		b.Close()
	}
}

// Subscribe in envelope mode, publish by POST, and read the message with
// its topic and sequence number.
func Example() {
	server, stop := runBroker()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	sub, err := client.Dial(ctx, client.URL(server, "sub", "/livesys", nil), &client.Options{Envelope: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sub.Close()

	seq, err := client.Publish(ctx, client.URL(server, "pub", "/livesys/42", nil), []byte(`{"cmd":"reboot"}`), false, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("published as", seq)

	f, err := sub.Read(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	in, err := client.ParseIncoming(f.Data)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(in.Message.Topic, in.Message.Seq, string(in.Message.Data))
	// Output:
	// published as 1
	// /livesys/42 1 {"cmd":"reboot"}
}

// A worker pulls in envelope mode and acknowledges each job; one it does
// not acknowledge is delivered again.
func Example_pull() {
	server, stop := runBroker()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if _, err := client.Publish(ctx, client.URL(server, "push", "/jobs", nil), []byte(`{"task":"backup"}`), false, nil); err != nil {
		fmt.Println(err)
		return
	}
	w, err := client.Dial(ctx, client.URL(server, "pull", "/jobs", nil), &client.Options{Envelope: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer w.Close()
	f, err := w.Read(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	in, err := client.ParseIncoming(f.Data)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("job %s, attempt %d\n", in.Message.Data, in.Message.Attempt)
	if err := w.Ack(ctx, in.Message.ID); err != nil {
		fmt.Println(err)
	}
	// Output:
	// job {"task":"backup"}, attempt 1
}
