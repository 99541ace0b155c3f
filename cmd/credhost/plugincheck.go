package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/credhost/credhost/sdk/conformance"
)

// errChecksFailed ends a check run in which a check failed; its lines
// said which and why.
var errChecksFailed = errors.New("the plugin failed a check")

// pluginCheckCommand is `credhost plugin check -- CMD ARGS...`: the
// conformance suite Go plugins run in their tests (sdk/sdktest), run
// against any plugin executable, in any language, with no Go toolchain.
func pluginCheckCommand(g *globals, stdout io.Writer) *cobra.Command {
	var config string
	var start, call time.Duration
	cmd := &cobra.Command{
		Use:   "check [--config JSON] -- CMD [ARGS...]",
		Short: "Run the conformance suite against a plugin executable, one line per check",
		Long: `Run the conformance suite against a plugin executable, in any language:
its start (magic cookie, handshake line, mutual TLS), Info, that Configure
refuses an unknown key, Read on an empty store, Save then Read, Unsupported
where it cannot, concurrent Reads, deadlines, and a prompt exit. These are
the checks Go plugins run in their tests with sdk/sdktest.

--config is the provider's config block (JSON). Each check starts the plugin
afresh; ` + conformance.DirPlaceholder + ` in the config stands for an empty directory of
that check's own, so each starts from an empty store:

  credhost plugin check --config '{"path":"` + conformance.DirPlaceholder + `/creds.json"}' -- /opt/corp/plugin

The plugin gets this environment. Prints ok, FAIL or skip per check; exits 1
when a check failed. --log-level debug shows the plugin's stderr and
go-plugin's own lines.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() != 0 {
				return &exitError{code: exitUsage, err: fmt.Errorf("put the plugin command after --: credhost plugin check [--config JSON] -- CMD [ARGS...]")}
			}
			if config != "" {
				var obj map[string]any
				if err := json.Unmarshal([]byte(config), &obj); err != nil || obj == nil {
					return &exitError{code: exitUsage, err: fmt.Errorf("--config: want a JSON object (the provider's config block)")}
				}
			}
			logger, err := g.logger()
			if err != nil {
				return err
			}
			opts := conformance.Options{StartTimeout: start, CallTimeout: call}
			if logger.IsDebug() {
				// The plugin's stderr, which a failed check may explain.
				opts.Logger = logger
			}
			ok := conformance.RunCommand(stdout, conformance.Command{Argv: args, Config: config, Options: opts})
			if !ok {
				return &exitError{code: 1, err: errChecksFailed}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&config, "config", "", "the provider's config block, a JSON object ("+conformance.DirPlaceholder+": a fresh directory per check)")
	cmd.Flags().DurationVar(&start, "start-timeout", conformance.DefaultStartTimeout, "bound on the plugin's start and handshake")
	cmd.Flags().DurationVar(&call, "call-timeout", conformance.DefaultCallTimeout, "bound on each call")
	return cmd
}
