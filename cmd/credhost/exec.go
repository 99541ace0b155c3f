package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"

	"github.com/spf13/cobra"

	"github.com/credhost/credhost/host"
	"github.com/credhost/credhost/plugins/env"
)

// defaultExecVar is where `credhost exec` puts a token that did not come
// from an environment variable: the variable Claude Code reads an OAuth
// token from.
const defaultExecVar = "CLAUDE_CODE_OAUTH_TOKEN"

// fdExecVar names the descriptor Claude Code reads an OAuth token from
// instead of defaultExecVar. The client opens /proc/self/fd/N, reads it to
// the end once (at most 64 KiB) and keeps what it read.
const fdExecVar = "CLAUDE_CODE_OAUTH_TOKEN_FILE_DESCRIPTOR"

// maxFDToken bounds a token passed on a pipe: it is written before the
// command starts, so it must fit the pipe's buffer (64 KiB on Linux), and
// the client refuses more than 64 KiB.
const maxFDToken = 60 << 10

func execCommand(g *globals, stdout, stderr io.Writer) *cobra.Command {
	var envName string
	var strict, useFD bool
	cmd := &cobra.Command{
		Use:   "exec [--env NAME | --fd] -- COMMAND [ARGS...]",
		Short: "Run a command with a fresh token, and keep the store fresh while it runs",
		Long: `Get a usable token (refreshing it if needed), then run COMMAND with the
token in its environment, never in its arguments. The variable is --env NAME;
by default the one the token came from when an env provider won
(ANTHROPIC_AUTH_TOKEN, CLAUDE_CODE_OAUTH_TOKEN), else CLAUDE_CODE_OAUTH_TOKEN.

With --fd (Linux, for Claude Code) the OAuth token is not put in the
environment at all: COMMAND reads it once from a pipe on descriptor 3, named
by CLAUDE_CODE_OAUTH_TOKEN_FILE_DESCRIPTOR=3.

While COMMAND runs, credhost stays with it and keeps the store the token came
from fresh: shortly before the token enters the refresh buffer it refreshes
and saves it (retrying with backoff on failure), so a client that re-reads
the store after a 401, as Claude Code does, finds a fresh token there. A
token from an environment variable with no store behind it (an enterprise
token) is never refreshed. Plugin processes run only during a refresh.

When a daemon (credhost serve) serves this chain, the token comes from it,
and the daemon keeps the store fresh; exec then only stands by, looking at
the store half way into the buffer and refreshing only if the daemon has
not (--no-daemon: work directly).

Signals: HUP, TERM, USR1 and USR2 sent to credhost are passed on to COMMAND;
INT, QUIT and WINCH too, except when credhost and COMMAND are the terminal's
foreground job: the terminal already delivered them to COMMAND itself.
credhost exits with COMMAND's exit status, or 128+N when a signal N killed
it; before COMMAND starts it exits 1 (no credential), 2 (usage or config) or
3 (--strict).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// Which signals the command should inherit as ignored (nohup,
			// a background job of a script) must be known before any
			// handler is installed, even the interrupt's below.
			fw := newForwarder()
			defer fw.stop()
			if useFD {
				if runtime.GOOS != "linux" {
					return &exitError{code: exitUsage, err: errors.New("--fd needs Linux: Claude Code reads the descriptor through /proc/self/fd")}
				}
				if envName != "" && envName != defaultExecVar {
					return &exitError{code: exitUsage, err: fmt.Errorf("--fd passes an OAuth token as Claude Code's %s; it cannot be combined with --env %s", fdExecVar, envName)}
				}
			}
			cfg, opts, logger, err := g.setup()
			if err != nil {
				return err
			}
			// The token comes from the daemon when one serves this chain,
			// else from a host built for this call alone: the command may
			// run for hours, and the plugin processes must not.
			ctx, cancel := signal.NotifyContext(cmd.Context(), os.Interrupt)
			src, err := g.openSource(cfg, opts, logger)
			if err != nil {
				cancel()
				return err
			}
			res, err := src.token(ctx)
			viaDaemon := src.viaDaemon
			src.close()
			cancel()
			if err != nil {
				return err
			}
			if res.Degraded && strict {
				return &exitError{code: exitRefreshFailed, err: fmt.Errorf("--strict: the token from %q needs a refresh that failed: %w", res.Provider, res.DegradedReason)}
			}
			name := envName
			if name == "" {
				name = tokenVar(cfg, res.Provider)
			}
			pass := passing{name: name, token: res.Credential.AccessToken}
			if useFD {
				if name == defaultExecVar {
					pass.fd = true
				} else {
					logger.Warn("--fd is for an OAuth token; this token came from $" + name + " and is passed there, as credhost received it")
				}
			}
			fresh := &freshener{
				cfg:    withoutEnvProviders(cfg),
				opts:   opts,
				buffer: cfg.Refresh.Buffer.Std(),
				logger: logger,
			}
			if viaDaemon {
				// The daemon refreshes the store ahead, as the token
				// enters the buffer. exec stands by: it looks at the
				// store half way into the buffer, when the daemon has
				// long refreshed and it finds a fresh token and does
				// nothing; only if the daemon is gone by then does it
				// refresh itself, still before the expiry.
				fresh.buffer /= 2
				logger.Debug("the daemon keeps the store fresh; exec stands by", "from", fresh.buffer.String()+" before expiry")
			}
			if fromEnv(cfg, res.Provider) && res.Credential.ExpiresAt.IsZero() {
				logger.Debug("the token came from the environment with no store behind it: nothing to keep fresh", "provider", res.Provider)
			}
			return runChild(args, pass, fw, func(ctx context.Context) { fresh.run(ctx, res) }, stdout, stderr)
		},
	}
	cmd.Flags().SetInterspersed(false) // flags after COMMAND are its own
	cmd.Flags().StringVar(&envName, "env", "", "the variable that holds the token (default: see above)")
	cmd.Flags().BoolVar(&useFD, "fd", false, "pass an OAuth token on descriptor 3 ("+fdExecVar+"), not in the environment (Linux, Claude Code)")
	cmd.Flags().BoolVar(&strict, "strict", false, "exit 3 instead of running with a token whose needed refresh failed")
	g.noDaemonFlag(cmd)
	return cmd
}

// tokenOnce gets a token from a host built for this call alone: the command
// may run for hours, and the plugin processes must not.
func tokenOnce(ctx context.Context, cfg *host.Config, opts []host.Option) (host.Result, error) {
	h, err := host.New(cfg, opts...)
	if err != nil {
		return host.Result{}, err
	}
	defer h.Close()
	return h.Token(ctx)
}

// tokenVar is the variable an env provider read the token from, or
// defaultExecVar.
func tokenVar(cfg *host.Config, provider string) string {
	for _, p := range cfg.Providers {
		if p.Name == provider && p.Plugin == "env" {
			if v, _ := env.ConfigVars(p.Config); v != "" {
				return v
			}
		}
	}
	return defaultExecVar
}

// fromEnv reports whether provider is an env provider.
func fromEnv(cfg *host.Config, provider string) bool {
	for _, p := range cfg.Providers {
		if p.Name == provider {
			return p.Plugin == "env"
		}
	}
	return false
}

// withoutEnvProviders is cfg with its env providers left out, for the
// refreshes while the command runs. The environment does not change while
// credhost runs, so an env provider would keep yielding the token it was
// started with: once its store holds the successor, that token lends
// nothing and the store would never be refreshed again. The store is what
// the command's client re-reads, so the store is what is kept fresh.
// A refresh_with naming a left-out provider loses that name, as for one
// left out by os:, so the host's config check does not refuse it.
func withoutEnvProviders(cfg *host.Config) *host.Config {
	return cfg.Without(func(p host.ProviderConfig) bool { return p.Plugin == "env" })
}

// passing says how the command gets its token.
type passing struct {
	name  string // the variable, when not fd
	token string
	fd    bool // on a pipe at descriptor 3, named by fdExecVar
}

// runChild runs argv with the token, forwards signals to it and runs keep
// beside it until it exits; keep's context ends then, and runChild waits for
// keep to return (a refresh in flight is finished and saved: abandoning it
// after the endpoint rotated the token would leave the spent refresh token
// in the store). It returns the command's exit status.
func runChild(argv []string, pass passing, fw *forwarder, keep func(context.Context), stdout, stderr io.Writer) error {
	child := exec.Command(argv[0], argv[1:]...)
	child.Stdin, child.Stdout, child.Stderr = os.Stdin, stdout, stderr
	drop := []string{pass.name + "=", fdExecVar + "="}
	for _, kv := range os.Environ() {
		if !hasAnyPrefix(kv, drop) {
			child.Env = append(child.Env, kv)
		}
	}
	var pipe *os.File
	if pass.fd {
		if len(pass.token) > maxFDToken {
			return &exitError{code: exitUsage, err: fmt.Errorf("--fd: the token is %d bytes, more than a descriptor carries (%d)", len(pass.token), maxFDToken)}
		}
		r, w, err := os.Pipe()
		if err != nil {
			return fmt.Errorf("--fd: %w", err)
		}
		// The whole token fits the pipe's buffer: write it and close the
		// writing end, so the command reads it to the end and nothing else
		// can write there.
		_, err = io.WriteString(w, pass.token)
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			r.Close()
			return fmt.Errorf("--fd: %w", err)
		}
		pipe = r
		child.ExtraFiles = []*os.File{r} // descriptor 3
		child.Env = append(child.Env, fdExecVar+"=3")
	} else {
		child.Env = append(child.Env, pass.name+"="+pass.token)
	}
	fw.listen() // from before the start: no signal may fall between
	err := child.Start()
	if pipe != nil {
		pipe.Close() // the command holds its own copy
	}
	if err != nil {
		return &exitError{code: exitUsage, err: fmt.Errorf("exec %s: %w", argv[0], err)}
	}
	fw.start(child.Process)

	ctx, stopKeep := context.WithCancel(context.Background())
	kept := make(chan struct{})
	go func() {
		defer close(kept)
		keep(ctx)
	}()
	err = child.Wait()
	stopKeep()
	<-kept
	fw.stop()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ee):
		return &exitError{code: exitStatus(ee.ProcessState), err: errSilent}
	}
	return err
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// errSilent ends credhost with a code and no message of its own: the
// command has already said what it had to.
var errSilent = errors.New("")
