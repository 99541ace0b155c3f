//go:build !darwin

package keychain

import (
	"errors"
	"fmt"
	"time"

	"github.com/zalando/go-keyring"
)

// systemStore is the OS keyring: a Secret Service over D-Bus, or Windows
// Credential Manager, through go-keyring (macOS has its own driver, the
// security command; see security.go). Every store of one process shares
// the unlock gate of its session bus (processUnlockGate), so a user is
// asked to unlock once, however many keychain entries read the keyring.
func systemStore(lookupEnv func(string) (string, bool)) Store {
	return &goKeyring{lookupEnv: lookupEnv, unlock: processUnlockGate(lookupEnv)}
}

// goKeyring is the OS keyring through go-keyring, which speaks the Secret
// Service's D-Bus protocol and Credential Manager's API without cgo.
type goKeyring struct {
	lookupEnv func(string) (string, bool)
	// unlock holds back asking the user to unlock the keyring to once per
	// unlockCooldown (nil: the platform never prompts).
	unlock *unlockGate
}

// errTakeLongPath is quickGet's answer when the keyring's answers are not
// the plain case it handles: the caller reads through go-keyring.
var errTakeLongPath = errors.New("not the plain case: read through go-keyring")

// lockedError is quickGet's answer when the item is in a locked collection
// (or is locked itself): path is the Secret Service object to unlock.
type lockedError struct{ path string }

func (e *lockedError) Error() string { return "the keyring is locked: " + e.path }

// errNotUnlocked is the read's answer when the user was asked to unlock
// the keyring and it stayed locked.
var errNotUnlocked = fmt.Errorf("%w: the keyring is locked and did not unlock when credhost asked it to (the prompt was dismissed or could not be shown); credhost asks again once %v have passed, and reads it as soon as it is unlocked any other way", ErrUnavailable, unlockCooldown)

