package host

import (
	"context"
	"errors"
	"io/fs"
	"time"

	"github.com/credhost/credhost/sdk"
)

// Finding is one result of Doctor: what was found and how to fix it. It
// never holds a secret.
type Finding struct {
	// Severity is sdk.SeverityOK, sdk.SeverityWarning or sdk.SeverityError.
	Severity string `json:"severity"`
	Message  string `json:"message"`
	// Fix is empty when nothing needs doing.
	Fix string `json:"fix,omitempty"`
}

// Report is one provider's part of Doctor, in chain order.
type Report struct {
	Provider string `json:"provider"`
	Plugin   string `json:"plugin"`
	// PluginName and PluginVersion are the plugin's own (its Info), as in
	// ProviderStatus; empty when it did not start or did not say.
	PluginName    string    `json:"plugin_name,omitempty"`
	PluginVersion string    `json:"plugin_version,omitempty"`
	Findings      []Finding `json:"findings"`
}

// Doctor checks every provider (`credhost doctor`): a pinned plugin's
// checksum before it is started, whether each provider starts, configures
// and reads, and the provider's own checks (sdk.Checker: file permissions,
// keyring reachability). It changes nothing.
func (h *Host) Doctor(ctx context.Context) []Report {
	now := h.now()
	out := make([]Report, 0, len(h.members))
	for _, m := range h.members {
		r := Report{Provider: m.cfg.Name, Plugin: m.shownPlugin()}
		if f, ok := checkPins(m.cfg); !ok {
			r.Findings = append(r.Findings, f)
			out = append(out, r)
			continue // never run a binary whose pin does not match
		}
		st := h.status(ctx, m, now)
		r.PluginName, r.PluginVersion = st.PluginName, st.PluginVersion
		switch st.State {
		case StateError:
			r.Findings = append(r.Findings, Finding{Severity: sdk.SeverityError, Message: st.Reason,
				Fix: "run with --log-level debug to see the provider's own log"})
		case StateFound:
			left := "unknown expiry"
			if st.ExpiresIn != nil {
				left = "expires in " + time.Duration(*st.ExpiresIn).String()
			}
			r.Findings = append(r.Findings, Finding{Severity: sdk.SeverityOK, Message: "holds a credential (" + left + ")"})
		}
		if st.State != StateError {
			r.Findings = append(r.Findings, h.providerChecks(ctx, m, st)...)
		}
		out = append(out, r)
	}
	return out
}

// providerChecks runs the provider's own checks, if it has any; without
// them an empty store is reported as it is.
func (h *Host) providerChecks(ctx context.Context, m *member, st ProviderStatus) []Finding {
	if err := h.enter(); err != nil {
		return nil
	}
	defer h.leave()
	p, err := m.provider(ctx)
	if err != nil {
		return nil
	}
	checker, ok := p.(sdk.Checker)
	var findings []sdk.Finding
	if ok {
		cctx, cancel := h.callContext(ctx)
		findings, err = checker.Check(cctx)
		cancel()
		if err != nil && !errors.Is(err, sdk.ErrUnsupported) {
			return []Finding{{Severity: sdk.SeverityWarning, Message: "its checks failed: " + err.Error()}}
		}
	}
	if (!ok || errors.Is(err, sdk.ErrUnsupported)) && st.State == StateEmpty {
		return []Finding{{Severity: sdk.SeverityOK, Message: "empty: " + st.Reason}}
	}
	out := make([]Finding, 0, len(findings))
	for _, f := range findings {
		if f.Severity == sdk.SeverityOK && st.State == StateFound {
			continue // already said
		}
		out = append(out, Finding{Severity: f.Severity, Message: m.unexpand.apply(f.Message), Fix: m.unexpand.apply(f.Fix)})
	}
	return out
}

// checkPins verifies an external plugin's pins as its start would (who
// may change each file, and its checksum: the command, the script an
// interpreter runs, its modules) without running it.
func checkPins(pc ProviderConfig) (Finding, bool) {
	if pc.Command != "" && pc.SHA256 != "" {
		if f, ok := checkPin(pc.Command, pc.SHA256, "command", openPinned); !ok {
			return f, false
		}
	}
	if pc.Script != "" && pc.ScriptSHA256 != "" {
		if f, ok := checkPin(pc.Script, pc.ScriptSHA256, "script", openScript); !ok {
			return f, false
		}
	}
	if pc.Modules != "" {
		if err := verifyModules(pc.Modules, pc.ModulesSHA256); err != nil {
			return pinFinding(err, "modules"), false
		}
	}
	return Finding{}, true
}

// checkPin verifies one pinned file, opened as its start opens it.
func checkPin(path, want, key string, open func(path, want string) (*executable, error)) (Finding, bool) {
	exe, err := open(path, want)
	if err == nil {
		exe.remove()
		return Finding{}, true
	}
	return pinFinding(err, key), false
}

// pins says, for the key of what is pinned, what it is and its pin's key.
var pins = map[string]struct{ what, pin string }{
	"command": {"this binary", "sha256"},
	"script":  {"this script", "script_sha256"},
	"modules": {"these modules", "modules_sha256"},
}

// pinFinding is the finding for the pin of key (command, script or
// modules) that failed, with the fix: the pin to set when only the
// checksum differs, the path to correct when nothing is there.
func pinFinding(err error, key string) Finding {
	f := Finding{Severity: sdk.SeverityError, Message: err.Error()}
	var mismatch *pinMismatchError
	switch {
	case errors.As(err, &mismatch):
		f.Fix = "if you trust " + pins[key].what + " (a new release?), set " + pins[key].pin + ": " + mismatch.got
	case errors.Is(err, fs.ErrNotExist) && key == "command":
		f.Fix = "install the plugin, or correct command: in the config"
	case errors.Is(err, fs.ErrNotExist):
		f.Fix = "correct " + key + ": in the config"
	}
	return f
}
