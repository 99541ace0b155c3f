//go:build unix

package file_test

import (
	"context"
	"os"
	"syscall"
	"testing"

	"github.com/credhost/credhost/sdk"
)

// TestSaveKeepsTheOwner: root refreshing a user's file (a system service,
// sudo) must leave it the user's; a file that became root's, mode 0600,
// would lock its owner out of their own login.
func TestSaveKeepsTheOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a file owned by another user")
	}
	t.Parallel()
	const uid, gid = 12345, 12345
	path := copyFixture(t, "valid_ms.json")
	if err := os.Chown(path, uid, gid); err != nil {
		t.Fatal(err)
	}
	if err := configured(t, path).Save(context.Background(), sdk.Credential{AccessToken: "at-new", RefreshToken: "rt-new"}); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	if sys.Uid != uid || sys.Gid != gid {
		t.Errorf("owner %d:%d after the save; want %d:%d kept", sys.Uid, sys.Gid, uid, gid)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %04o; want 0600", st.Mode().Perm())
	}
}
