//go:build !darwin

package keychain

import (
	"fmt"
	"sync"
	"time"
)

// unlockGate lets a Provider ask a locked keyring to unlock at most once
// per cooldown. Asking is what makes a Secret Service show its unlock
// prompt (go-keyring's read calls Unlock and then Prompt), and `credhost
// serve` reads the chain again every 2 s: without the gate, a user who
// dismisses the prompt gets another one 2 s later, forever, and each
// prompt also leaves a signal channel registered on the shared D-Bus
// connection (go-keyring never removes it).
//
// The rules, for one Provider (one long-lived process):
//   - no new unlock attempt while one is still waiting for its prompt (a
//     second would queue a second prompt behind the first);
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
	failed  time.Time // when the last attempt that did not unlock ended; zero after the keyring was seen unlocked
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
	if g.pending {
		return nil, fmt.Errorf("%w: the keyring is locked and credhost's request to unlock it is still waiting for an answer (the unlock prompt); unlock it there or any other way", ErrUnavailable)
	}
	if !g.failed.IsZero() {
		if since := g.now().Sub(g.failed); since < g.cooldown {
			return nil, fmt.Errorf("%w: the keyring is locked and did not unlock when credhost last asked it to, %v ago (the prompt was dismissed or could not be shown); credhost asks again once %v have passed, and reads it as soon as it is unlocked any other way", ErrUnavailable, since.Round(time.Second), g.cooldown)
		}
	}
	g.pending = true
	return g.end, nil
}

// end records an attempt's outcome.
func (g *unlockGate) end(unlocked bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
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
