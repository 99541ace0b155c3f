package host

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/credhost/credhost/sdk"
)

// The Retry-After record: when the token endpoint answers 429 or 503 with
// Retry-After, the next refresh waits until then, in this process and, via
// a record beside the store's first lock ("<lock>.retry-after"), in every
// other credhost process on the machine (`credhost token` run again and
// again as an apiKeyHelper honours a 429 too). It is read and written only
// under the store's locks.

// maxRetryWait caps a Retry-After, on write and on read: a day is longer
// than any real rate limit. A record further ahead than that is not one
// credhost wrote (a clock set back, a planted or corrupt file): it is
// ignored and removed, rather than read as "a day from now" for ever.
const maxRetryWait = 24 * time.Hour

// maxRecord bounds what is read of a record: a timestamp is ~40 bytes.
const maxRecord = 256

// retryAfter is when the token endpoint allows the next refresh: the later
// of what this process was told and the record beside the store's lock.
// The record is opened as every lock is (no symlink, no FIFO, a regular
// file of this user's): anything else is an error naming it, and the
// refresh is refused.
func (m *member) retryAfter(now time.Time) (time.Time, error) {
	m.mu.Lock()
	at := m.retryAt
	m.mu.Unlock()
	path := m.retryFile()
	if path == "" {
		return at, nil
	}
	f, err := openSafe(path, os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return at, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("retry-after record: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxRecord))
	if err != nil {
		return time.Time{}, fmt.Errorf("retry-after record %s: %w", path, err)
	}
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(string(data)))
	switch {
	case err != nil:
		m.logger.Warn("ignoring a retry-after record that does not parse", "provider", m.cfg.Name, "record", path)
	case t.After(now.Add(maxRetryWait)):
		m.logger.Warn("ignoring and removing a retry-after record more than a day ahead (credhost never writes one)", "provider", m.cfg.Name, "record", path, "until", t.UTC().Format(time.RFC3339))
		_ = os.Remove(path)
	case t.After(at):
		at = t
	}
	return at, nil
}

// setRetryAfter records when the next refresh is allowed, at most a day
// ahead of now; the zero Time clears it (after a successful refresh).
func (m *member) setRetryAfter(now, t time.Time) {
	if !t.IsZero() && t.After(now.Add(maxRetryWait)) {
		t = now.Add(maxRetryWait)
	}
	m.mu.Lock()
	m.retryAt = t
	m.mu.Unlock()
	path := m.retryFile()
	switch {
	case path == "":
	case t.IsZero():
		// Remove does not follow a symlink: it removes the link.
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			m.logger.Warn("could not remove the retry-after record", "provider", m.cfg.Name, "error", err.Error())
		}
	default:
		// Advisory and written under the store's locks: a plain write is
		// enough, and a failure only costs the other processes one request.
		if err := writeRecord(path, t.UTC().Format(time.RFC3339Nano)+"\n"); err != nil {
			m.logger.Warn("could not write the retry-after record", "provider", m.cfg.Name, "error", err.Error())
		}
	}
}

func writeRecord(path, content string) error {
	f, err := openSafe(path, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if err := f.Truncate(0); err != nil {
		f.Close()
		return err
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// retryFile sits beside the store's first lock file; "" when it has
// none (a lock a provider holds is no file).
func (m *member) retryFile() string {
	locks, err := storeLocks(m.info)
	if err != nil {
		return ""
	}
	for _, l := range locks {
		if l.Kind != sdk.LockProvider {
			return l.Path + ".retry-after"
		}
	}
	return ""
}
