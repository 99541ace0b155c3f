package host

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/credhost/credhost/sdk"
)

// The rejected-token record: when the token endpoint rejects a refresh
// token (invalid_grant) and the store still holds it, nobody holds a
// working one. That happens when the endpoint rotated the token for a
// request whose answer never arrived (its process was killed
// mid-refresh): the new refresh token is lost, and the old one is spent.
// Presenting the spent token again would only be rejected again (and, on
// a server that counts reuses, count again), on every call, so the host
// remembers it: in this process, and in a record every credhost process on
// the machine reads, beside the store's first lock file, or, for a store
// whose only locks its provider holds (a fleet's), in this user's cache
// directory. A refresh whose store still holds that token fails at once
// with "log in again"; a new login (another token) is not affected. The
// record holds a SHA-256 of the token, never the token, and is read and
// written only under the store's locks.

// rejectedFile is where the record lives; "" when the store has no locks
// (it is never refreshed across processes).
func (m *member) rejectedFile() string {
	locks, err := storeLocks(m.info)
	if err != nil || len(locks) == 0 {
		return ""
	}
	for _, l := range locks {
		if l.Kind != sdk.LockProvider {
			return l.Path + ".rejected"
		}
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	sum := sha256.Sum256([]byte(m.cfg.Name + "\x00" + locks[0].Path))
	return filepath.Join(dir, "credhost", "rejected-"+hex.EncodeToString(sum[:8]))
}

func tokenHash(rt string) string {
	sum := sha256.Sum256([]byte(rt))
	return hex.EncodeToString(sum[:])
}

// rejected reports whether rt is the refresh token the endpoint rejected
// while the store held it, as this process or the record remembers.
func (m *member) rejected(rt string) bool {
	h := tokenHash(rt)
	m.mu.Lock()
	mem := m.rejectedHash
	m.mu.Unlock()
	if mem == h {
		return true
	}
	path := m.rejectedFile()
	if path == "" {
		return false
	}
	f, err := openSafe(path, os.O_RDONLY, 0)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			m.logger.Warn("ignoring the rejected-token record", "provider", m.cfg.Name, "error", err.Error())
		}
		return false
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxRecord))
	return err == nil && strings.TrimSpace(string(data)) == h
}

// setRejected remembers rt as rejected; "" forgets (a refresh succeeded).
func (m *member) setRejected(rt string) {
	h := ""
	if rt != "" {
		h = tokenHash(rt)
	}
	m.mu.Lock()
	m.rejectedHash = h
	m.mu.Unlock()
	path := m.rejectedFile()
	switch {
	case path == "":
	case h == "":
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			m.logger.Warn("could not remove the rejected-token record", "provider", m.cfg.Name, "error", err.Error())
		}
	default:
		err := os.MkdirAll(filepath.Dir(path), 0o700)
		if err == nil {
			err = writeRecord(path, h+"\n")
		}
		if err != nil {
			m.logger.Warn("could not write the rejected-token record", "provider", m.cfg.Name, "error", err.Error())
		}
	}
}
