package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/credhost/credhost/host"
)

// defaultExecVar is where `credhost exec` puts a token that did not come
// from an environment variable: the variable Claude Code reads an OAuth
// token from.
const defaultExecVar = "CLAUDE_CODE_OAUTH_TOKEN"

func execCommand(g *globals, stdout, stderr io.Writer) *cobra.Command {
	var envName string
	var strict bool
	cmd := &cobra.Command{
		Use:   "exec [--env NAME] -- COMMAND [ARGS...]",
		Short: "Run a command with a fresh token in its environment",
		Long: `Get a usable token (refreshing it if needed), end the plugin processes,
then run COMMAND with the token in its environment, never in its arguments.
The variable is --env NAME; by default the one the token came from when an
env provider won (ANTHROPIC_AUTH_TOKEN, CLAUDE_CODE_OAUTH_TOKEN), else
CLAUDE_CODE_OAUTH_TOKEN. A terminate signal is passed on; Ctrl-C reaches the
command from the terminal.
credhost exits with the command's exit status; before the command starts
it exits 1 (no credential), 2 (usage or config) or 3 (--strict).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := signal.NotifyContext(cmd.Context(), os.Interrupt)
			h, err := g.openHost()
			if err != nil {
				cancel()
				return err
			}
			res, err := h.Token(ctx)
			name := envName
			if name == "" {
				name = tokenVar(h.Config(), res.Provider)
			}
			// The command may run for hours: end the plugin processes first.
			h.Close()
			cancel()
			if err != nil {
				return err
			}
			if res.Degraded && strict {
				return &exitError{code: exitRefreshFailed, err: fmt.Errorf("--strict: the token from %q needs a refresh that failed: %w", res.Provider, res.DegradedReason)}
			}
			return runWithToken(args, name, res.Credential.AccessToken, stdout, stderr)
		},
	}
	cmd.Flags().SetInterspersed(false) // flags after COMMAND are its own
	cmd.Flags().StringVar(&envName, "env", "", "the variable that holds the token (default: see above)")
	cmd.Flags().BoolVar(&strict, "strict", false, "exit 3 instead of running with a token whose needed refresh failed")
	return cmd
}

// tokenVar is the variable an env provider read the token from, or
// defaultExecVar.
func tokenVar(cfg *host.Config, provider string) string {
	for _, p := range cfg.Providers {
		if p.Name == provider && p.Plugin == "env" {
			if v, ok := p.Config["var"].(string); ok && v != "" {
				return v
			}
		}
	}
	return defaultExecVar
}

// runWithToken runs argv with name=token added to this environment (any
// other value of name removed) and returns the command's exit status.
func runWithToken(argv []string, name, token string, stdout, stderr io.Writer) error {
	child := exec.Command(argv[0], argv[1:]...)
	child.Stdin, child.Stdout, child.Stderr = os.Stdin, stdout, stderr
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, name+"=") {
			child.Env = append(child.Env, kv)
		}
	}
	child.Env = append(child.Env, name+"="+token)
	if err := child.Start(); err != nil {
		return &exitError{code: exitUsage, err: fmt.Errorf("exec %s: %w", argv[0], err)}
	}
	// Ctrl-C reaches the command from the terminal itself (it is in the
	// same process group); passing it on too would deliver it twice, which
	// programs such as Claude Code read as "quit now". credhost only stays
	// alive through it (a handler, not SIG_IGN, which the command would
	// inherit). A SIGTERM sent to credhost alone is passed on.
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(signals)
	go func() {
		for s := range signals {
			if s == syscall.SIGTERM {
				_ = child.Process.Signal(s)
			}
		}
	}()
	err := child.Wait()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ee):
		code := ee.ExitCode()
		if code < 0 {
			code = 1 // killed by a signal
		}
		return &exitError{code: code, err: errSilent}
	}
	return err
}

// errSilent ends credhost with a code and no message of its own: the
// command has already said what it had to.
var errSilent = errors.New("")
