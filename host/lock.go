package host

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/credhost/credhost/sdk"
)

// The host's cross-process locks. A store declares what it needs in
// Info.Locks; the host takes them around its refresh:
//
//	refresh-scope locks, in the order listed   (before the re-read)
//	  re-read → token request
//	  save-scope locks, in the order listed    (right before the save)
//	    save
//	  save-scope locks released, in reverse
//	refresh-scope locks released, in reverse
//
// Each kind is taken by a lockFunc: a flock, a proper-lockfile directory,
// or a lock the provider holds itself (sdk.Locker: a fleet's lease in a
// distributed store, taken through the provider and, across the plugin
// boundary, held for as long as its Lock stream stays open). The host
// imports no store's client for it.

// lockPoll is how often a waiting process retries a held lock: short next
// to a token request (hundreds of ms), long enough not to spin.
const lockPoll = 10 * time.Millisecond

// lockFunc takes one lock, waiting until ctx ends, and returns the hold.
// j, when set, is the journal of the flock taken before it (see journal);
// p is the store's provider, which takes the locks it holds itself.
type lockFunc func(ctx context.Context, l sdk.Lock, j *journal, p sdk.Provider, logger hclog.Logger) (heldLock, error)

// heldLock is one lock held.
type heldLock interface {
	// release lets the lock go (once; later calls do nothing).
	release()
	// lost says, naming the lock, that another process has taken it
	// over; nil while this process still holds it.
	lost() error
}

// flockHold is a held flock: the kernel keeps it until released or the
// process dies, so it is never lost. j is the journal its file holds.
type flockHold struct {
	rel func()
	j   *journal
}

func (f flockHold) release()    { f.rel() }
func (f flockHold) lost() error { return nil }

// lockSet is the locks one takeLocks took.
type lockSet struct {
	held []heldLock
	// journal is the journal in use after the last lock, for the next set.
	journal *journal
}

// release lets the locks go in reverse order.
func (s *lockSet) release() {
	for i := len(s.held) - 1; i >= 0; i-- {
		s.held[i].release()
	}
}

// lost returns the first lock of the set another process has taken over
// (it judged it stale: this process was stopped, or the machine slept),
// or the provider reports lost (a lease expired), or nil when every lock
// is still this process's.
func (s *lockSet) lost() error {
	for _, h := range s.held {
		if err := h.lost(); err != nil {
			return err
		}
	}
	return nil
}

// lostProvider is lost for the provider locks of the set alone.
func (s *lockSet) lostProvider() error {
	for _, h := range s.held {
		if _, ok := h.(*providerHold); ok {
			if err := h.lost(); err != nil {
				return err
			}
		}
	}
	return nil
}

// lockers are the kinds this host can take.
var lockers = map[sdk.LockKind]lockFunc{
	sdk.LockFlock:    takeFlock,
	sdk.LockDir:      takeDir,
	sdk.LockProvider: takeProviderLock,
}

// storeLocks returns the locks info declares, the deprecated LockPath
// standing for one flock of refresh scope. It fails for a lock the host
// cannot take: refreshing without it would be the race the lock exists
// to stop.
func storeLocks(info sdk.Info) ([]sdk.Lock, error) {
	locks := info.Locks
	if len(locks) == 0 && info.LockPath != "" {
		locks = []sdk.Lock{{Kind: sdk.LockFlock, Path: info.LockPath, Scope: sdk.LockScopeRefresh}}
	}
	for _, l := range locks {
		switch {
		case l.Kind == sdk.LockProvider && l.Path == "":
			return nil, errors.New("the store declares a provider lock with no name; not refreshing without it")
		case l.Kind == sdk.LockProvider:
			// A name the provider understands, not a file.
		case lockers[l.Kind] == nil:
			return nil, fmt.Errorf("the store declares a lock of kind %q at %s, which this credhost does not know; not refreshing without it", l.Kind, l.Path)
		case !filepath.IsAbs(l.Path):
			return nil, fmt.Errorf("the store declares a %s whose path is not absolute; not refreshing without it", l)
		case l.Scope != "" && l.Scope != sdk.LockScopeRefresh && l.Scope != sdk.LockScopeSave:
			return nil, fmt.Errorf("the store declares a %s of scope %q, which this credhost does not know; not refreshing without it", l, l.Scope)
		}
	}
	return locks, nil
}

// inScope returns the locks of scope s, in their declared order.
func inScope(locks []sdk.Lock, s sdk.LockScope) []sdk.Lock {
	var out []sdk.Lock
	for _, l := range locks {
		scope := l.Scope
		if scope == "" {
			scope = sdk.LockScopeRefresh
		}
		if scope == s {
			out = append(out, l)
		}
	}
	return out
}

