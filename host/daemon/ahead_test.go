package daemon

import (
	"testing"
	"time"
)

// TestAheadWakeAt: refresh ahead (serve and exec) refreshes as the token
// enters the buffer, or, when the endpoint grants tokens shorter than the
// buffer, half way to the expiry rather than over and over.
func TestAheadWakeAt(t *testing.T) {
	t.Parallel()
	a := &Ahead{Buffer: 10 * time.Minute}
	now := time.Now()
	tests := map[string]struct {
		expires time.Time
		want    time.Duration // from now
	}{
		"ahead of the buffer":        {now.Add(8 * time.Hour), 8*time.Hour - 10*time.Minute},
		"shorter than the buffer":    {now.Add(4 * time.Minute), 2 * time.Minute},
		"already expired: right now": {now.Add(-time.Minute), 0},
	}
	for name, tc := range tests {
		if got := a.WakeAt(tc.expires, now).Sub(now); got != tc.want {
			t.Errorf("%s: wake in %s; want %s", name, got, tc.want)
		}
	}
}

// TestAheadJitterIsEarlierByUpToATenthOfTheBuffer: with Jitter, holders of
// one login spread their refreshes over a tenth of the buffer before it.
func TestAheadJitterIsEarlierByUpToATenthOfTheBuffer(t *testing.T) {
	t.Parallel()
	a := &Ahead{Buffer: 10 * time.Minute, Jitter: true}
	expires := time.Now().Add(time.Hour)
	var spread bool
	first, _ := a.wake(expires)
	for range 100 {
		at, ok := a.wake(expires)
		early := expires.Add(-a.Buffer).Sub(at)
		if !ok || early < 0 || early > time.Minute {
			t.Fatalf("wake %s before the buffer; want 0 to 1m", early)
		}
		spread = spread || !at.Equal(first)
	}
	if !spread {
		t.Error("100 wake times are all the same; want them spread")
	}
	if _, ok := a.wake(time.Time{}); ok {
		t.Error("a token of unknown expiry is scheduled; want nothing to do")
	}
}
