package sdk

import (
	"strings"
	"testing"
	"time"
)

func TestParseExpiry(t *testing.T) {
	t.Parallel()
	want := time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)
	tests := map[string]struct {
		in      string
		want    time.Time
		wantErr string
	}{
		"epoch ms":             {in: "1904281689000", want: want},
		"epoch s":              {in: "1904281689", want: want},
		"epoch s, fraction":    {in: "1904281689.5", want: want.Add(500 * time.Millisecond)},
		"ms threshold is 1e12": {in: "1000000000001", want: time.UnixMilli(1000000000001)},
		"just below threshold": {in: "999999999999", want: time.Unix(999999999999, 0)},
		"RFC 3339":             {in: "2030-05-06T07:08:09Z", want: want},
		"RFC 3339 offset":      {in: "2030-05-06T09:08:09+02:00", want: want},
		"RFC 3339 nanos":       {in: "2030-05-06T07:08:09.25Z", want: want.Add(250 * time.Millisecond)},
		"empty is unknown":     {in: "", want: time.Time{}},
		"zero is unknown":      {in: "0", want: time.Time{}},
		"space trimmed":        {in: " 1904281689 ", want: want},
		"negative":             {in: "-5", wantErr: "negative"},
		"words, not quoted":    {in: "tomorrow", wantErr: "expiry is not epoch seconds"},
		"absurdly large":       {in: "1e30", wantErr: "out of range"},
		"NaN":                  {in: "NaN", wantErr: "expiry is not epoch seconds"},
		"Inf":                  {in: "+Inf", wantErr: "not a number"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseExpiry(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseExpiry(%q) = %v, %v; want error containing %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || !got.Equal(tc.want) {
				t.Fatalf("ParseExpiry(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestParseExpiryNeverQuotesAString(t *testing.T) {
	t.Parallel()
	_, err := ParseExpiry("sk-ant-oat01-misplaced-SECRET")
	if err == nil || strings.Contains(err.Error(), "SECRET") {
		t.Errorf("got %v; want an error that does not quote the value", err)
	}
}
