//go:build !darwin

package keychain

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestUnlockGateAsksAgainOnlyAfterTheCooldownOrAnUnlock walks the gate
// through a user's day on a clock of the test's own (the cooldown is
// minutes): the real keyring's test (TestPrivateKeyringHelper) shows the
// prompts it saves; this shows when it lets one through again.
func TestUnlockGateAsksAgainOnlyAfterTheCooldownOrAnUnlock(t *testing.T) {
	t.Parallel()
	type step struct {
		at      time.Duration // on the test's clock
		do      string        // "ask": begin, then end with unlocked; "hold": begin, end later; "release": end the held attempt; "seen": seenUnlocked
		ok      bool          // ask, release: the attempt unlocked
		allowed bool          // ask, hold: begin lets the attempt through
		says    string        // ask, hold, when held back: part of the error
	}
	const cooldown = 5 * time.Minute
	tests := []struct {
		name  string
		steps []step
	}{
		{"a dismissed prompt holds the next ones back for the cooldown", []step{
			{at: 0, do: "ask", ok: false, allowed: true},
			{at: 2 * time.Second, do: "ask", allowed: false, says: "credhost asks again once 5m0s have passed"},
			{at: cooldown - time.Second, do: "ask", allowed: false, says: "4m59s ago"},
			{at: cooldown, do: "ask", ok: false, allowed: true},
			{at: cooldown + 2*time.Second, do: "ask", allowed: false},
		}},
		{"the keyring seen unlocked ends the cooldown", []step{
			{at: 0, do: "ask", ok: false, allowed: true},
			{at: time.Minute, do: "seen"},
			{at: time.Minute + time.Second, do: "ask", ok: false, allowed: true},
			{at: time.Minute + 2*time.Second, do: "ask", allowed: false},
		}},
		{"an unlocked prompt leaves no cooldown", []step{
			{at: 0, do: "ask", ok: true, allowed: true},
			{at: time.Second, do: "ask", ok: true, allowed: true},
		}},
		{"no second prompt while one is open", []step{
			{at: 0, do: "hold", allowed: true},
			{at: time.Second, do: "ask", allowed: false, says: "still waiting for an answer"},
			{at: time.Minute, do: "seen"},
			{at: cooldown - time.Second, do: "ask", allowed: false, says: "still waiting for an answer"},
			{at: cooldown - time.Second, do: "release", ok: false},
			{at: cooldown, do: "ask", allowed: false, says: "1s ago"},
			{at: 2*cooldown - time.Second, do: "ask", ok: true, allowed: true},
		}},
		// An attempt ends within the cooldown (promptTimeout); one still
		// pending after it was lost (its Secret Service went away with
		// the prompt open, a call never returned) and must not hold every
		// later prompt back for the life of the process.
		{"an attempt pending for a cooldown counts as failed", []step{
			{at: 0, do: "hold", allowed: true},
			{at: cooldown, do: "ask", ok: false, allowed: true},
			{at: cooldown + time.Second, do: "ask", allowed: false, says: "1s ago"},
			{at: time.Hour, do: "release", ok: false}, // the lost one ends at last: changes nothing
			{at: time.Hour, do: "ask", ok: false, allowed: true},
		}},
		{"a lost attempt that ends unlocked ends the cooldown", []step{
			{at: 0, do: "hold", allowed: true},
			{at: time.Hour, do: "ask", ok: false, allowed: true},
			{at: time.Hour + time.Second, do: "release", ok: true},
			{at: time.Hour + 2*time.Second, do: "ask", ok: true, allowed: true},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			var now time.Time
			g := newUnlockGate(cooldown)
			g.now = func() time.Time { return now }
			var held func(bool)
			for i, s := range tc.steps {
				now = start.Add(s.at)
				switch s.do {
				case "seen":
					g.seenUnlocked()
					continue
				case "release":
					held(s.ok)
					continue
				}
				end, err := g.begin()
				if got := err == nil; got != s.allowed {
					t.Fatalf("step %d (%s at %v): allowed %v (%v); want %v", i, s.do, s.at, got, err, s.allowed)
				}
				if err != nil {
					if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), s.says) {
						t.Errorf("step %d: %v; want unavailable, saying %q", i, err, s.says)
					}
					continue
				}
				if s.do == "hold" {
					held = end
				} else {
					end(s.ok)
				}
			}
		})
	}
}

// TestNoUnlockGateWhereTheStoreNeverPrompts: Credential Manager never
// prompts, so its reads are never held back.
func TestNoUnlockGateWhereTheStoreNeverPrompts(t *testing.T) {
	t.Parallel()
	g := newUnlockGate(0)
	for range 3 {
		end, err := g.begin()
		if err != nil {
			t.Fatalf("begin: %v", err)
		}
		end(false)
	}
	g.seenUnlocked()
}
