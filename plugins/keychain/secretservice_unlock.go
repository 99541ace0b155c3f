//go:build !darwin && !windows

package keychain

import (
	"context"
	"fmt"
	"time"

	dbus "github.com/godbus/dbus/v5"
)

// The Secret Service's prompt interface, and the bus's own names.
const (
	secretPromptIface = "org.freedesktop.Secret.Prompt"
	busName           = "org.freedesktop.DBus"
	busPath           = dbus.ObjectPath("/org/freedesktop/DBus")
)

// promptTimeout bounds the wait for the user's answer to an unlock
// prompt. A prompt nobody answered in four minutes is dismissed (the
// user is away, or the dialog is nowhere to be seen) and counts as
// dismissed; with the calls before it (each bounded by
// secretServiceTimeout), the whole attempt ends within unlockCooldown,
// so the gate never waits on an attempt that is still running.
const promptTimeout = 4 * time.Minute

// unlockPrompt asks the Secret Service to unlock the object at path (a
// collection, or an item), shows the user its prompt when it needs one,
// and waits for the answer. It reports whether the service said it
// unlocked; an error wraps ErrUnavailable.
//
// It is go-keyring's unlock done on quickBus, credhost's own connection,
// because go-keyring's leaves a signal channel registered on godbus's
// shared connection at every prompt (the connection then parks a
// goroutine per channel per later signal: goroutines grow with the square
// of the prompts), waits for the prompt with no bound (a prompt lost with
// its Secret Service would hold the unlock gate for ever), and panics
// when the connection drops while it waits. Here:
//   - the Secret Service is the connection that owns its name when the
//     unlock begins (its unique name, asked of the bus): Unlock, Prompt
//     and Dismiss go to it, and only its Completed ends the wait. Any
//     program of the session can send a signal straight to credhost's
//     connection whatever the match rules say; one that is not the
//     Secret Service's, or is for another prompt, is ignored, so it
//     cannot end the wait and leave the real dialog on screen;
//   - the GetNameOwner, Unlock and Prompt calls are bounded by
//     secretServiceTimeout;
//   - the wait ends at the prompt's Completed signal, when the Secret
//     Service's name changes owner (said by the bus itself: it exited or
//     restarted, its prompt is gone), when the connection closes, or at
//     promptTimeout; whenever it ends without Completed while the
//     connection is up, the prompt is dismissed, so no dialog stays on
//     screen that nobody waits for;
//   - the signal channel and both match rules are removed on every path,
//     a rule whose AddMatch failed or timed out included (the bus may
//     have added it all the same).
func unlockPrompt(lookupEnv func(string) (string, bool), path string) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), secretServiceTimeout)
	defer cancel()
	conn, err := quickBus.get(ctx, lookupEnv)
	if err != nil {
		return false, err
	}
	var owner string
	err = conn.BusObject().CallWithContext(ctx, busName+".GetNameOwner", 0, secretServiceName).Store(&owner)
	switch {
	case isTimeout(err):
		return false, errNoAnswer
	case notRunning(err):
		return false, fmt.Errorf("%w: no Secret Service is running on the session bus", ErrUnavailable)
	case err != nil:
		return false, fmt.Errorf("%w: cannot ask the session bus for the Secret Service: %v", ErrUnavailable, err)
	}
	const flags = dbus.FlagNoAutoStart
	var unlocked []dbus.ObjectPath
	var prompt dbus.ObjectPath
	err = conn.Object(owner, secretServicePath).CallWithContext(ctx, secretServiceIface+".Unlock", flags, []dbus.ObjectPath{dbus.ObjectPath(path)}).Store(&unlocked, &prompt)
	switch {
	case isTimeout(err):
		return false, errNoAnswer
	case err != nil:
		return false, fmt.Errorf("%w: the Secret Service did not unlock the keyring: %v", ErrUnavailable, err)
	case prompt == "/" || prompt == "":
		return len(unlocked) > 0, nil // no prompt needed
	}
	return answerPrompt(conn, owner, prompt)
}

