package broker

import "testing"

func TestPoliciesLongestPrefixWins(t *testing.T) {
	ps, err := NewPolicies([]Policy{
		{Bus: "/livesys", Durable: true},
		{Bus: "/livesys/admin", History: History{Messages: 10}},
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := map[Topic]Topic{
		"/livesys":            "/livesys",
		"/livesys/42":         "/livesys",
		"/livesys/admin":      "/livesys/admin",
		"/livesys/admin/x/y":  "/livesys/admin",
		"/livesys/administer": "/livesys",
		"/livesysX":           "",
		"/other":              "",
	}
	for topic, bus := range cases {
		if got := ps.Lookup(topic).Bus; got != bus {
			t.Errorf("Lookup(%q).Bus = %q, want %q", topic, got, bus)
		}
	}
	var none *Policies
	if none.Lookup("/x").Bus != "" {
		t.Error("a nil Policies must give the zero policy")
	}
}

func TestPoliciesRefuseDuplicatesAndBadBuses(t *testing.T) {
	if _, err := NewPolicies([]Policy{{Bus: "/a"}, {Bus: "/a"}}); err == nil {
		t.Error("duplicate bus accepted")
	}
	if _, err := NewPolicies([]Policy{{Bus: "/a//b"}}); err == nil {
		t.Error("bad bus accepted")
	}
}

func BenchmarkPolicyLookup(b *testing.B) {
	ps, _ := NewPolicies([]Policy{{Bus: "/livesys"}, {Bus: "/livesys/admin"}, {Bus: "/jobs"}})
	b.ReportAllocs()
	for b.Loop() {
		if ps.Lookup("/livesys/42/cmd/reboot").Bus != "/livesys" {
			b.Fatal("wrong bus")
		}
	}
}
