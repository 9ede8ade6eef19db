package client_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/web"
	"github.com/mercury-broker/mercury/web/client"
)

// runBroker runs a broker for the examples; in real use the server is
// "ws://127.0.0.1:3000", or wherever mercury serve listens.
func runBroker() (server string, stop func()) {
	// /livesys keeps its last 100 messages, for replay (docs/buses.md).
	policies, err := broker.NewPolicies([]broker.Policy{{Bus: "/livesys", History: broker.History{Messages: 100}}})
	if err != nil {
		panic(err)
	}
	b := broker.New(broker.Options{Policies: policies})
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

// A subscriber that lost its connection resumes from the last message it
// saw, with that message's epoch: what it missed comes first, then live
// messages, with no gap and no duplicate.
func Example_resume() {
	server, stop := runBroker()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	publish := func(body string) {
		if _, err := client.Publish(ctx, client.URL(server, "pub", "/livesys/42", nil), []byte(body), false, nil); err != nil {
			fmt.Println(err)
		}
	}
	next := func(c *client.Conn) client.Incoming {
		f, err := c.Read(ctx)
		if err != nil {
			panic(err)
		}
		in, err := client.ParseIncoming(f.Data)
		if err != nil {
			panic(err)
		}
		return in
	}

	sub, err := client.Dial(ctx, client.URL(server, "sub", "/livesys", nil), &client.Options{Envelope: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	publish(`"first"`)
	last := next(sub).Message // keep its Seq and Epoch
	sub.CloseNow()            // the connection is lost

	publish(`"second"`) // while the subscriber is away

	q := url.Values{"since": {fmt.Sprint(last.Seq)}, "epoch": {last.Epoch}}
	sub, err = client.Dial(ctx, client.URL(server, "sub", "/livesys", q), &client.Options{Envelope: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sub.Close()
	publish(`"third"`)
	for range 2 {
		in := next(sub)
		if in.Gap != nil { // history no longer kept, or Reset: the broker started afresh
			fmt.Println("gap", in.Gap.From, in.Gap.To, in.Gap.Reset)
			continue
		}
		fmt.Println(in.Message.Seq, string(in.Message.Data))
	}
	// Output:
	// 2 "second"
	// 3 "third"
}

// A publisher on a socket in envelope mode gets one answer per frame, in
// order: the sequence number once the broker accepted the message, or the
// broker's error.
func Example_publishConfirmed() {
	server, stop := runBroker()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	pub, err := client.Dial(ctx, client.URL(server, "pub", "/livesys/42", nil), &client.Options{Envelope: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pub.Close()
	for _, m := range []string{`{"cmd":"reboot"}`, `{"cmd":"halt"}`} {
		if err := pub.WriteText(ctx, m); err != nil {
			fmt.Println(err)
			return
		}
	}
	for range 2 {
		f, err := pub.Read(ctx)
		if err != nil {
			fmt.Println(err)
			return
		}
		in, err := client.ParseIncoming(f.Data)
		switch {
		case err != nil:
			fmt.Println(err)
		case in.Error != nil:
			fmt.Println("refused:", in.Error)
		case in.OK != nil:
			fmt.Println("confirmed as", *in.OK)
		}
	}
	// Output:
	// confirmed as 1
	// confirmed as 2
}

// A worker that cannot do a job now nacks it with a reason: the job comes
// back, with the same id and the next attempt, and is acked when done.
func Example_nack() {
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
	for {
		f, err := w.Read(ctx)
		if err != nil {
			fmt.Println(err)
			return
		}
		in, err := client.ParseIncoming(f.Data)
		if err != nil || in.Message == nil {
			fmt.Println(string(f.Data), err)
			return
		}
		job := in.Message
		fmt.Printf("job %s, attempt %d\n", job.ID, job.Attempt)
		if job.Attempt == 1 {
			w.Nack(ctx, job.ID, 0, "database down") // again at once; a delay waits
			continue
		}
		w.Ack(ctx, job.ID)
		return
	}
	// Output:
	// job 1, attempt 1
	// job 1, attempt 2
}

// Subscribe reconnects by itself and resumes from the last message it
// gave; here the handler stops it after two messages.
func ExampleSubscribe() {
	server, stop := runBroker()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, cmd := range []string{`"reboot"`, `"halt"`} {
		if _, err := client.Publish(ctx, client.URL(server, "pub", "/livesys/42", nil), []byte(cmd), false, nil); err != nil {
			fmt.Println(err)
			return
		}
	}
	enough := errors.New("enough")
	since := uint64(0) // replay what /livesys keeps, then live
	n := 0
	err := client.Subscribe(ctx, server, "/livesys", &client.SubscribeOptions{Since: &since}, func(m client.Envelope) error {
		fmt.Println(m.Topic, m.Seq, string(m.Data))
		if n++; n == 2 {
			return enough
		}
		return nil
	})
	fmt.Println(err)
	// Output:
	// /livesys/42 1 "reboot"
	// /livesys/42 2 "halt"
	// enough
}

// Pull acks each job its handler finishes and nacks each it fails, and
// reconnects by itself until its context ends.
func ExamplePull() {
	server, stop := runBroker()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := client.Publish(ctx, client.URL(server, "push", "/jobs", nil), []byte(`{"task":"backup"}`), false, nil); err != nil {
		fmt.Println(err)
		return
	}
	err := client.Pull(ctx, server, "/jobs", nil, func(job client.Envelope) error {
		fmt.Printf("job %s, attempt %d\n", job.Data, job.Attempt)
		if job.Attempt == 1 {
			return errors.New("database down") // nacked: it comes back
		}
		cancel() // ends Pull; a real worker runs until it shuts down
		return nil
	})
	fmt.Println(err)
	// Output:
	// job {"task":"backup"}, attempt 1
	// job {"task":"backup"}, attempt 2
	// context canceled
}
