package conformance

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/credhost/credhost/sdk"
)

// Outcome is how a check ended.
type Outcome string

// The outcomes, as `credhost plugin check` prints them.
const (
	Pass Outcome = "ok"
	Fail Outcome = "FAIL"
	Skip Outcome = "skip"
)

// Result is one check's outcome and what it said.
type Result struct {
	// Name and What are the check's (Check.Name, Check.What).
	Name, What string
	// Outcome is Pass, Fail or Skip.
	Outcome Outcome
	// Detail is what the check reported, on one line ("" for a pass).
	Detail string
}

// String is the result's line: outcome, name, and what failed or why it
// was skipped (or, for a pass, what it proves).
func (r Result) String() string {
	detail := r.Detail
	if detail == "" {
		detail = r.What
	}
	return fmt.Sprintf("%-4s %-16s %s", r.Outcome, r.Name, detail)
}

// RunChecks runs each check against s, one after the other, each ending
// before the next starts, and returns their results in order.
func RunChecks(s Suite, checks []Check) []Result {
	out := make([]Result, 0, len(checks))
	for _, c := range checks {
		out = append(out, runCheck(c.Name, c.What, func(t T) { c.Run(t, s) }))
	}
	return out
}

// runCheck runs f in a goroutine of its own (Fatalf and Skipf end it with
// runtime.Goexit, as in a Go test), then its cleanups, last first.
func runCheck(name, what string, f func(T)) Result {
	ct := &checkT{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(ct)
	}()
	<-done
	ct.mu.Lock()
	cleanups := ct.cleanups
	ct.cleanups = nil
	ct.mu.Unlock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		done := make(chan struct{})
		go func() {
			defer close(done)
			cleanups[i]()
		}()
		<-done
	}
	r := Result{Name: name, What: what, Outcome: Pass}
	ct.mu.Lock()
	defer ct.mu.Unlock()
	switch {
	case ct.failed:
		r.Outcome = Fail
	case ct.skipped:
		r.Outcome = Skip
	}
	r.Detail = strings.Join(ct.msgs, "; ")
	return r
}

// checkT is the T of a check run outside the testing package.
type checkT struct {
	mu       sync.Mutex
	msgs     []string
	failed   bool
	skipped  bool
	cleanups []func()
}

func (c *checkT) Helper() {}

func (c *checkT) Errorf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failed = true
	c.msgs = append(c.msgs, oneLine(fmt.Sprintf(format, args...)))
}

func (c *checkT) Fatalf(format string, args ...any) {
	c.Errorf(format, args...)
	runtime.Goexit()
}

func (c *checkT) Skipf(format string, args ...any) {
	c.mu.Lock()
	c.skipped = true
	c.msgs = append(c.msgs, oneLine(fmt.Sprintf(format, args...)))
	c.mu.Unlock()
	runtime.Goexit()
}

func (c *checkT) Cleanup(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cleanups = append(c.cleanups, f)
}

// TempDir returns a fresh directory, removed when the check ends.
func (c *checkT) TempDir() string {
	dir, err := os.MkdirTemp("", "credhost-check-")
	if err != nil {
		c.Fatalf("temporary directory: %v", err)
	}
	c.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// DirPlaceholder, in the config RunCommand is given, stands for a fresh
// empty directory of each check's own, so every check starts from an empty
// store: {"path": "{{dir}}/credentials.json"}.
const DirPlaceholder = "{{dir}}"

// Command is a plugin executable and the config block its checks
// configure it with.
type Command struct {
	// Argv is the program and its arguments.
	Argv []string
	// Env is the plugin's environment; nil is this process's.
	Env []string
	// Config is the provider's config block, a JSON object; DirPlaceholder
	// in it is replaced by a fresh directory for each provider. Empty: {}.
	Config string
	// Options say how the plugin runs.
	Options Options
}

// Factory returns a Factory that starts the command as a new plugin
// process for each provider, configures it (Config, with its own
// directory), and fills its store, when asked, through Save. Each process
// is closed when the check ends.
func (c Command) Factory() Factory {
	return func(t T, s Setup) sdk.Provider {
		t.Helper()
		p := c.start(t)
		config := c.Config
		if config == "" {
			config = "{}"
		}
		if strings.Contains(config, DirPlaceholder) {
			dir, _ := json.Marshal(t.TempDir())
			config = strings.ReplaceAll(config, DirPlaceholder, strings.Trim(string(dir), `"`))
		}
		s.Configure(t, p, "check", config)
		if s.Seed == nil || s.probe != nil {
			return p
		}
		suite := Suite{CallTimeout: c.Options.CallTimeout}
		if !suite.info(t, p).CanSave {
			if s.seedIfCan {
				return p
			}
			t.Skipf("the check fills the store through Save, and Info says the plugin cannot save")
		}
		if err := suite.save(p, *s.Seed); err != nil {
			t.Fatalf("fill the store through Save: %v", err)
		}
		return p
	}
}

// start starts the plugin, closed when the check ends; the check fails
// when it does not start. How it exits is the exit check's alone, so a
// plugin that does not exit when asked fails one check, not all.
func (c Command) start(t T) sdk.Provider {
	t.Helper()
	proc, err := Start(c.cmd(), c.Options)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() { _ = proc.Close() })
	return proc.Provider
}

func (c Command) cmd() *exec.Cmd {
	cmd := exec.Command(c.Argv[0], c.Argv[1:]...)
	cmd.Env = c.Env
	return cmd
}

// RunCommand runs the conformance suite against a plugin executable, as
// `credhost plugin check` does: first its start (handshake and mutual
// TLS); then each of Checks, each with plugin processes of its own; last,
// that it exits promptly when asked. It writes one line per check to w
// and reports whether every check passed (a skip is no failure).
func RunCommand(w io.Writer, c Command) bool {
	ok := true
	report := func(r Result) {
		if r.Outcome == Fail {
			ok = false
		}
		fmt.Fprintln(w, r)
	}
	var handshake string
	start := runCheck("handshake", "the plugin starts: cookie, handshake line, mutual TLS, first call", func(t T) {
		begin := time.Now()
		proc, err := Start(c.cmd(), c.Options)
		if err != nil {
			t.Fatalf("%v", err)
		}
		f := strings.Split(proc.Handshake, "|")
		handshake = fmt.Sprintf("started in %s: protocol %s, grpc over %s, mutual TLS", time.Since(begin).Round(time.Millisecond), f[1], f[2])
		if err := proc.Close(); err != nil {
			t.Errorf("%v", err)
		}
	})
	if start.Outcome == Pass {
		start.Detail = handshake
	}
	report(start)
	checks := append(Checks(), Check{"exit", "the plugin exits promptly, status 0, when asked to stop", func(t T, s Suite) {
		proc, err := Start(c.cmd(), c.Options)
		if err != nil {
			t.Fatalf("%v", err)
		}
		if err := proc.Close(); err != nil {
			t.Fatalf("%v", err)
		}
	}})
	if start.Outcome != Pass {
		for _, ch := range checks {
			report(Result{Name: ch.Name, What: ch.What, Outcome: Skip, Detail: "the plugin did not start"})
		}
		return false
	}
	for _, r := range RunChecks(Suite{New: c.Factory(), CallTimeout: c.Options.CallTimeout}, checks) {
		report(r)
	}
	return ok
}
