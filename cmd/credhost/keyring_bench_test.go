//go:build linux

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/credhost/credhost/host/daemon"
)

// peerHelper is the peer credhost is measured against on a Secret Service:
// Docker's credential helper (Debian's golang-docker-credential-helpers),
// a C-linked program over libsecret.
const peerHelper = "docker-credential-secretservice"

// BenchmarkKeyringToken times whole processes reading one credential
// from a real gnome-keyring, each figure next to its peer and floors,
// alternated in one loop (one of each, then again) so a change of machine
// load hits them alike. Per operation, in ns:
//
//	true-ns/op     a bare process spawn (/bin/true)
//	peer-ns/op     `docker-credential-secretservice get` of an item holding
//	               the same credentials JSON (the peer)
//	library-ns/op  a minimal Go program reading credhost's item through
//	               go-keyring (testdata/keyringreader)
//	start-ns/op    `credhost --version`: credhost's process start and
//	               package initialisation alone, no config and no chain;
//	               what of the others is credhost's start and what its work
//	direct-ns/op   cold `credhost token --no-daemon`, built-ins
//	               in-process, on the default chain with the keychain in it
//	               on Linux too (the embedded default has it on macOS only,
//	               where Claude Code uses it): enterprise and oauth-env are
//	               empty, the keychain holds the token
//	process-ns/op  the same with every built-in a plugin process
//	serve-ns/op    `credhost token` answered by a running `credhost serve`
//	               on the same chain (found through $CREDHOST_SOCKET)
//	base-ns/op     with $CREDHOST_BENCH_BASE naming another credhost
//	               binary (an older build), its `credhost token` through
//	               the same daemon: a before and after from one run
//
// and the ratios direct/peer, serve/peer, process/peer, start/peer,
// direct/library, serve/start (what of a call through the daemon is more
// than the binary's start) and, with a base, base/serve.
// The default ns/op is the sum of one of each.
//
// The keyring is private: the benchmark starts its own D-Bus session
// (dbus-run-session) and gnome-keyring, unlocked, in a throwaway HOME, and
// never touches the user's bus or keyring. It skips without
// dbus-run-session, gnome-keyring-daemon, secret-tool or the peer, unless
// CREDHOST_REQUIRE_KEYRING=1 (.ci/bench), when it fails instead. Run with:
// go test -run '^$' -bench KeyringToken -count 6 ./cmd/credhost | benchstat -
func BenchmarkKeyringToken(b *testing.B) {
	skip := b.Skipf
	if os.Getenv("CREDHOST_REQUIRE_KEYRING") == "1" {
		skip = b.Fatalf
	}
	for _, tool := range []string{"dbus-run-session", "gnome-keyring-daemon", "secret-tool", peerHelper} {
		if _, err := exec.LookPath(tool); err != nil {
			skip("%s is not installed (apt-get install dbus gnome-keyring libsecret-tools golang-docker-credential-helpers; .ci/bench installs them)", tool)
		}
	}
	home := b.TempDir()
	env := privateKeyring(b, home)
	const account = "credhost-bench"
	env = append(env, "USER="+account)
	access, secret := claudeCredentialsJSON()

	// credhost's item: where Claude Code keeps its login with no config
	// directory named, written by a client we did not write.
	store := exec.Command("secret-tool", "store", "--label=Claude Code-credentials", "service", "Claude Code-credentials", "username", account)
	store.Env, store.Stdin = env, strings.NewReader(secret)
	if out, err := store.CombinedOutput(); err != nil {
		b.Fatalf("secret-tool store: %v\n%s", err, out)
	}
	// The peer's item, the same secret under its own schema.
	const serverURL = "https://credhost.bench/"
	peerItem, err := json.Marshal(map[string]string{"ServerURL": serverURL, "Username": account, "Secret": secret})
	if err != nil {
		b.Fatal(err)
	}
	store = exec.Command(peerHelper, "store")
	store.Env, store.Stdin = env, bytes.NewReader(peerItem)
	if out, err := store.CombinedOutput(); err != nil {
		b.Fatalf("%s store: %v\n%s", peerHelper, err, out)
	}

	// The default chain, the keychain on every OS, in the user's config.
	config := filepath.Join(home, ".config", "credhost", "config.yaml")
	if err := os.MkdirAll(filepath.Dir(config), 0o700); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(config, []byte(`version: 1
plugins:
  builtin: ${CREDHOST_BUILTIN:-in-process}
providers:
  - {name: enterprise, plugin: env, config: {var: ANTHROPIC_AUTH_TOKEN}}
  - {name: oauth-env, plugin: env, config: {var: CLAUDE_CODE_OAUTH_TOKEN}, refresh_with: [keychain, file]}
  - {name: keychain, plugin: keychain}
  - {name: file, plugin: file, config: {path: ~/.claude/.credentials.json, key: claudeAiOauth}}
`), 0o600); err != nil {
		b.Fatal(err)
	}

	bin := b.TempDir()
	library := filepath.Join(bin, "keyringreader")
	if out, err := goBuild(library, "./testdata/keyringreader").CombinedOutput(); err != nil {
		b.Fatalf("build keyringreader: %v\n%s", err, out)
	}
	sockets := benchSocketDir(b)
	sock := filepath.Join(sockets, "credhost.sock")
	inProcess := append(slices.Clone(env), "CREDHOST_BUILTIN=in-process")
	serve := startBenchDaemon(b, inProcess, sock, daemon.PathToken, credhostBin, "serve", "--socket", sock)

	noDaemon := daemon.SocketEnv + "=" + filepath.Join(sockets, "none.sock")
	token := access + "\n"
	peerWant := func(out string) bool {
		var got struct{ Secret string }
		return json.Unmarshal([]byte(out), &got) == nil && got.Secret == secret
	}
	isToken := func(out string) bool { return out == token }
	cases := []struct {
		name  string
		argv  []string
		env   []string
		stdin string
		want  func(stdout string) bool
	}{
		{"true", []string{"/bin/true"}, env, "", func(string) bool { return true }},
		{"peer", []string{peerHelper, "get"}, env, serverURL + "\n", peerWant},
		{"library", []string{library, "Claude Code-credentials", account}, env, "", isToken},
		{"start", []string{credhostBin, "--version"}, env, "", func(out string) bool { return strings.HasPrefix(out, "credhost") }},
		{"direct", []string{credhostBin, "token", "--no-daemon"}, append(slices.Clone(inProcess), noDaemon), "", isToken},
		{"process", []string{credhostBin, "token", "--no-daemon"}, append(slices.Clone(env), "CREDHOST_BUILTIN=process", noDaemon), "", isToken},
		{"serve", []string{credhostBin, "token"}, append(slices.Clone(inProcess), daemon.SocketEnv+"="+sock), "", isToken},
	}
	viaServe := 1
	if base := os.Getenv("CREDHOST_BENCH_BASE"); base != "" {
		cases = append(cases, cases[len(cases)-1])
		cases[len(cases)-1].name, cases[len(cases)-1].argv = "base", []string{base, "token"}
		viaServe++
	}
	run := func(i int) time.Duration {
		c := cases[i]
		cmd := exec.Command(c.argv[0], c.argv[1:]...)
		cmd.Env = c.env
		cmd.Stdin = strings.NewReader(c.stdin)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		start := time.Now()
		err := cmd.Run()
		d := time.Since(start)
		if err != nil || !c.want(stdout.String()) {
			// The outputs hold the secret: say only what went wrong.
			b.Fatalf("%s: %v, %d bytes of unexpected output; stderr:\n%s", c.name, err, stdout.Len(), stderr.String())
		}
		return d
	}
	before := servedTokens(b, serve)
	total := make([]time.Duration, len(cases))
	n := 0
	for b.Loop() {
		for i := range cases {
			total[i] += run(i)
		}
		n++
	}
	// The daemon answered every `credhost token` sent to it and none of
	// the --no-daemon ones.
	if served := servedTokens(b, serve) - before; served != float64(viaServe*n) {
		b.Fatalf("the daemon served %v GET /v1/token for %d `credhost token` through it; want exactly %d", served, viaServe*n, viaServe*n)
	}
	perOp := map[string]float64{}
	for i, c := range cases {
		perOp[c.name] = float64(total[i].Nanoseconds()) / float64(n)
		b.ReportMetric(perOp[c.name], c.name+"-ns/op")
	}
	ratios := [][2]string{{"direct", "peer"}, {"serve", "peer"}, {"process", "peer"}, {"start", "peer"}, {"direct", "library"}, {"serve", "start"}}
	if viaServe > 1 {
		ratios = append(ratios, [2]string{"base", "serve"})
	}
	for _, r := range ratios {
		b.ReportMetric(perOp[r[0]]/perOp[r[1]], r[0]+"/"+r[1])
	}
}

