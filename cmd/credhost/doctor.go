package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/credhost/credhost/host"
	"github.com/credhost/credhost/sdk"
)

func doctorCommand(g *globals, stdout io.Writer) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check the config, plugins, checksums, keyring and file permissions, and say how to fix each problem",
		Long: `Check the configuration (a config error exits 2), then every provider:
a pinned plugin's checksum before it runs, whether it starts and reads, and
its own checks (file permissions, keyring reachability). Then how Claude
Code takes its token: a warning when its apiKeyHelper (settings.json) runs
credhost and would get an OAuth token, which the API refuses as an API key
(use credhost exec -- claude instead), and when refresh.buffer is not longer
than Claude Code's own 5-minute refresh window and apiKeyHelper cache.
Exits 1 when any finding is an error. Never prints a secret and changes
nothing.`,
		Args: cobra.NoArgs,
		RunE: g.withHost(func(ctx context.Context, h *host.Host) error {
			reports := h.Doctor(ctx)
			home, _ := os.UserHomeDir()
			claude := claudeCodeReport(h.Config(), h.Status(ctx), os.LookupEnv, home)
			errs := 0
			for _, r := range append(reports[:len(reports):len(reports)], claude) {
				for _, f := range r.Findings {
					if f.Severity == sdk.SeverityError {
						errs++
					}
				}
			}
			if asJSON {
				if err := writeJSON(stdout, struct {
					Config      string        `json:"config"`
					Providers   []host.Report `json:"providers"`
					Integration host.Report   `json:"integration"`
				}{h.Config().Source, reports, claude}); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(stdout, "config: %s (ok)\n", h.Config().Source)
				for _, r := range append(reports[:len(reports):len(reports)], claude) {
					fmt.Fprintf(stdout, "%s (%s)%s\n", r.Provider, r.Plugin, pluginVersion(r.PluginName, r.PluginVersion))
					for _, f := range r.Findings {
						fmt.Fprintf(stdout, "  %-8s %s\n", f.Severity, f.Message)
						if f.Fix != "" {
							fmt.Fprintf(stdout, "  %-8s fix: %s\n", "", f.Fix)
						}
					}
				}
			}
			if errs > 0 {
				return &exitError{code: exitNoCredential, err: fmt.Errorf("doctor found %d problem(s)", errs)}
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
