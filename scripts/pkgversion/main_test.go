package main

import "testing"

func TestVersions(t *testing.T) {
	for _, c := range []struct{ desc, count, deb, apk string }{
		{"v1.2.3-0-gabc1234", "50", "1.2.3", "1.2.3"},
		{"v1.2.3-0-gabc1234-dirty", "50", "1.2.3+dirty", "1.2.3"},
		{"v1.2.3-4-gabc1234", "54", "1.2.3+git4.gabc1234", "1.2.3_git4"},
		{"1.2-4-gabc1234-dirty", "54", "1.2+git4.gabc1234.dirty", "1.2_git4"},
		{"5d5a1e7", "42", "0.0.0+git42.g5d5a1e7", "0.0.0_git42"},
		{"5d5a1e7-dirty", "42", "0.0.0+git42.g5d5a1e7.dirty", "0.0.0_git42"},
	} {
		deb, apk, err := versions(c.desc, c.count)
		if err != nil || deb != c.deb || apk != c.apk {
			t.Errorf("versions(%q, %q) = %q, %q, %v; want %q, %q", c.desc, c.count, deb, apk, err, c.deb, c.apk)
		}
	}
	for _, bad := range [][2]string{{"release-x", "1"}, {"v1.2.3-4-gabc", "many"}, {"", "3"}} {
		if deb, _, err := versions(bad[0], bad[1]); err == nil {
			t.Errorf("versions(%q, %q) = %q, want an error", bad[0], bad[1], deb)
		}
	}
}
