//go:build !darwin

package keychain

import (
	"fmt"
	"sync"
	"time"
)

// unlockGate lets a process ask a locked keyring to unlock at most once
// per cooldown. Asking is what makes a Secret Service show its unlock
// prompt, and `credhost serve` reads the chain again every 2 s: without
// the gate, a user who dismisses the prompt gets another one 2 s later,
// forever. Every keychain entry of the process shares one gate per
// session bus (processUnlockGate): the keyring is the session's, and a
// user expects one prompt, not one per entry.
//
// The rules, for one process:
//   - no new unlock attempt while one is still waiting for its prompt (a
//     second would queue a second prompt behind the first), unless it
//     began a cooldown ago or more: an attempt ends well within that
//     (promptTimeout), so one still pending was lost on the way and
//     counts as failed when it began;
//   - after an attempt that did not unlock, none for the cooldown, counted
//     from when it ended (the moment the user dismissed the prompt);
//   - seeing the keyring unlocked (a read that needed no unlock, however
//     the user unlocked it) ends the cooldown, so the next time it is
//     locked the user is asked again at once;
//   - a read the gate holds back answers at once, as unavailable: it never
//     waits and never returns a secret.
//
// A nil *unlockGate lets every attempt through (a store that never
// prompts). An unlockGate is safe for concurrent use.
type unlockGate struct {
	cooldown time.Duration
	now      func() time.Time

	mu      sync.Mutex
	pending bool      // an attempt has not returned yet
	started time.Time // when the pending attempt began
	attempt uint64    // the latest attempt's number: an attempt given up on ends changing nothing
	failed  time.Time // when the last attempt that did not unlock ended; zero after the keyring was seen unlocked
}

// unlockGates holds the process's gates, one per session bus address
// (processUnlockGate).
var unlockGates = struct {
	sync.Mutex
	byBus map[string]*unlockGate
}{byBus: map[string]*unlockGate{}}

// processUnlockGate returns the process's unlock gate for the session bus
// lookupEnv names (nil where the platform never prompts).
func processUnlockGate(lookupEnv func(string) (string, bool)) *unlockGate {
	addr, _ := lookupEnv("DBUS_SESSION_BUS_ADDRESS")
	unlockGates.Lock()
	defer unlockGates.Unlock()
	g, ok := unlockGates.byBus[addr]
	if !ok {
		g = newUnlockGate(unlockCooldown)
		unlockGates.byBus[addr] = g
	}
	return g
}

// newUnlockGate returns a gate with the given cooldown; none (nil, every
// attempt let through) when cooldown is 0.
func newUnlockGate(cooldown time.Duration) *unlockGate {
	if cooldown <= 0 {
		return nil
	}
	return &unlockGate{cooldown: cooldown, now: time.Now}
}

// begin asks to make an unlock attempt. It returns the function to call
// with the attempt's outcome (unlocked: the keyring answered, with the
// secret or with no such item), or an error wrapping ErrUnavailable, at
// once, when the attempt must not be made now.
func (g *unlockGate) begin() (end func(unlocked bool), err error) {
	if g == nil {
		return func(bool) {}, nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	if g.pending {
		if since := now.Sub(g.started); since < g.cooldown {
			return nil, fmt.Errorf("%w: the keyring is locked and credhost's request to unlock it is still waiting for an answer (the unlock prompt); unlock it there or any other way", ErrUnavailable)
		}
		// Lost: it failed when it began, a cooldown ago.
	} else if !g.failed.IsZero() {
		if since := now.Sub(g.failed); since < g.cooldown {
			return nil, fmt.Errorf("%w: the keyring is locked and did not unlock when credhost last asked it to, %v ago (the prompt was dismissed or could not be shown); credhost asks again once %v have passed, and reads it as soon as it is unlocked any other way", ErrUnavailable, since.Round(time.Second), g.cooldown)
		}
	}
	g.pending, g.started = true, now
	g.attempt++
	n := g.attempt
	return func(unlocked bool) { g.end(n, unlocked) }, nil
}

// end records the outcome of attempt n. An attempt given up on (a later
// one began) changes nothing, unless it unlocked the keyring.
func (g *unlockGate) end(n uint64, unlocked bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if n != g.attempt {
		if unlocked {
			g.failed = time.Time{}
		}
		return
	}
	g.pending = false
	if unlocked {
		g.failed = time.Time{}
	} else {
		g.failed = g.now()
	}
}

// seenUnlocked records that a read found the keyring unlocked without
// asking: the cooldown ends.
func (g *unlockGate) seenUnlocked() {
	if g == nil {
		return
	}
	g.mu.Lock()
	g.failed = time.Time{}
	g.mu.Unlock()
}