// privateKeyring starts a D-Bus session of its own with gnome-keyring in it,
// unlocked, its keyrings under home, as .ci/test does for the tests, and
// returns a clean environment that reaches it (HOME, XDG dirs and the bus
// address, nothing of the caller's session). The session ends with the
// benchmark: closing the shell's stdin ends dbus-run-session, which ends
// the bus, and gnome-keyring leaves with it.
func privateKeyring(b *testing.B, home string) []string {
	b.Helper()
	runtime := filepath.Join(home, "run")
	keyrings := filepath.Join(home, ".local", "share", "keyrings")
	for _, dir := range []string{runtime, keyrings} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			b.Fatal(err)
		}
	}
	env := []string{
		"HOME=" + home,
		"PATH=" + os.Getenv("PATH"),
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"XDG_DATA_HOME=" + filepath.Join(home, ".local", "share"),
		"XDG_CACHE_HOME=" + filepath.Join(home, ".cache"),
		"XDG_RUNTIME_DIR=" + runtime,
	}
	// The password only unlocks this throwaway keyring; it must not be empty.
	cmd := exec.Command("dbus-run-session", "--", "sh", "-c",
		`printf %s credhost-bench | gnome-keyring-daemon --unlock --components=secrets >/dev/null && echo "$DBUS_SESSION_BUS_ADDRESS" && exec cat >/dev/null`)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	bus := strings.TrimSpace(line)
	if err != nil || bus == "" {
		b.Fatalf("private D-Bus session with gnome-keyring: %v; stderr:\n%s", err, stderr.String())
	}
	go io.Copy(io.Discard, stdout)
	return append(env, "DBUS_SESSION_BUS_ADDRESS="+bus)
}

// claudeCredentialsJSON is a credential the size and shape of the one
// Claude Code keeps for a subscription login (about 470 bytes), and its
// access token.
func claudeCredentialsJSON() (access, secret string) {
	tok := func(prefix, fill string) string {
		return prefix + strings.Repeat(fill, 93) + "AA" // 108 characters, as issued
	}
	access, refresh := tok("sk-ant-oat01-", "a"), tok("sk-ant-ort01-", "r")
	secret = fmt.Sprintf(`{"claudeAiOauth":{"accessToken":%q,"refreshToken":%q,"expiresAt":%d,"scopes":["user:inference","user:profile","user:sessions:claude_code"],"subscriptionType":"max","rateLimitTier":"default_claude_max_20x"}}`,
		access, refresh, time.Now().Add(8*time.Hour).UnixMilli())
	return access, secret
}
