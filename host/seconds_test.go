package host

import (
	"encoding/json"
	"testing"
	"time"
)

// A status read back from JSON (credhost serve's GET /v1/status) shows the
// time left the daemon sent, not that many nanoseconds.
func TestSecondsJSONRoundTrip(t *testing.T) {
	t.Parallel()
	for _, d := range []time.Duration{0, 90 * time.Second, -42 * time.Second, 8 * time.Hour} {
		data, err := json.Marshal(Seconds(d))
		if err != nil {
			t.Fatal(err)
		}
		var back Seconds
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatalf("Unmarshal(%s): %v", data, err)
		}
		if time.Duration(back) != d {
			t.Errorf("%v encoded as %s decodes to %v", d, data, time.Duration(back))
		}
	}
	var s Seconds
	if err := json.Unmarshal([]byte(`"soon"`), &s); err == nil {
		t.Errorf("a string decoded to %v; want an error", time.Duration(s))
	}
}
