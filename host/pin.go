package host

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"os/exec"
	"path/filepath"
)

// errPinMismatch is wrapped by a pinned plugin whose bytes do not match.
var errPinMismatch = errors.New("checksum does not match the sha256 pinned in the config")

// executable is a pinned plugin, verified once and run from the very bytes
// that were verified: a file swapped in after the check (a rename, say)
// never runs. On Linux it is the open descriptor that was hashed, run
// through /proc/self/fd; elsewhere a private copy, hashed as it was
// written, in a directory only this user can write.
type executable struct {
	file *os.File // the verified descriptor, passed to the child; or nil
	dir  string   // the private directory holding the verified copy; or ""
	path string   // what the child executes
}

// runFromDescriptor is fdPath; tests replace it to take the private-copy
// route other systems take.
var runFromDescriptor = fdPath

// openPinned opens path once, checks who may change it, hashes what it
// opened and compares the hash with want (hex).
func openPinned(path, want string) (*executable, error) {
	return openVerified(path, want, runFromDescriptor)
}

// openVerified is openPinned with viaFD saying how the child reaches the
// open file (ok false: through a private copy). An empty want pins
// nothing: the file is neither hashed nor held to the owner rules, but it
// still reaches the child as the file opened here.
func openVerified(path, want string, viaFD func(*os.File) (string, bool)) (*executable, error) {
	f, err := openNoBlock(path)
	if err != nil {
		return nil, fmt.Errorf("plugin %s: %w", path, unwrapPath(err))
	}
	if want != "" {
		err = checkPinnedOwner(path, f)
	} else if fi, serr := f.Stat(); serr != nil || !fi.Mode().IsRegular() {
		err = fmt.Errorf("plugin %s is not a regular file", path)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	if self, ok := viaFD(f); ok {
		if want != "" {
			sum := sha256.New()
			if _, err := io.Copy(sum, f); err != nil {
				f.Close()
				return nil, fmt.Errorf("plugin %s: %w", path, err)
			}
			if err := comparePin(path, sum, want); err != nil {
				f.Close()
				return nil, err
			}
			// Where the child's open shares this offset, it reads from
			// the start.
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				f.Close()
				return nil, fmt.Errorf("plugin %s: %w", path, err)
			}
		}
		return &executable{file: f, path: self}, nil
	}
	defer f.Close()
	return copyPinned(path, f, want)
}

// copyPinned copies f into a fresh 0700 directory, hashing what it writes.
func copyPinned(path string, f *os.File, want string) (*executable, error) {
	dir, err := os.MkdirTemp("", "credhost-plugin-")
	if err != nil {
		return nil, fmt.Errorf("plugin %s: private copy: %w", path, err)
	}
	dst := filepath.Join(dir, filepath.Base(path))
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o700)
	if err == nil {
		sum := sha256.New()
		_, err = io.Copy(io.MultiWriter(out, sum), f)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			if err := comparePin(path, sum, want); err != nil {
				os.RemoveAll(dir)
				return nil, err
			}
			return &executable{dir: dir, path: dst}, nil
		}
	}
	os.RemoveAll(dir)
	return nil, fmt.Errorf("plugin %s: private copy: %w", path, err)
}

// comparePin compares sum with want; an empty want pins nothing.
func comparePin(path string, sum hash.Hash, want string) error {
	if want == "" {
		return nil
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != want {
		return &pinMismatchError{path: path, got: got, want: want}
	}
	return nil
}

// pinMismatchError says that a pinned plugin's bytes hash to got.
type pinMismatchError struct {
	path, got, want string
	// what is "plugin" (a command or script) or "modules" (a tree hash).
	what string
}

func (e *pinMismatchError) Error() string {
	if e.what == "modules" {
		return fmt.Sprintf("modules %s: %v: its tree hash is %s; the config pins %s (modules_sha256)", e.path, errPinMismatch, e.got, e.want)
	}
	return fmt.Sprintf("plugin %s: %v: it has sha256 %s; the config pins %s", e.path, errPinMismatch, e.got, e.want)
}

// Unwrap makes errors.Is(err, errPinMismatch) true.
func (e *pinMismatchError) Unwrap() error { return errPinMismatch }

// prepare makes cmd run the verified bytes; argv[0] stays the configured
// path.
func (e *executable) prepare(cmd *exec.Cmd) {
	cmd.Path = e.path
	if e.file != nil {
		cmd.ExtraFiles = append([]*os.File{e.file}, cmd.ExtraFiles...)
	}
}

// started drops the host's descriptor once the child holds its own.
func (e *executable) started() {
	if e.file != nil {
		e.file.Close()
	}
}

// remove deletes the private copy; call it once the process has ended.
func (e *executable) remove() {
	e.started()
	if e.dir != "" {
		_ = os.RemoveAll(e.dir)
	}
}
