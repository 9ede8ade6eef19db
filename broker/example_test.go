package broker_test

import (
	"fmt"

	"github.com/mercury-broker/mercury/broker"
)

// printer is a Receiver that prints what it gets. Deliver must not block;
// printing is quick enough for an example.
type printer string

func (p printer) Deliver(m *broker.Message) {
	fmt.Printf("%s got %s on %s (seq %d)\n", p, m.Payload, m.Topic, m.Seq)
}

// A subscriber to a topic receives what is published to it and to every
// topic below it, whole segments only.
func Example() {
	b := broker.New(broker.Options{})
	defer b.Close()

	unsubscribe := b.Subscribe("/livesys", printer("operator"))
	defer unsubscribe()
	b.Subscribe("/livesys/42", printer("agent 42"))

	for _, topic := range []broker.Topic{"/livesys/42", "/livesys/7", "/livesysX"} {
		if err := b.Publish(&broker.Message{Topic: topic, Payload: []byte(`{"cmd":"reboot"}`)}); err != nil {
			fmt.Println(err)
		}
	}
	// Unordered output:
	// operator got {"cmd":"reboot"} on /livesys/42 (seq 1)
	// agent 42 got {"cmd":"reboot"} on /livesys/42 (seq 1)
	// operator got {"cmd":"reboot"} on /livesys/7 (seq 2)
}

// worker is a Puller that hands each job to the code that works on it.
// Offer must not block.
type worker chan *broker.Delivery

func (w worker) Offer(d *broker.Delivery) { w <- d }

func (w worker) Evict(reason string) { fmt.Println("evicted:", reason) }

// Each pushed message goes to exactly one puller; with Ack, it is
// delivered again unless the puller acknowledges it in time.
func ExampleBroker_Pull() {
	b := broker.New(broker.Options{})
	defer b.Close()

	if err := b.Push(&broker.Message{Topic: "/jobs", Payload: []byte("backup")}, broker.PushOptions{}); err != nil {
		fmt.Println(err)
	}
	w := make(worker, 16) // room for the prefetch
	leave, err := b.Pull("/jobs", w, broker.PullOptions{Prefetch: 16, Ack: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer leave()

	d := <-w
	fmt.Printf("job %s, attempt %d\n", d.Message.Payload, d.Attempt)
	if err := b.Ack("/jobs", w, d.ID()); err != nil {
		fmt.Println(err)
	}
	// Output:
	// job backup, attempt 1
}
