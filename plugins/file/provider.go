package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/credhost/credhost/sdk"
	"github.com/credhost/credhost/sdk/credjson"
	"github.com/credhost/credhost/sdk/oauth"
)

// maxFileSize caps what Read takes in: a real credentials file is well under
// a KiB; anything over a MiB is not one, and reading it whole would let a
// runaway file exhaust memory.
const maxFileSize = 1 << 20

// Provider is the credentials-file store.
type Provider struct {
	lookupEnv   func(string) (string, bool)
	userHomeDir func() (string, error)

	login string // the hint for a file with no credential

	mu     sync.Mutex // serialises Save; guards the fields below
	path   string
	key    string
	prefix string
	oauth  *oauth.Client
}

var _ sdk.Provider = (*Provider)(nil)

// Option configures a Provider at construction.
type Option func(*Provider)

// WithLookupEnv replaces os.LookupEnv (for $CLAUDE_CONFIG_DIR).
func WithLookupEnv(f func(string) (string, bool)) Option {
	return func(p *Provider) { p.lookupEnv = f }
}

// WithHomeDir replaces os.UserHomeDir (for ~).
func WithHomeDir(f func() (string, error)) Option {
	return func(p *Provider) { p.userHomeDir = f }
}

// WithLoginHint sets what a user is told when the file holds no
// credential, one line per thing to try: how to log in with the client
// that writes the file (credhost names Claude Code's /login). The default
// is DefaultLoginHint.
func WithLoginHint(hint string) Option {
	return func(p *Provider) { p.login = hint }
}

// DefaultLoginHint is the hint for a file with no credential when the
// program names no client to log in with.
const DefaultLoginHint = "log in again so the credentials file holds a token"

// New returns an unconfigured file provider.
func New(opts ...Option) *Provider {
	p := &Provider{lookupEnv: os.LookupEnv, userHomeDir: os.UserHomeDir, login: DefaultLoginHint}
	for _, o := range opts {
		o(p)
	}
	return p
}

type config struct {
	Path        string `json:"path"`
	Key         string `json:"key"`
	TokenPrefix string `json:"token_prefix"`
}

// Info reports Save always, Refresh when a token URL is configured, and the
// locks the host holds around a refresh (see the package doc).
func (p *Provider) Info(context.Context) (sdk.Info, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	info := sdk.Info{Name: "file", Version: "1", CanSave: true, CanRefresh: p.oauth != nil}
	if p.path != "" {
		target, err := resolve(p.path)
		if err != nil {
			target = p.path
		}
		info.Locks = locks(p.path, target)
	}
	return info, nil
}

// claudeCredentials is the name Claude Code gives its credentials file in
// its config directory.
const claudeCredentials = ".credentials.json"

// Claude Code's stale times for its locks (proper-lockfile's stale option).
const (
	claudeRefreshStale = 10 * time.Second
	claudeWriteStale   = 15 * time.Second
)

// locks are the store's locks in the order the host takes them: credhost's
// own flock beside the file the path resolves to; then, for Claude Code's
// credentials file, Claude Code's own, in the order it takes them (its
// refresh lock, then the legacy one beside its config directory, both held
// over re-read, refresh and save; its write lock around the save only).
// Claude Code's config directory is the directory the path names, as it
// names it; only the legacy lock resolves it (realpath).
func locks(path, resolved string) []sdk.Lock {
	out := []sdk.Lock{{Kind: sdk.LockFlock, Path: resolved + ".lock", Scope: sdk.LockScopeRefresh}}
	if filepath.Base(path) != claudeCredentials {
		return out
	}
	dir := filepath.Dir(path)
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		real = dir // as Claude Code: realpath(dir), else dir itself
	}
	return append(out,
		sdk.Lock{Kind: sdk.LockDir, Path: filepath.Join(dir, ".oauth_refresh.lock"), Stale: claudeRefreshStale, Scope: sdk.LockScopeRefresh},
		sdk.Lock{Kind: sdk.LockDir, Path: real + ".lock", Stale: claudeRefreshStale, Scope: sdk.LockScopeRefresh},
		// Claude Code locks the name .storage-write without a lockfilePath,
		// so proper-lockfile's directory is that name plus ".lock".
		sdk.Lock{Kind: sdk.LockDir, Path: filepath.Join(dir, ".storage-write.lock"), Stale: claudeWriteStale, Scope: sdk.LockScopeSave},
	)
}

