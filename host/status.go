package host

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/credhost/credhost/sdk"
)

// Provider states reported by Status.
const (
	StateFound = "found" // holds a usable credential
	StateEmpty = "empty" // holds nothing (sdk.ErrNotFound)
	StateError = "error" // failed: could not start, configure or read
)

// ProviderStatus is one row of `credhost status`. It never holds a secret:
// the token appears only as its fingerprint.
type ProviderStatus struct {
	// Name is the provider's name in the config.
	Name string `json:"name"`
	// Plugin is the built-in plugin name, the external command, or for an
	// interpreted plugin its script (the interpreter says little).
	Plugin string `json:"plugin"`
	// PluginName and PluginVersion are what the plugin says of itself
	// (its Info), so an administrator sees what is deployed; empty when it
	// did not start or did not say. Printable and capped.
	PluginName    string `json:"plugin_name,omitempty"`
	PluginVersion string `json:"plugin_version,omitempty"`
	// State is StateFound, StateEmpty or StateError.
	State string `json:"state"`
	// Reason says why the state is empty or error.
	Reason string `json:"reason,omitempty"`
	// ExpiresAt is the token's expiry; nil when unknown or not found.
	ExpiresAt *time.Time `json:"expires_at"`
	// ExpiresIn is the time left, rounded to the second; negative when
	// expired; nil when unknown.
	ExpiresIn *Seconds `json:"expires_in_seconds"`
	// NeedsRefresh reports that the token is inside the expiry buffer.
	NeedsRefresh bool `json:"needs_refresh"`
	// Refreshable reports that this provider could refresh the token.
	Refreshable bool `json:"refreshable"`
	// Fingerprint identifies the token without revealing it.
	Fingerprint string `json:"fingerprint,omitempty"`
}

// Seconds is a duration that encodes to JSON as whole seconds.
type Seconds time.Duration

// MarshalJSON encodes s as whole seconds.
func (s Seconds) MarshalJSON() ([]byte, error) {
	return strconv.AppendInt(nil, int64(time.Duration(s)/time.Second), 10), nil
}

// UnmarshalJSON decodes whole seconds, as MarshalJSON encodes them: a
// status read back from `credhost serve` shows the time left it sent.
func (s *Seconds) UnmarshalJSON(data []byte) error {
	n, err := strconv.ParseInt(string(data), 10, 64)
	if err != nil {
		return fmt.Errorf("expires_in_seconds: want whole seconds, got %s", data)
	}
	*s = Seconds(time.Duration(n) * time.Second)
	return nil
}

// Status reads every provider (concurrently) and reports each one's state,
// in chain order. It does not refresh anything.
func (h *Host) Status(ctx context.Context) []ProviderStatus {
	out := make([]ProviderStatus, len(h.members))
	now := h.now()
	var wg sync.WaitGroup
	for i, m := range h.members {
		wg.Go(func() { out[i] = h.status(ctx, m, now) })
	}
	wg.Wait()
	return out
}

func (h *Host) status(ctx context.Context, m *member, now time.Time) ProviderStatus {
	st := ProviderStatus{Name: m.cfg.Name, Plugin: m.shownPlugin()}
	var cred sdk.Credential
	err := h.enter()
	if err == nil {
		cred, err = h.read(ctx, m)
		h.leave()
		st.PluginName, st.PluginVersion = m.infoNameVersion()
	}
	if err != nil {
		st.State = StateError
		if errors.Is(err, sdk.ErrNotFound) {
			st.State = StateEmpty
		}
		var pe *ProviderError
		if errors.As(err, &pe) {
			st.Reason = pe.reason()
		} else {
			st.Reason = err.Error()
		}
		return st
	}
	st.State = StateFound
	st.Fingerprint = cred.Fingerprint()
	if left, ok := cred.ExpiresIn(now); ok {
		exp := cred.ExpiresAt.UTC()
		sec := Seconds(left.Round(time.Second))
		st.ExpiresAt, st.ExpiresIn = &exp, &sec
		st.NeedsRefresh = needsRefresh(cred, now, h.buffer())
	}
	st.Refreshable = len(m.cfg.RefreshWith) > 0 || (m.info.CanRefresh && cred.RefreshToken != "")
	return st
}

// shownPlugin is what status and doctor show as the member's plugin: the
// built-in's name, else the script an interpreter runs, else the command,
// as the config file spells them (like the errors that quote them).
func (m *member) shownPlugin() string {
	switch {
	case m.cfg.Plugin != "":
		return m.cfg.Plugin
	case m.cfg.Script != "":
		return m.unexpand.apply(m.cfg.Script)
	}
	return m.unexpand.apply(m.cfg.Command)
}