// takeLocks takes locks in order, each waiting until ctx ends, and returns
// them as a set, released in reverse order. On failure the locks already
// taken are released. j is the journal to use for the first dir locks
// when no flock precedes them in this set (the save-scope locks use the
// refresh-scope flock's journal); the set carries the journal in use after
// the last lock, for the next set.
func takeLocks(ctx context.Context, locks []sdk.Lock, j *journal, p sdk.Provider, logger hclog.Logger) (*lockSet, error) {
	set := &lockSet{}
	for _, l := range locks {
		h, err := lockers[l.Kind](ctx, l, j, p, logger)
		if err != nil {
			set.release()
			return nil, err
		}
		if f, ok := h.(flockHold); ok && j == nil {
			j = f.j
		}
		set.held = append(set.held, h)
	}
	set.journal = j
	return set, nil
}

// waitMessage says that a lock is still held after waiting for it.
func waitMessage(l sdk.Lock, waited time.Duration) error {
	hint := "if nothing is refreshing, this is a bug: the lock is released when its holder exits"
	if l.Kind == sdk.LockDir {
		hint = fmt.Sprintf("a lock left by a process that died is taken over once it is %s old", stale(l))
	}
	return fmt.Errorf("another process has held the %s for %s; giving up (%s)", l, waited.Round(time.Millisecond), hint)
}

func takeFlock(ctx context.Context, l sdk.Lock, _ *journal, _ sdk.Provider, _ hclog.Logger) (heldLock, error) {
	release, j, err := lockFlockFile(ctx, l.Path)
	if err != nil {
		return nil, err
	}
	return flockHold{release, j}, nil
}

// lockFlockFile takes the flock on path. The file is created 0600 beside
// the store and never deleted: deleting it would let two processes lock two
// different files of the same name. It is opened without following a link
// and without blocking, and must be a regular file owned by this user with
// one link. Its content is the journal of the dir locks its holder holds.
func lockFlockFile(ctx context.Context, path string) (func(), *journal, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, nil, fmt.Errorf("lock %s: %w", path, err)
	}
	f, err := openSafe(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, err
	}
	start := time.Now()
	for {
		ok, err := tryLockFile(f)
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if ok {
			break
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, nil, waitMessage(sdk.Lock{Kind: sdk.LockFlock, Path: path}, time.Since(start))
		case <-time.After(lockPoll):
		}
	}
	j := &journal{f: f, held: map[string]dirStamp{}}
	j.load()
	return func() {
		_ = unlockFile(f)
		f.Close()
	}, j, nil
}

