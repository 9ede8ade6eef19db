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

// Underneath the Client: subscribe in envelope mode on one connection,
// publish by POST, and read the message with its topic and sequence
// number.
func ExampleDial() {
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

	seq, err := client.PublishURL(ctx, client.URL(server, "pub", "/livesys/42", nil), []byte(`{"cmd":"reboot"}`), false, nil)
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
func ExampleConn_Ack() {
	server, stop := runBroker()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if _, err := client.PublishURL(ctx, client.URL(server, "push", "/jobs", nil), []byte(`{"task":"backup"}`), false, nil); err != nil {
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
func ExampleDial_resume() {
	server, stop := runBroker()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	publish := func(body string) {
		if _, err := client.PublishURL(ctx, client.URL(server, "pub", "/livesys/42", nil), []byte(body), false, nil); err != nil {
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
func ExampleDial_publishConfirmed() {
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
func ExampleConn_Nack() {
	server, stop := runBroker()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if _, err := client.PublishURL(ctx, client.URL(server, "push", "/jobs", nil), []byte(`{"task":"backup"}`), false, nil); err != nil {
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

// Subscribe to a topic, publish to a topic below it, and get the message
// with its topic, sequence number and data.
func Example() {
	server, stop := runBroker()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m := client.New(server, nil) // with &client.Config{Token: …} on a broker with auth

	// The subscription is open once OnState hears "open".
	open := make(chan struct{})
	onState := func(s client.State, err error) {
		if s == client.StateOpen {
			close(open)
		}
	}
	received := make(chan client.Message, 1)
	go m.Subscribe(ctx, "/livesys", &client.SubscribeOptions{OnState: onState}, func(msg client.Message) error {
		received <- msg
		return nil
	})
	<-open

	seq, err := m.Publish(ctx, "/livesys/42", map[string]string{"cmd": "reboot"})
	if err != nil {
		fmt.Println(err)
		return
	}
	msg := <-received
	fmt.Println(msg.Topic, msg.Seq == seq, string(msg.Data))
	// Output:
	// /livesys/42 true {"cmd":"reboot"}
}

// Subscribe reconnects by itself and resumes from the last message it
// gave fn; Since starts with a replay of what the broker keeps. Here fn
// ends it after two messages.
func ExampleClient_Subscribe() {
	server, stop := runBroker()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m := client.New(server, nil)
	for _, cmd := range []string{"reboot", "halt"} {
		if _, err := m.Publish(ctx, "/livesys/42", cmd); err != nil {
			fmt.Println(err)
			return
		}
	}
	enough := errors.New("enough")
	n := 0
	err := m.Subscribe(ctx, "/livesys", &client.SubscribeOptions{
		Since: "0", // replay what /livesys keeps, then live
		OnGap: func(g client.Gap) { fmt.Printf("messages %d to %d are no longer kept\n", g.From, g.To) },
	}, func(msg client.Message) error {
		fmt.Println(msg.Topic, msg.Seq, string(msg.Data))
		if n++; n == 2 {
			return enough // a real subscriber runs until its context ends
		}
		return nil
	})
	fmt.Println(err)
	// Output:
	// /livesys/42 1 reboot
	// /livesys/42 2 halt
	// enough
}

// Pull acks each job its function finishes and nacks each it fails (the
// job comes back, with the same ID and the next attempt), and reconnects
// by itself until its context ends.
func ExampleClient_Pull() {
	server, stop := runBroker()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m := client.New(server, nil)
	if _, err := m.Push(ctx, "/jobs", map[string]string{"task": "backup"}); err != nil {
		fmt.Println(err)
		return
	}
	err := m.Pull(ctx, "/jobs", &client.PullOptions{Prefetch: 4}, func(job client.Job) error {
		fmt.Printf("job %s %s, attempt %d\n", job.ID, job.Data, job.Attempt)
		if job.Attempt == 1 {
			return errors.New("database down") // nacked: it comes back
		}
		cancel() // ends Pull; a real worker runs until it shuts down
		return nil
	})
	fmt.Println(err)
	// Output:
	// job 1 {"task":"backup"}, attempt 1
	// job 1 {"task":"backup"}, attempt 2
	// context canceled
}

// Publish returns the message's sequence number once the broker accepted
// it, and the broker's refusal otherwise.
func ExampleClient_Publish() {
	server, stop := runBroker()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m := client.New(server, nil)
	seq, err := m.Publish(ctx, "/livesys/42", []byte(`{"cmd":"reboot"}`)) // JSON goes as it is
	fmt.Println(seq, err)
	_, err = m.Publish(ctx, "/livesys//42", "hello")
	var refusal *client.APIError
	if errors.As(err, &refusal) {
		fmt.Println(refusal.Status, refusal.Code)
	}
	// Output:
	// 1 <nil>
	// 400 topic
}

// Bus peers send to each other; without Echo a peer does not get what it
// sends.
func ExampleClient_Bus() {
	server, stop := runBroker()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m := client.New(server, nil)
	got := make(chan client.Message, 1)
	b := m.Bus(ctx, "/room", nil, func(msg client.Message) error {
		got <- msg
		return nil
	})
	defer b.Close()
	a := m.Bus(ctx, "/room", nil, func(msg client.Message) error {
		fmt.Println("a got its own message") // never: no Echo
		return nil
	})
	defer a.Close()
	// Send waits for a's connection; b's may not be open yet: send until b
	// gets one.
	for {
		if _, err := a.Send(ctx, "hello"); err != nil {
			fmt.Println(err)
			return
		}
		select {
		case msg := <-got:
			fmt.Println(msg.Topic, string(msg.Data))
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	// Output:
	// /room hello
}

// GetToken keeps a connection's JWT fresh: the client sends a new one
// in-band before the one in use expires, so no connection is cut for it.
func ExampleConfig_getToken() {
	fetch := func(ctx context.Context) (string, error) {
		return "a fresh JWT from your identity provider", nil
	}
	m := client.New("wss://broker.example.com", &client.Config{
		GetToken: fetch,
		OnError:  func(err error) { slog.Warn("mercury", "err", err) },
	})
	_ = m // m.Subscribe, m.Pull … as in the other examples
}
