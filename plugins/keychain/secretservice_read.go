//go:build !darwin && !windows

package keychain

import (
	"context"
	"errors"
	"fmt"
	"time"

	dbus "github.com/godbus/dbus/v5"
)

// The Secret Service API's names (freedesktop.org Secret Service 0.2).
const (
	secretServicePath     = dbus.ObjectPath("/org/freedesktop/secrets")
	loginCollectionPath   = dbus.ObjectPath("/org/freedesktop/secrets/collection/login")
	defaultAliasPath      = dbus.ObjectPath("/org/freedesktop/secrets/aliases/default")
	secretServiceIface    = "org.freedesktop.Secret.Service"
	secretCollectionIface = "org.freedesktop.Secret.Collection"
	secretItemIface       = "org.freedesktop.Secret.Item"
	secretSessionIface    = "org.freedesktop.Secret.Session"
	propertiesGet         = "org.freedesktop.DBus.Properties.Get"
)

// secretServiceTimeout bounds quickGet's wait for the Secret Service. The
// bus never times a call out, so a Secret Service that owns its name but
// never answers (hung, or stopped in a debugger) would hold the read and
// its pending calls on the process's one session-bus connection forever;
// the provider's caller gives up after its own timeout, but `credhost
// serve` reads again every 2 s and the stuck reads would pile up. At the
// deadline godbus drops the calls, and the read reports the keyring
// unavailable. 5 s is far above a healthy answer (milliseconds) and above
// the provider's default timeout, so it only ends reads nobody waits for.
const secretServiceTimeout = 5 * time.Second

// errNoAnswer is quickGet's answer when the Secret Service did not answer
// within secretServiceTimeout.
var errNoAnswer = fmt.Errorf("%w: the Secret Service did not answer within %v", ErrUnavailable, secretServiceTimeout)