// openSafe opens path for a lock or a record beside the store: never
// through a symlink (O_NOFOLLOW), never blocking on a named pipe
// (O_NONBLOCK), and accepted only if it is a regular file owned by this
// user with a single link (a hard link to another file would let us write
// that file). Anything else is an error naming the path.
func openSafe(path string, flag int, perm fs.FileMode) (*os.File, error) {
	f, err := openNoFollow(path, flag, perm)
	if err != nil {
		if isLinkError(err) {
			return nil, fmt.Errorf("%s is a symbolic link; refusing to use it (remove it)", path)
		}
		return nil, err
	}
	st, err := f.Stat()
	if err == nil {
		err = checkOwned(path, st, false)
	}
	if err == nil && flag&os.O_CREATE != 0 {
		err = giveToDirOwner(f, path, st)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// giveToDirOwner hands a file root just created beside a user's store to
// the owner of its directory: otherwise that user's own credhost (and
// Claude Code) would meet a lock file it may not use, and every later
// refresh of theirs would fail.
func giveToDirOwner(f *os.File, path string, st fs.FileInfo) error {
	if os.Geteuid() != 0 {
		return nil
	}
	if uid, ok := fileOwner(st); !ok || uid != 0 {
		return nil
	}
	dst, err := os.Lstat(filepath.Dir(path))
	if err != nil {
		return nil
	}
	uid, gid, ok := fileOwnerGroup(dst)
	if !ok || uid == 0 {
		return nil
	}
	if err := f.Chown(uid, gid); err != nil {
		return fmt.Errorf("%s: give it to the directory's owner (uid %d): %w", path, uid, err)
	}
	return nil
}

// checkOwned accepts a regular file (dir false) or a directory (dir true)
// owned by this user (for root, also by the owner of its directory), with
// one link for a file; otherwise it returns an error naming path.
func checkOwned(path string, st fs.FileInfo, dir bool) error {
	want := "a regular file"
	if dir {
		want = "a directory"
	}
	switch {
	case st.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("%s is a symbolic link, not %s; refusing to use it (remove it)", path, want)
	case dir && !st.IsDir(), !dir && !st.Mode().IsRegular():
		return fmt.Errorf("%s is not %s (%s); refusing to use it (remove it)", path, want, st.Mode().Type())
	}
	if uid, ok := fileOwner(st); ok && uid != os.Geteuid() && !rootForOwner(path, uid) {
		return fmt.Errorf("%s belongs to uid %d, not to this user (uid %d); refusing to use it (remove it)", path, uid, os.Geteuid())
	}
	if n, ok := fileLinks(st); ok && !dir && n != 1 {
		return fmt.Errorf("%s has %d hard links; refusing to use it (remove it)", path, n)
	}
	return nil
}

// rootForOwner reports that this process is root and uid owns the
// directory holding path: root refreshing a user's store shares that
// user's locks (the user's own credhost and Claude Code take them too).
func rootForOwner(path string, uid int) bool {
	if os.Geteuid() != 0 {
		return false
	}
	st, err := os.Lstat(filepath.Dir(path))
	if err != nil {
		return false
	}
	owner, ok := fileOwner(st)
	return ok && owner == uid
}

// stale is l's stale time, proper-lockfile's default when unset, and never
// below its minimum of 2 s.
func stale(l sdk.Lock) time.Duration {
	d := l.Stale
	if d == 0 {
		d = sdk.DefaultLockStale
	}
	return max(d, 2*time.Second)
}

// takeDirLock takes a directory lock as proper-lockfile 4.1.2 does: mkdir
// (atomic; EEXIST means held); a lock whose mtime is older than the stale
// time is removed (rmdir) and taken again; while held, a heartbeat sets
// the mtime to now every stale/2 (at least 1 s), after checking that the
// mtime is still the one it set (otherwise another process took the lock
// over: the heartbeat stops and the release leaves the directory alone);
// release is rmdir.
//
// With j set (a flock taken before it), a lock the journal says a credhost
// holder left when it died (same directory, same mtime and ctime) is taken
// over at once rather than after the stale time.
func takeDirLock(ctx context.Context, l sdk.Lock, j *journal, logger hclog.Logger) (*dirHold, error) {
	path, staleAfter := l.Path, stale(l)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	start := time.Now()
	checkStale := true
	for {
		err := os.Mkdir(path, 0o700)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		st, err := os.Lstat(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue // released meanwhile: take it
		case err != nil:
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if err := checkOwned(path, st, true); err != nil {
			return nil, err
		}
		if j != nil && j.left(path, st) {
			logger.Info("taking over a lock a killed credhost left", "lock", path)
			if err := removeDir(path); err != nil {
				return nil, fmt.Errorf("lock %s: remove the lock a killed credhost left: %w", path, err)
			}
			continue
		}
		if checkStale && st.ModTime().Before(time.Now().Add(-staleAfter)) {
			logger.Info("taking over a stale lock", "lock", path, "mtime", st.ModTime().UTC().Format(time.RFC3339))
			if err := removeDir(path); err != nil {
				return nil, fmt.Errorf("lock %s: remove the stale lock: %w", path, err)
			}
			checkStale = false // as proper-lockfile: retake once without the stale check
			continue
		}
		checkStale = true
		select {
		case <-ctx.Done():
			return nil, waitMessage(l, time.Since(start))
		case <-time.After(lockPoll):
		}
	}
	st, err := os.Lstat(path)
	if err == nil {
		err = checkOwned(path, st, true)
	}
	if err != nil {
		_ = removeDir(path)
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	h := &dirHold{path: path, stamp: stampOf(st), journal: j, logger: logger, stop: make(chan struct{}), done: make(chan struct{})}
	if j != nil {
		j.set(path, h.stamp)
	}
	go h.beat(max(staleAfter/2, time.Second))
	return h, nil
}

// takeDir is takeDirLock as a lockFunc.
func takeDir(ctx context.Context, l sdk.Lock, j *journal, _ sdk.Provider, logger hclog.Logger) (heldLock, error) {
	h, err := takeDirLock(ctx, l, j, logger)
	if err != nil {
		return nil, err
	}
	return h, nil
}

// removeDir removes an empty lock directory; gone already is fine.
func removeDir(path string) error {
	if err := syscallRmdir(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// dirStamp identifies one lock directory at one heartbeat: a directory
// created again (by whoever takes a stale lock over) differs in inode or
// change time even when its mtime was set to the same value.
type dirStamp struct {
	dev, ino       uint64
	mtime, ctimeNs int64
}

func (s dirStamp) String() string {
	return fmt.Sprintf("%d %d %d %d", s.dev, s.ino, s.mtime, s.ctimeNs)
}

// dirHold is a held directory lock and its heartbeat.
type dirHold struct {
	path    string
	journal *journal
	logger  hclog.Logger

	mu          sync.Mutex
	stamp       dirStamp
	compromised bool
	once        sync.Once
	stop, done  chan struct{}
}

func (h *dirHold) beat(every time.Duration) {
	defer close(h.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
		}
		h.mu.Lock()
		if !h.oursLocked() {
			h.mu.Unlock()
			return
		}
		now := time.Now()
		if err := touchNoFollow(h.path, now); err == nil {
			if st, err := os.Lstat(h.path); err == nil {
				h.stamp = stampOf(st)
				if h.journal != nil {
					h.journal.set(h.path, h.stamp)
				}
			}
		}
		h.mu.Unlock()
	}
}

// oursLocked reports whether the directory at h.path is still the one this
// process made and last touched: same device, inode, mtime and change
// time. Gone, made again (a new directory often gets the old inode, but
// never the old change time), or touched by another process (proper-
// lockfile's "mtime not ours"): another process took the lock over, having
// judged it stale, and it is marked compromised for good. h.mu is held.
func (h *dirHold) oursLocked() bool {
	if h.compromised {
		return false
	}
	st, err := os.Lstat(h.path)
	if err == nil && st.IsDir() && stampOf(st) == h.stamp {
		return true
	}
	h.compromised = true
	h.logger.Warn("a lock this process held was taken over by another process (it judged it stale)", "lock", h.path)
	return false
}

// lost says that another process has taken the lock over.
func (h *dirHold) lost() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.oursLocked() {
		return nil
	}
	return fmt.Errorf("another process took over the dir lock %s while this process held it (it judged it stale: this process was stopped or the machine slept)", h.path)
}

// release stops the heartbeat and removes the directory unless another
// process took it over. The journal forgets the lock first: a process
// killed in between leaves a lock to be judged by its age, never a record
// that would let the next credhost remove a lock someone else holds.
func (h *dirHold) release() {
	h.once.Do(func() {
		close(h.stop)
		<-h.done
		if h.journal != nil {
			h.journal.forget(h.path)
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.oursLocked() {
			_ = removeDir(h.path)
		}
	})
}

// journal is the content of a held flock file: the dir locks its holder
// holds, one per line as "path dev ino mtime ctime". Only the flock's
// holder reads or writes it. A credhost killed while holding dir locks
// leaves them behind, and proper-lockfile would wait out their stale time;
// the next holder of the flock knows no credhost holds them any more and,
// finding them exactly as recorded, takes them over at once.
type journal struct {
	f    *os.File
	mu   sync.Mutex
	held map[string]dirStamp // what the file holds now
	prev map[string]dirStamp // what the previous holder left
}

// maxJournal bounds what is read of a journal: a few records of a few
// hundred bytes each. A bigger file is not one credhost wrote (or not
// all of it is); what lies past the bound is ignored, never held in memory.
const maxJournal = 16 << 10

func (j *journal) load() {
	j.prev = map[string]dirStamp{}
	sc := bufio.NewScanner(io.LimitReader(j.f, maxJournal))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 5 {
			continue
		}
		var nums [4]int64
		ok := true
		for i, s := range fields[1:] {
			n, err := strconv.ParseInt(s, 10, 64)
			ok = ok && err == nil
			nums[i] = n
		}
		if ok {
			j.prev[fields[0]] = dirStamp{dev: uint64(nums[0]), ino: uint64(nums[1]), mtime: nums[2], ctimeNs: nums[3]}
		}
	}
}

// left reports whether the dir lock at path is exactly as the previous
// holder of the flock recorded it.
func (j *journal) left(path string, st fs.FileInfo) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	rec, ok := j.prev[path]
	return ok && rec == stampOf(st)
}

func (j *journal) set(path string, s dirStamp) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.held[path] = s
	j.write()
}

func (j *journal) forget(path string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	delete(j.held, path)
	j.write()
}

// write replaces the file's content with what is held now. Paths with
// white space are not recorded (they are judged by age alone).
func (j *journal) write() {
	var b strings.Builder
	for p, s := range j.held {
		if strings.ContainsAny(p, " \t\r\n") {
			continue
		}
		b.WriteString(p + " " + s.String() + "\n")
	}
	_ = j.f.Truncate(0)
	_, _ = j.f.WriteAt([]byte(b.String()), 0)
}
