package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/credhost/credhost/host"
	"github.com/credhost/credhost/host/daemon"
	"github.com/credhost/credhost/sdk/plugin"
)

// Exit codes, part of the command-line contract (README: "Commands").
const (
	exitOK            = 0
	exitNoCredential  = 1
	exitUsage         = 2
	exitRefreshFailed = 3
)

// exitError carries an exit code out of a command; its message (if any) is
// printed to stderr.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// globals are the flags every command takes.
type globals struct {
	config    string
	logLevel  string
	logFormat string
	stderr    io.Writer
	// noDaemon is --no-daemon: work directly even when a daemon serves.
	noDaemon bool
}

// run is main without the process: it parses args, writes to stdout and
// stderr, and returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	g := &globals{stderr: stderr}
	root := &cobra.Command{
		Use:   "credhost",
		Short: "Fresh credentials for long-running agents, from a chain of provider plugins",
		Long: `credhost walks a configured priority chain of credential providers
(environment variables, the OS keychain, credential files, private plugins)
and prints a usable access token, refreshing it when it is about to expire.

Config: --config, else $CREDHOST_CONFIG, else $XDG_CONFIG_HOME/credhost/config.yaml
(~/.config/credhost/config.yaml), else the system config (` + "`credhost config`" + `
names it), else the embedded default (Claude Code's chain).

Daemon: token, exec, refresh and status ask a running credhost serve
($CREDHOST_SOCKET, else its default socket) when its chain is theirs (same
config, same values of the variables the chain reads), with the same output
and exit codes; when none answers within half a second, or its chain
differs, they work directly. --no-daemon always works directly.

Exit codes: 0 ok (also when degraded), 1 no credential found,
2 usage or config error, 3 refresh required but impossible (--strict only).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       buildVersion(),
	}
	root.SetVersionTemplate("credhost {{.Version}}\n")
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&g.config, "config", "", "config file (default: $CREDHOST_CONFIG, XDG config, embedded default)")
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "warn", "trace, debug, info, warn, error or off")
	root.PersistentFlags().StringVar(&g.logFormat, "log-format", "text", "text or json")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{code: exitUsage, err: err}
	})

	root.AddCommand(tokenCommand(g, stdout), statusCommand(g, stdout), refreshCommand(g, stdout), execCommand(g, stdout, stderr), doctorCommand(g, stdout), configCommand(g, stdout), serveCommand(g), pluginCommand(g, stdout))

	err := root.Execute()
	if err == nil {
		return exitOK
	}
	code := exitUsage
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		code = ee.code
	case errors.Is(err, host.ErrConfig):
		code = exitUsage
	case errors.Is(err, host.ErrNoCredential):
		code = exitNoCredential
	case errors.Is(err, host.ErrRefreshFailed):
		code = exitRefreshFailed
	}
	if !errors.Is(err, errSilent) {
		fmt.Fprintf(stderr, "credhost: %v\n", err)
	}
	return code
}

// logger builds the host logger from the global flags.
func (g *globals) logger() (hclog.Logger, error) {
	level := hclog.LevelFromString(g.logLevel)
	if level == hclog.NoLevel {
		return nil, &exitError{code: exitUsage, err: fmt.Errorf("--log-level %q: want trace, debug, info, warn, error or off", g.logLevel)}
	}
	var jsonFormat bool
	switch g.logFormat {
	case "text":
	case "json":
		jsonFormat = true
	default:
		return nil, &exitError{code: exitUsage, err: fmt.Errorf("--log-format %q: want text or json", g.logFormat)}
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:       "credhost",
		Output:     g.stderr,
		Level:      level,
		JSONFormat: jsonFormat,
	}), nil
}

// openHost loads the config and builds the host. The caller closes it.
func (g *globals) openHost() (*host.Host, error) {
	cfg, opts, _, err := g.setup()
	if err != nil {
		return nil, err
	}
	return host.New(cfg, opts...)
}

// setup loads the config and the logger and wires the built-ins: what
// host.New needs, for a command that builds more than one host.
func (g *globals) setup() (*host.Config, []host.Option, hclog.Logger, error) {
	logger, err := g.logger()
	if err != nil {
		return nil, nil, nil, err
	}
	cfg, err := host.LoadConfig(g.loadOptions())
	if err != nil {
		return nil, nil, nil, err
	}
	logger.Debug("config loaded", "source", cfg.Source, "providers", len(cfg.Providers))
	b, err := builtins()
	if err != nil {
		return nil, nil, nil, err
	}
	return cfg, []host.Option{host.WithLogger(logger), host.WithBuiltins(b)}, logger, nil
}

// withHost wraps a command body: it loads the config, builds the host, runs
// run with a context that an interrupt cancels (so a hung plugin call ends
// on Ctrl-C), and ends the plugin processes afterwards.
func (g *globals) withHost(run func(context.Context, *host.Host) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		ctx, cancel := signal.NotifyContext(cmd.Context(), os.Interrupt)
		defer cancel()
		h, err := g.openHost()
		if err != nil {
			return err
		}
		defer h.Close()
		return run(ctx, h)
	}
}

func tokenCommand(g *globals, stdout io.Writer) *cobra.Command {
	var asJSON, strict bool
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Print a usable access token (and a newline) on stdout",
		Long: `Print a usable access token and a newline on stdout, nothing else;
warnings go to stderr. Usable as Claude Code's apiKeyHelper.`,
		Args: cobra.NoArgs,
		RunE: g.withSource(func(ctx context.Context, src *source) error {
			res, err := src.token(ctx)
			if err != nil {
				return err
			}
			if res.Degraded && strict {
				return &exitError{code: exitRefreshFailed, err: fmt.Errorf("--strict: the token from %q needs a refresh that failed: %w", res.Provider, res.DegradedReason)}
			}
			if !asJSON {
				_, err = fmt.Fprintln(stdout, res.Credential.AccessToken)
				return err
			}
			return writeJSON(stdout, daemon.NewToken(res))
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"access_token","expires_at","provider","refreshed","degraded","degraded_reason","fingerprint"}`)
	cmd.Flags().BoolVar(&strict, "strict", false, "exit 3 instead of printing a token whose needed refresh failed")
	g.noDaemonFlag(cmd)
	return cmd
}

func refreshCommand(g *globals, stdout io.Writer) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "refresh",
		Short: "Force a refresh of the current credential and save it (exit 3 if impossible)",
		Long: `Force a refresh of the credential the chain yields now, whatever its
expiry, and save it to the store it came from. Use it after the API answered
401. Prints the provider and the new expiry (never the token); exits 3 when
the credential cannot be refreshed or the refresh fails.`,
		Args: cobra.NoArgs,
		RunE: g.withSource(func(ctx context.Context, src *source) error {
			res, err := src.refresh(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(stdout, struct {
					Provider    string     `json:"provider"`
					ExpiresAt   *time.Time `json:"expires_at"`
					Fingerprint string     `json:"fingerprint"`
					Refreshed   bool       `json:"refreshed"`
				}{res.Provider, expiryPtr(res.Credential.ExpiresAt), res.Credential.Fingerprint(), res.Refreshed})
			}
			expires := "unknown"
			if !res.Credential.ExpiresAt.IsZero() {
				expires = res.Credential.ExpiresAt.Local().Format(time.RFC3339)
			}
			_, err = fmt.Fprintf(stdout, "refreshed %s: expires %s (token %s)\n", res.Provider, expires, res.Credential.Fingerprint())
			return err
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	g.noDaemonFlag(cmd)
	return cmd
}

func expiryPtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func statusCommand(g *globals, stdout io.Writer) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show every provider: found, empty or error, expiry, refreshable (never a secret)",
		Args:  cobra.NoArgs,
		RunE: g.withSource(func(ctx context.Context, src *source) error {
			rows, err := src.status(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(stdout, daemon.Status{Providers: rows})
			}
			return writeStatusTable(stdout, rows)
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	g.noDaemonFlag(cmd)
	return cmd
}

func writeStatusTable(w io.Writer, rows []host.ProviderStatus) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROVIDER\tPLUGIN\tSTATE\tEXPIRES\tLEFT\tREFRESHABLE\tFINGERPRINT\tREASON")
	for _, r := range rows {
		expires, left := "-", "-"
		if r.ExpiresAt != nil {
			expires = r.ExpiresAt.Local().Format(time.DateTime)
			left = time.Duration(*r.ExpiresIn).String()
			if r.NeedsRefresh {
				left += " (needs refresh)"
			}
		}
		fp := r.Fingerprint
		if fp == "" {
			fp = "-"
		}
		reason := strings.ReplaceAll(r.Reason, "\n", " ")
		if reason == "" {
			reason = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Plugin, r.State, expires, left, yesNo(r.Refreshable), fp, reason)
	}
	return tw.Flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// pluginCommand is `credhost plugin check` (see pluginCheckCommand) and the
// hidden `credhost plugin serve NAME`: the host starts the binary this way
// to run a built-in provider as a plugin process.
func pluginCommand(g *globals, stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{Use: "plugin", Short: "Work with provider plugins"}
	cmd.AddCommand(pluginCheckCommand(g, stdout), &cobra.Command{
		Use:    "serve NAME",
		Short:  "Serve a built-in provider over the plugin protocol (started by the host)",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			newProvider, ok := builtinProviders[args[0]]
			if !ok {
				return &exitError{code: exitUsage, err: fmt.Errorf("no built-in plugin %q", args[0])}
			}
			plugin.Serve(newProvider())
			return nil
		},
	})
	return cmd
}