// Get reads the item the quick way where the platform has one (quickGet),
// else through go-keyring, mapping its answers to ErrNoItem and
// ErrUnavailable: any failure other than "no such item" means the keyring
// cannot be used right now. A locked keyring is asked to unlock (a prompt
// on a desktop) only when the unlock gate lets it; otherwise the read
// answers at once, unavailable. The unlock is always credhost's own
// (unlockPrompt): a read that goes through go-keyring unlocks a locked
// collection first, as a save does (unlockFirst), and calls go-keyring
// after, outside the gate, so go-keyring finds it unlocked; a go-keyring
// read that fails for any other reason never touches the gate.
func (s *goKeyring) Get(service, account string) (string, error) {
	secret, err := quickGet(s.lookupEnv, service, account)
	var locked *lockedError
	if errors.As(err, &locked) {
		secret, err = s.unlockThenGet(locked.path, service, account)
	}
	if err != errTakeLongPath {
		if err == nil || err == ErrNoItem {
			s.unlock.seenUnlocked()
		}
		return secret, err
	}
	if err := available(s.lookupEnv); err != nil {
		return "", err
	}
	if err := s.unlockFirst(); err != nil {
		return "", err
	}
	err = callGoKeyring("a read", func() (err error) {
		secret, err = keyring.Get(service, account)
		return err
	})
	switch {
	case errors.Is(err, keyring.ErrNotFound):
		s.unlock.seenUnlocked()
		return "", ErrNoItem
	case errors.Is(err, ErrUnavailable):
		return "", err
	case err != nil:
		return "", fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	s.unlock.seenUnlocked()
	return secret, nil
}

// unlockFirst unlocks the collection go-keyring is about to read or save
// to when it is locked (lockedCollection), through unlockPrompt, when the
// gate lets it; go-keyring, called after, finds it unlocked and does not
// prompt its own way. A collection that is not locked (or whose state
// cannot be told) is left to go-keyring, and the gate is not asked.
func (s *goKeyring) unlockFirst() error {
	path, err := lockedCollection(s.lookupEnv)
	if err != nil || path == "" {
		return err
	}
	done, err := s.askUnlock(path)
	if err != nil {
		return err
	}
	done(true)
	return nil
}

// askUnlock asks the Secret Service to unlock path (unlockPrompt) when the
// gate lets it: errNotUnlocked when it stayed locked, and the gate's
// attempt ended as failed on every error. When it unlocked, the attempt is
// still open: the caller ends it (done) with what it then finds.
func (s *goKeyring) askUnlock(path string) (done func(unlocked bool), err error) {
	end, err := s.unlock.begin()
	if err != nil {
		return nil, err
	}
	unlocked, err := unlockPrompt(s.lookupEnv, path)
	if err == nil && !unlocked {
		err = errNotUnlocked
	}
	if err != nil {
		end(false)
		return nil, err
	}
	return end, nil
}

// unlockThenGet asks the Secret Service to unlock path, when the gate lets
// it, and reads again.
func (s *goKeyring) unlockThenGet(path, service, account string) (string, error) {
	done, err := s.askUnlock(path)
	if err != nil {
		return "", err
	}
	secret, err := quickGet(s.lookupEnv, service, account)
	var locked *lockedError
	if errors.As(err, &locked) { // locked again at once, or only part of it unlocked
		done(false)
		return "", errNotUnlocked
	}
	done(true)
	return secret, err
}

// Set stores the secret; the size limit was checked before. A locked
// collection is unlocked first, as a read does (unlockFirst), so
// go-keyring's save finds it unlocked and does not prompt its own way.
func (s *goKeyring) Set(service, account, secret string) error {
	if err := available(s.lookupEnv); err != nil {
		return err
	}
	if err := s.unlockFirst(); err != nil {
		return err
	}
	err := callGoKeyring("a save", func() error { return keyring.Set(service, account, secret) })
	if errors.Is(err, keyring.ErrSetDataTooBig) {
		return fmt.Errorf("the keyring refused the secret as too big (%d bytes)", len(secret))
	}
	return err
}

// goKeyringTurn lets one go-keyring call of the process run at a time
// (callGoKeyring). go-keyring still prompts its own way when it finds its
// collection or item locked after all (locked again between unlockFirst
// and its call, an item locked on its own, a Secret Service that does not
// tell whether a collection is locked), and then waits for the prompt
// with no bound: holding the turn, that wait is the only one, instead of
// one more per read. A healthy call takes milliseconds.
var goKeyringTurn = make(chan struct{}, 1)

// goKeyringTurnWait bounds how long a go-keyring call waits for its turn:
// as long as one call to a Secret Service may take (secretServiceTimeout),
// so a read never waits longer behind another than it would for its own.
const goKeyringTurnWait = 5 * time.Second

// callGoKeyring runs f, a go-keyring call, in its turn (goKeyringTurn):
// when an earlier call has not returned within goKeyringTurnWait (it
// waits for an unlock prompt of go-keyring's), the call is not made and
// the answer is an error wrapping ErrUnavailable. It turns a panic into an
// error wrapping ErrUnavailable: go-keyring dereferences a nil signal when
// the session bus drops while it waits for an unlock prompt, and the
// keychain provider runs inside `credhost serve`, which must not end with
// it. The panic's value stays out of the message: it may hold anything
// go-keyring had in hand.
func callGoKeyring(what string, f func() error) (err error) {
	timer := time.NewTimer(goKeyringTurnWait)
	defer timer.Stop()
	select {
	case goKeyringTurn <- struct{}{}:
	case <-timer.C:
		return fmt.Errorf("%w: an earlier keyring call through go-keyring has not returned in %v (it may be waiting for an unlock prompt of its own); credhost did not make %s", ErrUnavailable, goKeyringTurnWait, what)
	}
	defer func() { <-goKeyringTurn }()
	defer func() {
		if recover() != nil {
			err = fmt.Errorf("%w: go-keyring failed during %s (the session bus connection was lost while it waited for the keyring)", ErrUnavailable, what)
		}
	}()
	return f()
}