// answerPrompt shows the prompt at path of the Secret Service whose
// unique bus name is owner, and waits for its outcome (see unlockPrompt).
func answerPrompt(conn *dbus.Conn, owner string, prompt dbus.ObjectPath) (unlocked bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), secretServiceTimeout)
	defer cancel()
	obj := conn.Object(owner, prompt)
	completed := false
	defer func() {
		if !completed && conn.Connected() {
			// Take the dialog away, so it does not stay on screen behind
			// the next one; nothing waits for the answer.
			obj.Go(secretPromptIface+".Dismiss", dbus.FlagNoAutoStart|dbus.FlagNoReplyExpected, nil)
		}
	}()
	rules := [][]dbus.MatchOption{
		{ // the prompt's outcome, from the Secret Service only
			dbus.WithMatchSender(owner),
			dbus.WithMatchObjectPath(prompt),
			dbus.WithMatchInterface(secretPromptIface),
			dbus.WithMatchMember("Completed"),
		},
		{ // the Secret Service exits or is replaced: its prompt is gone
			dbus.WithMatchSender(busName),
			dbus.WithMatchObjectPath(busPath),
			dbus.WithMatchInterface(busName),
			dbus.WithMatchMember("NameOwnerChanged"),
			dbus.WithMatchArg(0, secretServiceName),
		},
	}
	signals := make(chan *dbus.Signal, 16)
	conn.Signal(signals)
	defer conn.RemoveSignal(signals)
	for _, rule := range rules {
		// Removed on every path, even when AddMatch failed: one that
		// timed out may have been added all the same.
		defer func() {
			// Bounded on its own: the wait below may have used up ctx.
			ctx, cancel := context.WithTimeout(context.Background(), secretServiceTimeout)
			defer cancel()
			_ = conn.RemoveMatchSignalContext(ctx, rule...)
		}()
		if err := conn.AddMatchSignalContext(ctx, rule...); err != nil {
			return false, fmt.Errorf("%w: cannot watch the unlock prompt on the session bus: %v", ErrUnavailable, err)
		}
	}

	if err := obj.CallWithContext(ctx, secretPromptIface+".Prompt", dbus.FlagNoAutoStart, "").Err; isTimeout(err) {
		return false, errNoAnswer
	} else if err != nil {
		return false, fmt.Errorf("%w: the Secret Service did not show its unlock prompt: %v", ErrUnavailable, err)
	}

	timer := time.NewTimer(promptTimeout)
	defer timer.Stop()
	for {
		select {
		case sig, ok := <-signals:
			if !ok {
				return false, errPromptBusLost
			}
			switch {
			case sig.Sender == owner && sig.Path == prompt && sig.Name == secretPromptIface+".Completed":
				completed = true
				dismissed, ok := firstBool(sig.Body)
				return ok && !dismissed, nil
			case sig.Sender == busName && sig.Path == busPath && sig.Name == busName+".NameOwnerChanged" && len(sig.Body) > 0 && sig.Body[0] == secretServiceName:
				return false, fmt.Errorf("%w: the Secret Service exited or restarted while its unlock prompt was open", ErrUnavailable)
			}
		case <-conn.Context().Done():
			return false, errPromptBusLost
		case <-timer.C:
			return false, fmt.Errorf("%w: nobody answered the keyring's unlock prompt within %v; credhost dismissed it", ErrUnavailable, promptTimeout)
		}
	}
}

// errPromptBusLost is unlockPrompt's answer when the session bus
// connection closed while the prompt was open.
var errPromptBusLost = fmt.Errorf("%w: the connection to the D-Bus session bus closed while the keyring's unlock prompt was open", ErrUnavailable)

// firstBool returns a signal body's first value when it is a bool (the
// Completed signal's "dismissed").
func firstBool(body []any) (v, ok bool) {
	if len(body) == 0 {
		return false, false
	}
	v, ok = body[0].(bool)
	return v, ok
}

// lockedCollection returns the collection go-keyring reads or saves in
// (its choice: the login collection when there is one, else the default
// alias) when it is locked, and "" when it is not or its state cannot be
// told (go-keyring then reports what is wrong). A save, and a read that
// goes through go-keyring, unlock it first (goKeyring.unlockFirst), so
// go-keyring, which would prompt its own way, finds it unlocked.
func lockedCollection(lookupEnv func(string) (string, bool)) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), secretServiceTimeout)
	defer cancel()
	conn, err := quickBus.get(ctx, lookupEnv)
	if err != nil {
		return "", err
	}
	for _, path := range []dbus.ObjectPath{loginCollectionPath, defaultAliasPath} {
		var v dbus.Variant
		err := conn.Object(secretServiceName, path).CallWithContext(ctx, propertiesGet, dbus.FlagNoAutoStart, secretCollectionIface, "Locked").Store(&v)
		switch {
		case isTimeout(err):
			return "", errNoAnswer
		case noSuchObject(err):
			continue
		case err != nil:
			return "", nil
		}
		if locked, _ := v.Value().(bool); locked {
			return string(path), nil
		}
		return "", nil
	}
	return "", nil
}
