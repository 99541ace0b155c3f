//go:build !darwin && !windows

package keychain

import (
	"errors"
	"fmt"

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

// quickGet reads the secret of (service, account) from the same item
// go-keyring's Get returns, in two round trips to the Secret Service where
// go-keyring takes seven (eight with the check that one is running):
//
//  1. at once: OpenSession, and for each collection go-keyring may pick
//     (the "login" collection when there is one, else the default alias)
//     SearchItems and its Locked property;
//  2. GetSecret of the first item found, then the session's Close, sent
//     without waiting for its answer.
//
// Every call is sent with NoAutoStart, so with no Secret Service running
// the bus says so instead of starting one, and quickGet reports
// ErrUnavailable as available does. It returns errTakeLongPath whenever
// the case is not plain (the collection is locked or missing, or any call
// fails otherwise): go-keyring then unlocks, prompts and reports errors as
// it always did.
func quickGet(lookupEnv func(string) (string, bool), service, account string) (string, error) {
	if addr, ok := lookupEnv("DBUS_SESSION_BUS_ADDRESS"); !ok || addr == "" {
		return "", fmt.Errorf("%w: no D-Bus session bus ($DBUS_SESSION_BUS_ADDRESS is not set)", ErrUnavailable)
	}
	conn, err := dbus.SessionBus()
	if err != nil {
		return "", fmt.Errorf("%w: cannot reach the D-Bus session bus: %v", ErrUnavailable, err)
	}
	const flags = dbus.FlagNoAutoStart
	attrs := map[string]string{"username": account, "service": service}
	svc := conn.Object(secretServiceName, secretServicePath)
	open := svc.Go(secretServiceIface+".OpenSession", flags, nil, "plain", dbus.MakeVariant(""))
	type candidate struct{ search, locked *dbus.Call }
	var candidates []candidate
	for _, path := range []dbus.ObjectPath{loginCollectionPath, defaultAliasPath} {
		c := conn.Object(secretServiceName, path)
		candidates = append(candidates, candidate{
			search: c.Go(secretCollectionIface+".SearchItems", flags, nil, attrs),
			locked: c.Go(propertiesGet, flags, nil, secretCollectionIface, "Locked"),
		})
	}

	var ignored dbus.Variant
	var session dbus.ObjectPath
	err = (<-open.Done).Store(&ignored, &session)
	// go-keyring's choice: the login collection when it exists, else the
	// default alias. Every answer is read, so none is left on the shared
	// connection.
	var items []dbus.ObjectPath
	chosen, plain := false, true
	for _, c := range candidates {
		var found []dbus.ObjectPath
		serr := (<-c.search.Done).Store(&found)
		var v dbus.Variant
		lerr := (<-c.locked.Done).Store(&v)
		switch {
		case chosen:
		case serr == nil:
			chosen, items = true, found
			locked, ok := v.Value().(bool)
			plain = lerr == nil && ok && !locked
		case !noSuchObject(serr):
			chosen, plain = true, false // it may exist: go-keyring's turn
		}
	}
	switch {
	case err != nil && notRunning(err):
		return "", fmt.Errorf("%w: no Secret Service is running on the session bus", ErrUnavailable)
	case err != nil:
		return "", errTakeLongPath
	}
	closeSession := func() {
		conn.Object(secretServiceName, session).Go(secretSessionIface+".Close", flags|dbus.FlagNoReplyExpected, nil)
	}
	if !chosen || !plain {
		closeSession()
		return "", errTakeLongPath
	}
	if len(items) == 0 {
		closeSession()
		return "", ErrNoItem
	}
	var secret struct {
		Session     dbus.ObjectPath
		Parameters  []byte
		Value       []byte
		ContentType string
	}
	get := conn.Object(secretServiceName, items[0]).Go(secretItemIface+".GetSecret", flags, nil, session)
	closeSession()
	if err := (<-get.Done).Store(&secret); err != nil {
		return "", errTakeLongPath
	}
	return string(secret.Value), nil
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