// quickGet reads the secret of (service, account) from the same item
// go-keyring's Get returns, in two round trips to the Secret Service where
// go-keyring takes seven (eight with the check that one is running):
//
//  1. at once: OpenSession, and for each collection go-keyring may pick
//     (the "login" collection when there is one, else the default alias)
//     SearchItems and its Locked property;
//  2. GetSecret of the first item found; once it is answered (a service
//     may handle calls out of order), the session's Close, sent without
//     waiting for its answer. Every path that opened a session closes it.
//
// Every call is sent with NoAutoStart, so with no Secret Service running
// the bus says so instead of starting one, and quickGet reports
// ErrUnavailable as available does; with no session bus address to
// connect to (sessionBusAddress) it does not call D-Bus at all. The whole
// read, connecting to the bus included (quickBus), is bounded by
// secretServiceTimeout: a bus or Secret Service that does not answer in
// time is ErrUnavailable too, not go-keyring's turn, whose calls have no
// bound and would hang the same way. A locked collection (or item) is a
// *lockedError naming it: goKeyring.Get unlocks it itself (unlockPrompt),
// at most once per unlockCooldown, and reads again. It returns
// errTakeLongPath whenever the case is not plain otherwise (no collection,
// or any call fails otherwise): go-keyring then reads and reports errors
// as it always did.
func quickGet(lookupEnv func(string) (string, bool), service, account string) (string, error) {
	// Cancelling drops every call still pending, so none outlives the read.
	ctx, cancel := context.WithTimeout(context.Background(), secretServiceTimeout)
	defer cancel()
	conn, err := quickBus.get(ctx, lookupEnv)
	if err != nil {
		return "", err
	}

	const flags = dbus.FlagNoAutoStart
	attrs := map[string]string{"username": account, "service": service}
	svc := conn.Object(secretServiceName, secretServicePath)
	open := svc.GoWithContext(ctx, secretServiceIface+".OpenSession", flags, nil, "plain", dbus.MakeVariant(""))
	type candidate struct {
		path           dbus.ObjectPath
		search, locked *dbus.Call
	}
	var candidates []candidate
	for _, path := range []dbus.ObjectPath{loginCollectionPath, defaultAliasPath} {
		c := conn.Object(secretServiceName, path)
		candidates = append(candidates, candidate{
			path:   path,
			search: c.GoWithContext(ctx, secretCollectionIface+".SearchItems", flags, nil, attrs),
			locked: c.GoWithContext(ctx, propertiesGet, flags, nil, secretCollectionIface, "Locked"),
		})
	}

	var ignored dbus.Variant
	var session dbus.ObjectPath
	err = (<-open.Done).Store(&ignored, &session)
	if err == nil {
		// Deferred, so it is sent on every path below, after the last
		// answer was read (GetSecret's included).
		defer conn.Object(secretServiceName, session).Go(secretSessionIface+".Close", flags|dbus.FlagNoReplyExpected, nil)
	}
	// go-keyring's choice: the login collection when it exists, else the
	// default alias. Every answer is read, so none is left on the shared
	// connection.
	var items []dbus.ObjectPath
	var lockedPath dbus.ObjectPath // the chosen collection, when it is locked
	chosen, plain, late := false, true, isTimeout(err)
	for _, c := range candidates {
		var found []dbus.ObjectPath
		serr := (<-c.search.Done).Store(&found)
		var v dbus.Variant
		lerr := (<-c.locked.Done).Store(&v)
		late = late || isTimeout(serr) || isTimeout(lerr)
		switch {
		case chosen:
		case serr == nil:
			chosen, items = true, found
			locked, ok := v.Value().(bool)
			plain = lerr == nil && ok && !locked
			if lerr == nil && ok && locked {
				lockedPath = c.path
			}
		case !noSuchObject(serr):
			chosen, plain = true, false // it may exist: go-keyring's turn
		}
	}
	switch {
	case late:
		return "", errNoAnswer
	case err != nil && notRunning(err):
		return "", fmt.Errorf("%w: no Secret Service is running on the session bus", ErrUnavailable)
	case err == nil && lockedPath != "":
		return "", &lockedError{path: string(lockedPath)}
	case err != nil, !chosen, !plain:
		return "", errTakeLongPath
	case len(items) == 0:
		return "", ErrNoItem
	}
	var secret struct {
		Session     dbus.ObjectPath
		Parameters  []byte
		Value       []byte
		ContentType string
	}
	get := conn.Object(secretServiceName, items[0]).GoWithContext(ctx, secretItemIface+".GetSecret", flags, nil, session)
	if err := (<-get.Done).Store(&secret); isTimeout(err) {
		return "", errNoAnswer
	} else if isLocked(err) {
		return "", &lockedError{path: string(items[0])} // the item is locked on its own
	} else if err != nil {
		return "", errTakeLongPath
	}
	return string(secret.Value), nil
}

// isTimeout reports whether err is godbus dropping a call at
// secretServiceTimeout.
func isTimeout(err error) bool { return errors.Is(err, context.DeadlineExceeded) }

// isLocked reports whether err is a Secret Service's answer that the
// object asked for is locked.
func isLocked(err error) bool {
	var e dbus.Error
	return errors.As(err, &e) && e.Name == "org.freedesktop.Secret.Error.IsLocked"
}

// noSuchObject reports whether err is a Secret Service's answer to a call
// on a path where it has no object (gnome-keyring says UnknownMethod,
// others UnknownObject): the collection does not exist.
func noSuchObject(err error) bool {
	var e dbus.Error
	if errors.As(err, &e) {
		return e.Name == "org.freedesktop.DBus.Error.UnknownMethod" || e.Name == "org.freedesktop.DBus.Error.UnknownObject"
	}
	return false
}

// notRunning reports whether err is the bus's answer to a call with
// NoAutoStart to a name nobody owns.
func notRunning(err error) bool {
	var e dbus.Error
	if errors.As(err, &e) {
		return e.Name == "org.freedesktop.DBus.Error.NameHasNoOwner" || e.Name == "org.freedesktop.DBus.Error.ServiceUnknown"
	}
	return false
}
