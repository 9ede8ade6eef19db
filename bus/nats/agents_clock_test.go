package nats

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/mercury-broker/mercury/broker"
)

// goneFeed records the brokers reported gone.
type goneFeed struct{ gone []string }

func (f *goneFeed) PeerEvent(broker.PresenceEvent)                         {}
func (f *goneFeed) PeerSnapshot(string, []broker.Presence)                 {}
func (f *goneFeed) PeerGone(node string)                                   { f.gone = append(f.gone, node) }
func (f *goneFeed) PeerCount(string) int                                   { return 0 }
func (f *goneFeed) LocalPresence(func([]broker.Presence))                  {}
func (f *goneFeed) PeerRequest(*broker.Message, string, time.Duration) int { return 0 }
func (f *goneFeed) PeerAnswer(string, broker.Answer)                       {}

// A broker is gone once it missed three heartbeats, not before, counted
// in the monotonic clock.
func TestSilentBrokerGoneAfterThreeHeartbeats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		feed := &goneFeed{}
		p := &Backplane{log: testLogger(), ag: &agents{peers: map[string]time.Time{}, feed: feed}}
		const beat = time.Second
		p.ag.peers["quiet"] = time.Now()
		p.ag.peers["alive"] = time.Now()
		start := time.Now()
		for range 10 {
			time.Sleep(beat)
			p.ag.peers["alive"] = time.Now() // heard again
			p.forgetSilent(time.Now(), heartbeatsMissed*beat)
			if len(feed.gone) > 0 {
				break
			}
		}
		if len(feed.gone) != 1 || feed.gone[0] != "quiet" || time.Since(start) != 4*beat {
			t.Fatalf("gone %v after %v", feed.gone, time.Since(start))
		}
		if _, ok := p.ag.peers["quiet"]; ok {
			t.Fatal("a gone broker is still known: its next heartbeat would not resync")
		}
	})
}
