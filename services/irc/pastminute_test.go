package irc

import (
	"testing"
	"time"
)

// TestPastMinute: pastMinute is now.Sub(t) > time.Minute, to the
// nanosecond and for any two times.
func TestPastMinute(t *testing.T) {
	now := time.Date(2026, 12, 2, 9, 0, 0, 500, time.UTC)
	for _, c := range []struct {
		t    time.Time
		want bool
	}{
		{now.Add(-time.Minute), false},
		{now.Add(-time.Minute - time.Nanosecond), true},
		{now.Add(-time.Minute + time.Nanosecond), false},
		{now.Add(-time.Minute - 600), true}, // across a second's boundary
		{now.Add(-59 * time.Second), false},
		{now.Add(time.Hour), false},
		{time.Time{}, true},
		{now.Add(-61 * time.Second).In(time.FixedZone("x", 3600)), true},
	} {
		if got := pastMinute(now, c.t); got != c.want || got != (now.Sub(c.t) > time.Minute) {
			t.Errorf("pastMinute(%v, %v) = %v, want %v", now, c.t, got, c.want)
		}
	}
}
