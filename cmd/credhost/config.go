package main

import (
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/credhost/credhost/host"
)

// systemConfigPath replaces host.SystemConfigPath() when set: by tests only,
// which cannot write /etc. No flag or variable sets it, so no user moves
// the system config at run time.
var systemConfigPath string

// loadOptions are where the config is looked for: the --config flag, then
// host.LoadConfig's own order.
func (g *globals) loadOptions() host.LoadOptions {
	return host.LoadOptions{Path: g.config, SystemPath: systemConfigPath}
}

// configCommand is `credhost config`: which config is in force, why, and its
// chain, never a secret.
func configCommand(g *globals, stdout io.Writer) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show which config file is in force and its providers (never a secret)",
		Long: `Show which config is in force and why (--config, $CREDHOST_CONFIG, the
user config, the system config or the embedded default, looked for in that
order), then its providers in chain order: name, plugin or command (as the
status shows it), whether the command is pinned, refresh_with,
and the names of its config keys, never their values. A config error exits 2.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			cfg, err := host.LoadConfig(g.loadOptions())
			if err != nil {
				return err
			}
			sys := systemConfigPath
			if sys == "" {
				sys = host.SystemConfigPath()
			}
			if asJSON {
				return writeJSON(stdout, struct {
					Source       string                 `json:"source"`
					Origin       string                 `json:"origin"`
					SystemConfig string                 `json:"system_config"`
					Providers    []host.ProviderSummary `json:"providers"`
				}{cfg.Source, cfg.Origin, sys, cfg.Summary()})
			}
			if cfg.Source == cfg.Origin {
				fmt.Fprintf(stdout, "config: %s\n", cfg.Source)
			} else {
				fmt.Fprintf(stdout, "config: %s (%s)\n", cfg.Source, cfg.Origin)
			}
			fmt.Fprintf(stdout, "order: --config, $CREDHOST_CONFIG, user config, system config (%s), embedded default\n\n", sys)
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PROVIDER\tPLUGIN\tPINNED\tREFRESH_WITH\tCONFIG KEYS")
			for _, p := range cfg.Summary() {
				plugin := p.Plugin
				if plugin == "" {
					plugin = p.Command
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.Name, plugin, yesNo(p.Pinned), orDash(strings.Join(p.RefreshWith, ",")), orDash(strings.Join(p.ConfigKeys, ",")))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// buildVersion is what `credhost --version` prints after "credhost ": the
// module version, the VCS revision it was built from (and whether the tree
// had changes), and the Go version, from the binary's build info.
func buildVersion() string { return versionOf(debug.ReadBuildInfo()) }

// versionOf is buildVersion for the build info bi.
func versionOf(bi *debug.BuildInfo, ok bool) string {
	if !ok || bi == nil {
		return "unknown (built without module information)"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = ", modified"
			}
		}
	}
	if rev != "" {
		v += " (revision " + rev + modified + ")"
	}
	return v + " " + bi.GoVersion
}

// pluginVersion is ", plugin NAME VERSION" for a plugin that said what it
// is, else "".
func pluginVersion(name, version string) string {
	s := strings.TrimSpace(name + " " + version)
	if s == "" {
		return ""
	}
	return ": plugin " + s
}
