//go:build unix

package file_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/credhost/credhost/plugins/file"
	"github.com/credhost/credhost/sdk"
)

// writerEnv makes this test binary a writer that saves forever (see
// runWriterIfAsked), for the kill -9 test.
const writerEnv = "CREDHOST_FILE_TEST_WRITER"

func init() {
	path := os.Getenv(writerEnv)
	if path == "" {
		return
	}
	p := file.New()
	if err := p.Configure(context.Background(), sdk.ConfigureRequest{Name: "w", Config: []byte(configJSON(path))}); err != nil {
		os.Exit(2)
	}
	big := strings.Repeat("x", 64<<10) // a larger file makes the write window wider
	for i := 0; ; i++ {
		c := sdk.Credential{
			AccessToken: fmt.Sprintf("access-%d", i), RefreshToken: fmt.Sprintf("refresh-%d", i),
			ExpiresAt: time.UnixMilli(1904281689000 + int64(i)), Metadata: map[string]string{"padding": big},
		}
		if err := p.Save(context.Background(), c); err != nil {
			os.Exit(3)
		}
	}
}

// TestKill9NeverLeavesAnUnparsableFile kills a writer at random points; the
// file must parse every time, holding a credential the writer wrote whole,
// and the other keys must survive.
func TestKill9NeverLeavesAnUnparsableFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), ".credentials.json")
	if err := os.WriteFile(path, []byte(`{"claudeAiOauth":{"accessToken":"initial"},"keep":{"me":true}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	reader := configured(t, path)
	const kills = 40
	for i := range kills {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), writerEnv+"="+path)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rand.IntN(25000)) * time.Microsecond)
		cmd.Process.Signal(syscall.SIGKILL)
		err := cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("kill %d: writer ended with %v before the kill; want it killed mid-loop", i, err)
		}
		cred, err := reader.Read(context.Background())
		if err != nil {
			t.Fatalf("after kill %d: %v", i, err)
		}
		if cred.AccessToken != "initial" && !strings.HasPrefix(cred.AccessToken, "access-") {
			t.Fatalf("after kill %d: unexpected token %s", i, cred.Fingerprint())
		}
		if n := strings.TrimPrefix(cred.AccessToken, "access-"); n != cred.AccessToken && cred.RefreshToken != "refresh-"+n {
			t.Fatalf("after kill %d: access and refresh tokens from different writes", i)
		}
		data, _ := os.ReadFile(path)
		if !strings.Contains(string(data), `"keep":{"me":true}`) {
			t.Fatalf("after kill %d: the other key was lost", i)
		}
	}
	// Killed writers may leave temporary files; the next save removes the
	// stale ones and only those.
	temps, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".credentials.json-*.tmp"))
	t.Logf("%d kills left %d temporary files", kills, len(temps))
	old := time.Now().Add(-time.Hour)
	for _, tmp := range temps {
		os.Chtimes(tmp, old, old)
	}
	fresh := filepath.Join(filepath.Dir(path), ".credentials.json-fresh.tmp")
	os.WriteFile(fresh, []byte("in progress"), 0o600)
	if err := reader.Save(context.Background(), sdk.Credential{AccessToken: "last"}); err != nil {
		t.Fatal(err)
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".credentials.json-*.tmp"))
	if len(left) != 1 || left[0] != fresh {
		t.Errorf("temporary files after a save: %v; want only the fresh one", left)
	}
}
