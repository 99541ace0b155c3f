package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/credhost/credhost/host"
	"github.com/credhost/credhost/plugins/env"
	"github.com/credhost/credhost/sdk"
)

// What Claude Code (checked against 2.1.197) does that decides how credhost
// must be wired to it; docs/claude-code-facts.md quotes the client's code.
const (
	// claudeRefreshWindow: the client refreshes its own OAuth token when it
	// is this close to expiry.
	claudeRefreshWindow = 5 * time.Minute
	// claudeHelperTTL: the client reuses an apiKeyHelper's answer this long
	// (CLAUDE_CODE_API_KEY_HELPER_TTL_MS overrides), and sends the old
	// answer once more while the helper re-runs.
	claudeHelperTTL = 5 * time.Minute
	// oauthTokenPrefix starts every Claude OAuth access token.
	oauthTokenPrefix = "sk-ant-oat"
)

// claudeSettings is what doctor reads of Claude Code's settings.json.
type claudeSettings struct {
	APIKeyHelper string            `json:"apiKeyHelper"`
	Env          map[string]string `json:"env"`
}

// claudeCodeReport checks how Claude Code would take its token from
// credhost, for `credhost doctor`: an apiKeyHelper that would hand it an
// OAuth token (the API refuses those as an API key), and a buffer too short
// to refresh before the client does. lookupEnv and home reach the user's
// environment and home directory.
func claudeCodeReport(cfg *host.Config, statuses []host.ProviderStatus, lookupEnv func(string) (string, bool), home string) host.Report {
	r := host.Report{Provider: "claude-code", Plugin: "integration"}
	add := func(severity, msg, fix string) {
		r.Findings = append(r.Findings, host.Finding{Severity: severity, Message: msg, Fix: fix})
	}
	dir := filepath.Join(home, ".claude")
	if v, ok := lookupEnv("CLAUDE_CONFIG_DIR"); ok && v != "" {
		dir = v
	}
	path := filepath.Join(dir, "settings.json")
	var settings claudeSettings
	switch data, err := os.ReadFile(path); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		add(sdk.SeverityWarning, fmt.Sprintf("cannot read Claude Code's settings %s: %v", path, unwrapPathErr(err)), "")
	default:
		if err := json.Unmarshal(data, &settings); err != nil {
			add(sdk.SeverityWarning, fmt.Sprintf("Claude Code's settings %s are not valid JSON", path), "fix the file; Claude Code cannot read it either")
		}
	}

	if runsCredhost(settings.APIKeyHelper) {
		if name, oauth := servesOAuth(cfg, statuses, lookupEnv); oauth {
			add(sdk.SeverityWarning,
				fmt.Sprintf("apiKeyHelper in %s runs credhost, which would serve an OAuth token (from provider %q); Claude Code sends a helper's output as x-api-key and Bearer without the OAuth beta header, and the API refuses OAuth tokens sent that way", path, name),
				"remove apiKeyHelper from "+path+" and start Claude Code as `credhost exec -- claude …`: it hands the token over as CLAUDE_CODE_OAUTH_TOKEN and keeps the store fresh for as long as claude runs. apiKeyHelper is for enterprise or gateway tokens")
		} else if name != "" {
			add(sdk.SeverityOK, fmt.Sprintf("apiKeyHelper in %s runs credhost, which serves a token from provider %q that is not an OAuth token: the right door", path, name), "")
		}
	}

	ttl, ttlFrom := claudeHelperTTL, "default"
	for _, src := range []struct {
		v    string
		ok   bool
		from string
	}{
		{settings.Env["CLAUDE_CODE_API_KEY_HELPER_TTL_MS"], settings.Env["CLAUDE_CODE_API_KEY_HELPER_TTL_MS"] != "", "env in " + path},
		{lookupOr(lookupEnv, "CLAUDE_CODE_API_KEY_HELPER_TTL_MS"), lookupOr(lookupEnv, "CLAUDE_CODE_API_KEY_HELPER_TTL_MS") != "", "$CLAUDE_CODE_API_KEY_HELPER_TTL_MS"},
	} {
		if ms, err := strconv.ParseInt(strings.TrimSpace(src.v), 10, 64); src.ok && err == nil && ms >= 0 {
			ttl, ttlFrom = time.Duration(ms)*time.Millisecond, src.from
		}
	}
	need := max(claudeRefreshWindow, ttl)
	if buffer := cfg.Refresh.Buffer.Std(); buffer <= need {
		add(sdk.SeverityWarning,
			fmt.Sprintf("refresh.buffer is %s, not longer than Claude Code's own refresh window (%s before expiry) and its apiKeyHelper cache (%s, %s): the client may refresh the token itself, racing credhost, or send an expired token once while its helper re-runs", buffer, claudeRefreshWindow, ttl, ttlFrom),
			fmt.Sprintf("set refresh.buffer (or $CLAUDE_TOKEN_REFRESH_BUFFER_SECONDS for the embedded default) above %s, e.g. %s", need, need+5*time.Minute))
	} else {
		add(sdk.SeverityOK, fmt.Sprintf("refresh.buffer %s is longer than Claude Code's refresh window (%s) and apiKeyHelper cache (%s)", buffer, claudeRefreshWindow, ttl), "")
	}
	return r
}

// runsCredhost reports whether an apiKeyHelper command runs credhost.
func runsCredhost(helper string) bool {
	fields := strings.Fields(helper)
	if len(fields) == 0 {
		return false
	}
	self, _ := os.Executable()
	for _, f := range fields {
		base := filepath.Base(strings.Trim(f, `"'`))
		if strings.HasPrefix(base, "credhost") || (self != "" && base == filepath.Base(self)) {
			return true
		}
	}
	return false
}

// servesOAuth names the provider `credhost token` would serve from (the
// first that holds a token) and says whether its token is an OAuth token:
// one that starts with sk-ant-oat, or comes from a store of the credentials
// document (file, keychain, wincred) or another store that refreshes it, or
// from an env provider that refreshes through a store (oauth-env).
func servesOAuth(cfg *host.Config, statuses []host.ProviderStatus, lookupEnv func(string) (string, bool)) (string, bool) {
	for i, st := range statuses {
		if st.State != host.StateFound || i >= len(cfg.Providers) {
			continue
		}
		pc := cfg.Providers[i]
		if pc.Plugin == "env" {
			if v, _ := env.ConfigVars(pc.Config); v != "" && strings.HasPrefix(lookupOr(lookupEnv, v), oauthTokenPrefix) {
				return st.Name, true
			}
			return st.Name, len(pc.RefreshWith) > 0
		}
		switch pc.Plugin {
		case "file", "keychain", "wincred":
			return st.Name, true // Claude Code's credentials document: an OAuth login
		}
		return st.Name, st.Refreshable
	}
	return "", false
}

func lookupOr(lookupEnv func(string) (string, bool), name string) string {
	v, _ := lookupEnv(name)
	return v
}

// unwrapPathErr drops a *PathError's repetition of the path.
func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
