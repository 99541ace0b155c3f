package daemon

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Listener is the daemon's socket, held by one daemon at a time: beside the
// socket a lock file ("<socket>.lock") is locked for as long as the daemon
// runs and holds its pid. A second daemon on the same socket finds the lock
// taken and is refused with a *BusyError naming that pid; a socket left
// behind by a daemon that was killed (no lock holder) is removed and bound
// again.
//
// Close stops listening, removes the socket (unless it was handed over by
// the service manager, which owns it) and releases the lock.
type Listener struct {
	net.Listener
	path      string
	lock      *os.File
	activated bool
	once      sync.Once
	closeErr  error
}

// BusyError reports that another daemon holds the socket.
type BusyError struct {
	// Socket is the socket's path.
	Socket string
	// PID is the holder's process id (0: unknown).
	PID int
}

func (e *BusyError) Error() string {
	holder := "another credhost serve"
	if e.PID > 0 {
		holder = fmt.Sprintf("credhost serve (pid %d)", e.PID)
	}
	return fmt.Sprintf("socket %s is held by %s; stop it first, or choose another --socket", e.Socket, holder)
}

// Listen checks the socket's directory (see PrivateDir), takes the
// socket's lock, removes a socket a killed daemon left behind, and listens
// on path with mode 0600.
func Listen(path string) (*Listener, error) {
	path, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("socket %s: %w", path, err)
	}
	if err := PrivateDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	lock, err := lockSocket(path)
	if err != nil {
		return nil, err
	}
	// The lock is ours: a socket file still there is a dead daemon's,
	// unless a process still listens on it.
	if st, err := os.Lstat(path); err == nil {
		if st.Mode()&fs.ModeSocket == 0 {
			lock.Close()
			return nil, fmt.Errorf("socket %s exists and is not a socket (%s); remove it, or choose another --socket", path, st.Mode().Type())
		}
		if err := nobodyListens(path); err != nil {
			lock.Close()
			return nil, err
		}
		if err := os.Remove(path); err != nil {
			lock.Close()
			return nil, fmt.Errorf("socket %s left by a daemon that ended: %w", path, err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("socket %s: %w", path, err)
	}
	// The directory is private, so nobody else reaches the socket
	// between bind and chmod.
	if err := privateMode(path); err != nil {
		ln.Close()
		lock.Close()
		return nil, fmt.Errorf("socket %s: %w", path, err)
	}
	return &Listener{Listener: ln, path: path, lock: lock}, nil
}

// Activated wraps a listener handed over by the service manager (systemd
// socket activation): its socket's directory is checked as Listen checks
// it and its lock taken, but the socket belongs to the service manager and
// is left in place on Close.
func Activated(ln net.Listener) (*Listener, error) {
	addr, ok := ln.Addr().(*net.UnixAddr)
	if !ok || addr.Name == "" || addr.Name[0] == '@' {
		return nil, fmt.Errorf("the socket handed over by the service manager is %s %q, not a unix socket with a path", ln.Addr().Network(), ln.Addr().String())
	}
	path := addr.Name
	if err := PrivateDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	if err := privateSocket(path); err != nil {
		return nil, err
	}
	lock, err := lockSocket(path)
	if err != nil {
		return nil, err
	}
	if ul, ok := ln.(*net.UnixListener); ok {
		ul.SetUnlinkOnClose(false)
	}
	return &Listener{Listener: ln, path: path, lock: lock, activated: true}, nil
}

// Path is the socket's path.
func (l *Listener) Path() string { return l.path }

// Close stops listening, removes the socket unless the service manager
// handed it over, and releases the lock. The lock file stays: removing it
// could let a daemon waiting on the old file and one creating a new file
// both believe they hold it.
func (l *Listener) Close() error {
	l.once.Do(func() {
		l.closeErr = l.Listener.Close()
		if !l.activated {
			if err := os.Remove(l.path); err != nil && !errors.Is(err, fs.ErrNotExist) && l.closeErr == nil {
				l.closeErr = err
			}
		}
		unlockFile(l.lock)
		l.lock.Close()
	})
	return l.closeErr
}

// lockSocket takes the lock beside path and writes this process's pid in
// it, or returns a *BusyError naming the holder's.
func lockSocket(path string) (*os.File, error) {
	lockPath := path + ".lock"
	f, err := openLock(lockPath)
	if err != nil {
		return nil, fmt.Errorf("socket lock %s: %w", lockPath, err)
	}
	ok, err := tryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("socket lock %s: %w", lockPath, err)
	}
	if !ok {
		pid := readPID(f)
		f.Close()
		return nil, &BusyError{Socket: path, PID: pid}
	}
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("socket lock %s: %w", lockPath, err)
	}
	return f, nil
}

// reclaimDial bounds the dial that tells a dead daemon's socket from a
// live one: a live listener's kernel accepts at once, even when the
// process behind it hangs; a full backlog makes the dial wait.
const reclaimDial = time.Second

// nobodyListens returns nil when the socket at path is refused (its
// process is gone), and otherwise an error: a process that holds no lock
// yet listens there (a daemon that hangs after its lock file was removed,
// the service manager holding the socket for activation) keeps it.
func nobodyListens(path string) error {
	c, err := net.DialTimeout("unix", path, reclaimDial)
	if err == nil {
		c.Close()
		return fmt.Errorf("socket %s is listened on by a process that does not hold its lock %s.lock (a daemon whose lock file was removed, or the service manager's socket); stop that process, or choose another --socket", path, path)
	}
	if connRefused(err) || errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return fmt.Errorf("socket %s may still be in use (%w); stop the process that listens on it, or remove it", path, err)
}

func readPID(f *os.File) int {
	data, _ := io.ReadAll(io.LimitReader(io.NewSectionReader(f, 0, 32), 32))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return pid
}