// Configure resolves the path; it does not touch the file.
func (p *Provider) Configure(_ context.Context, req sdk.ConfigureRequest) error {
	var c config
	if err := req.DecodeConfig(&c); err != nil {
		return err
	}
	path, err := p.resolvePath(c.Path)
	if err != nil {
		return sdk.InvalidConfig("provider %q: key \"path\": %v", req.Name, err)
	}
	if c.Key == "" {
		c.Key = "claudeAiOauth"
	}
	var client *oauth.Client
	if req.OAuth.TokenURL != "" {
		if client, err = oauth.New(req.OAuth); err != nil {
			return err
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.path, p.key, p.prefix, p.oauth = path, c.Key, c.TokenPrefix, client
	return nil
}

// resolvePath applies the default and expands a leading ~.
func (p *Provider) resolvePath(path string) (string, error) {
	if path == "" {
		if dir, ok := p.lookupEnv("CLAUDE_CONFIG_DIR"); ok && dir != "" {
			path = filepath.Join(dir, ".credentials.json")
		} else {
			path = filepath.Join("~", ".claude", ".credentials.json")
		}
	}
	if path == "~" || strings.HasPrefix(path, "~/") || (filepath.Separator == '\\' && strings.HasPrefix(path, `~\`)) {
		home, err := p.userHomeDir()
		if err != nil || home == "" {
			return "", fmt.Errorf("cannot expand ~ in %q: no home directory", path)
		}
		path = filepath.Join(home, path[1:])
	}
	if !filepath.IsAbs(path) {
		abs, err := filepath.Abs(path)
		if err != nil {
			return "", err
		}
		path = abs
	}
	return filepath.Clean(path), nil
}

func (p *Provider) settings() (path, key, prefix string, client *oauth.Client, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.path == "" {
		return "", "", "", nil, errors.New("file provider used before Configure")
	}
	return p.path, p.key, p.prefix, p.oauth, nil
}

// Read returns the credential in the file, or an error matching
// sdk.ErrNotFound with the login hint. It reads the file the path resolves
// to, the one Save replaces.
func (p *Provider) Read(context.Context) (sdk.Credential, error) {
	path, key, prefix, _, err := p.settings()
	if err != nil {
		return sdk.Credential{}, err
	}
	target, err := resolve(path)
	if errors.Is(err, fs.ErrNotExist) {
		return sdk.Credential{}, sdk.NotFound("%v", err).WithHint(p.login)
	}
	if err != nil {
		return sdk.Credential{}, err
	}
	cred, err := load(target, path, key, p.login)
	if err != nil {
		return sdk.Credential{}, err
	}
	if prefix != "" && !strings.HasPrefix(cred.AccessToken, prefix) {
		return sdk.Credential{}, fmt.Errorf("%s: %s.accessToken does not start with %q", path, key, prefix)
	}
	return cred, nil
}

// load reads and parses target, the resolved path. A missing file, key or
// token is sdk.ErrNotFound with login as its hint; everything else is a
// fault naming the path as configured.
func load(target, path, key, login string) (sdk.Credential, error) {
	data, _, err := readCapped(target)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return sdk.Credential{}, sdk.NotFound("no credentials file at %s", path).WithHint(login)
		}
		return sdk.Credential{}, err
	}
	_, cred, err := credjson.Parse(data, key)
	if errors.Is(err, credjson.ErrNoCredential) {
		return sdk.Credential{}, sdk.NotFound("%s: %w", path, err).WithHint(login)
	}
	if err != nil {
		return sdk.Credential{}, fmt.Errorf("%s: %w", path, err)
	}
	return cred, nil
}

// readCapped reads at most maxFileSize bytes of the regular file at path,
// which resolve has already resolved, and returns its FileInfo from the
// open descriptor. It opens first and checks what it opened: checking the
// path and then opening it by name would let a named pipe swapped in
// between block for good. The open never blocks (O_NONBLOCK: a named pipe
// opens at once and is then refused) and does not follow a symlink put
// in place of the resolved file (O_NOFOLLOW, where the system has it).
func readCapped(path string) ([]byte, fs.FileInfo, error) {
	f, err := os.OpenFile(path, openReadFlags, 0)
	if err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, nil, err
		case isLoop(err):
			return nil, nil, fmt.Errorf("%s: became a symbolic link while being read; try again", path)
		}
		return nil, nil, fmt.Errorf("%s: cannot open: %w", path, unwrapPath(err))
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, unwrapPath(err))
	}
	if err := checkRegular(path, st); err != nil {
		return nil, nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: cannot read: %w", path, unwrapPath(err))
	}
	if len(data) > maxFileSize {
		return nil, nil, fmt.Errorf("%s: larger than %d bytes; not a credentials file", path, maxFileSize)
	}
	return data, st, nil
}

// checkRegular refuses anything but a regular file, saying what it is.
func checkRegular(path string, st fs.FileInfo) error {
	m := st.Mode()
	if m.IsRegular() {
		return nil
	}
	what := "a special file"
	switch {
	case m.IsDir():
		what = "a directory"
	case m&fs.ModeNamedPipe != 0:
		what = "a named pipe"
	case m&fs.ModeSocket != 0:
		what = "a socket"
	case m&fs.ModeDevice != 0:
		what = "a device"
	}
	return fmt.Errorf("%s: not a regular file (%s)", path, what)
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Save writes cred into the file, keeping every other key; see the package
// documentation for how.
func (p *Provider) Save(_ context.Context, cred sdk.Credential) error {
	path, key, _, _, err := p.settings()
	if err != nil {
		return err
	}
	if cred.AccessToken == "" {
		return fmt.Errorf("%s: refusing to save a credential with no access token", path)
	}
	p.mu.Lock()
	defer p.mu.Unlock()

	// The file Read reads: never a new file beside it.
	target, err := resolve(path)
	if err != nil {
		return err
	}
	mode := os.FileMode(0o600)
	var old fs.FileInfo
	data, st, err := readCapped(target)
	switch {
	case err == nil:
		// Never widen: 0644 becomes 0600, 0400 stays 0400.
		mode = st.Mode().Perm() & 0o600
		old = st
	case errors.Is(err, fs.ErrNotExist):
		data = nil // no file yet
	default:
		return fmt.Errorf("save: %w", err)
	}
	out, err := credjson.Merge(data, key, cred)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := writeAtomic(target, out, mode, old); err != nil {
		return fmt.Errorf("%s: save: %w", path, err)
	}
	return nil
}

// Refresh runs the refresh_token grant against the configured token URL.
func (p *Provider) Refresh(ctx context.Context, cred sdk.Credential) (sdk.Credential, error) {
	_, _, _, client, err := p.settings()
	if err != nil {
		return sdk.Credential{}, err
	}
	if client == nil {
		return sdk.Credential{}, sdk.Unsupported("no oauth token_url configured")
	}
	return client.Refresh(ctx, cred)
}

// maxLinks is the kernel's own limit on symlinks followed in one lookup.
const maxLinks = 40

// resolve returns the file the kernel reaches when it opens path: every
// symlink on the way, the last one included, is followed, a relative link
// target is taken from the (resolved) directory holding the link, and ".."
// steps back from a resolved directory, not from the text. Unlike
// filepath.EvalSymlinks it does not need the file to exist: from the first
// missing component on (a dangling link's target, a file not yet written)
// the rest of the path is taken as it reads; a ".." there is an error
// matching fs.ErrNotExist, as the kernel cannot step out of a directory
// that does not exist. Read and Save both use it, so
// a save replaces the file a read reads and leaves every link a link.
func resolve(path string) (string, error) {
	vol := filepath.VolumeName(path)
	resolved := vol + string(filepath.Separator)
	todo := splitPath(path[len(vol):])
	links := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case ".":
			continue
		case "..":
			resolved = filepath.Dir(resolved)
			continue
		}
		next := filepath.Join(resolved, c)
		st, err := os.Lstat(next)
		if err != nil {
			// Nothing exists from here on, so nothing is a link: the rest
			// reads as it is written, and Save creates exactly that. But
			// the kernel cannot step back out of a missing directory, so
			// a ".." after it opens nothing, and nothing may be created.
			if slices.Contains(todo, "..") {
				return "", fmt.Errorf("%s: %w: %s is missing and the path steps out of it with ..", path, fs.ErrNotExist, next)
			}
			return filepath.Join(append([]string{next}, todo...)...), nil
		}
		if st.Mode()&fs.ModeSymlink == 0 {
			resolved = next
			continue
		}
		if links++; links > maxLinks {
			return "", fmt.Errorf("%s: more than %d symbolic links on the way; is there a loop?", path, maxLinks)
		}
		target, err := os.Readlink(next)
		if err != nil {
			return "", fmt.Errorf("%s: cannot read the symbolic link %s: %w", path, next, unwrapPath(err))
		}
		if filepath.IsAbs(target) || filepath.VolumeName(target) != "" {
			v := filepath.VolumeName(target)
			resolved = v + string(filepath.Separator)
			target = target[len(v):]
		}
		todo = append(splitPath(target), todo...)
	}
	return resolved, nil
}

// splitPath splits p at its separators, dropping empty components.
func splitPath(p string) []string {
	return strings.FieldsFunc(p, func(r rune) bool { return r < 128 && os.IsPathSeparator(uint8(r)) })
}

// writeAtomic replaces path with data: a temporary file in the same
// directory, fsync, chmod (and, when old belongs to another user or group,
// chown to them), rename, fsync of the directory. On any failure the
// temporary file is removed and path is untouched.
func writeAtomic(path string, data []byte, mode os.FileMode, old fs.FileInfo) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(mode); err != nil {
		return err
	}
	if old != nil {
		// Root (or another user) refreshing someone's file must leave it
		// theirs: a file that became root's would lock its owner out.
		if err := keepOwner(tmp, old); err != nil {
			return err
		}
	}
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	removeStaleTemps(dir, filepath.Base(path))
	return syncDir(dir)
}

// staleTempAge is how old a leftover temporary file must be before Save
// removes it: far longer than any write takes, so a temporary file another
// process is writing right now is never touched.
const staleTempAge = 10 * time.Minute

// removeStaleTemps deletes temporary files a killed writer left behind.
// Failures are ignored: they are litter, not data.
func removeStaleTemps(dir, base string) {
	matches, _ := filepath.Glob(filepath.Join(dir, "."+base+"-*.tmp"))
	for _, m := range matches {
		if st, err := os.Lstat(m); err == nil && st.Mode().IsRegular() && time.Since(st.ModTime()) > staleTempAge {
			os.Remove(m)
		}
	}
}

var _ sdk.Checker = (*Provider)(nil)

// Check reports, for `credhost doctor`, whether the file exists and parses
// and whether it or its directory is open to other users.
func (p *Provider) Check(ctx context.Context) ([]sdk.Finding, error) {
	path, _, _, _, err := p.settings()
	if err != nil {
		return nil, err
	}
	target, err := resolve(path)
	if err != nil {
		return []sdk.Finding{{Severity: sdk.SeverityError, Message: err.Error(), Fix: "fix the symbolic links on the way to the credentials file"}}, nil
	}
	var out []sdk.Finding
	if _, err := p.Read(ctx); err != nil {
		if errors.Is(err, sdk.ErrNotFound) {
			out = append(out, sdk.Finding{Severity: sdk.SeverityWarning, Message: err.Error(), Fix: p.login})
		} else {
			out = append(out, sdk.Finding{Severity: sdk.SeverityError, Message: err.Error(),
				Fix: "fix or remove the file (credhost will not overwrite it), then log in again to rewrite it"})
		}
	} else {
		out = append(out, sdk.Finding{Severity: sdk.SeverityOK, Message: target + " holds a credential"})
	}
	if runtime.GOOS == "windows" {
		return out, nil // modes do not describe Windows ACLs
	}
	if st, err := os.Stat(target); err == nil && st.Mode().Perm()&0o077 != 0 {
		out = append(out, sdk.Finding{Severity: sdk.SeverityError, Message: fmt.Sprintf("%s is mode %04o: other users can read it", target, st.Mode().Perm()),
			Fix: "chmod 600 " + target})
	}
	dir := filepath.Dir(target)
	if st, err := os.Stat(dir); err == nil && st.Mode().Perm()&0o077 != 0 {
		out = append(out, sdk.Finding{Severity: sdk.SeverityWarning, Message: fmt.Sprintf("%s is mode %04o: other users can list it", dir, st.Mode().Perm()),
			Fix: "chmod 700 " + dir})
	}
	return out, nil
}
