package host

import (
	"maps"
	"slices"
	"strings"
	"unicode"
)

// ProviderSummary is one provider entry as `credhost config` shows it. It
// holds no secret: a command as status shows it (an expanded path stays a
// path; any other expanded value reads as ${VAR}, as the file writes it),
// the names of the provider's config keys but none of
// their values, and no args (a secret there would already be visible to
// ps, but this output is often pasted into tickets).
type ProviderSummary struct {
	Name        string   `json:"name"`
	Plugin      string   `json:"plugin,omitempty"`
	Command     string   `json:"command,omitempty"`
	Pinned      bool     `json:"pinned"`
	RefreshWith []string `json:"refresh_with,omitempty"`
	ConfigKeys  []string `json:"config_keys,omitempty"`
	Line        int      `json:"line,omitempty"`
}

// Summary describes the chain in order, without a secret (see
// ProviderSummary).
func (c *Config) Summary() []ProviderSummary {
	out := make([]ProviderSummary, 0, len(c.Providers))
	for _, pc := range c.Providers {
		out = append(out, ProviderSummary{
			Name:        pc.Name,
			Plugin:      pc.Plugin,
			Command:     c.unexpand.apply(pc.Command),
			Pinned:      pc.SHA256 != "",
			RefreshWith: slices.Clone(pc.RefreshWith),
			ConfigKeys:  slices.Sorted(maps.Keys(pc.Config)),
			Line:        pc.Line,
		})
	}
	return out
}

// maxInfoText caps a string a plugin reports about itself (Info's name and
// version) where credhost shows it.
const maxInfoText = 64

// infoText is a plugin's self-description made safe to show: printable
// characters only, on one line, at most maxInfoText of them. A plugin is
// not trusted to print what it likes into status or doctor output.
func infoText(s string) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == maxInfoText {
			b.WriteString("…")
			break
		}
		if !unicode.IsPrint(r) {
			r = '?'
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// infoNameVersion is the member's Info name and version as infoText shows
// them; empty until the provider has started (call it after provider).
func (m *member) infoNameVersion() (name, version string) {
	return infoText(m.info.Name), infoText(m.info.Version)
}
