package main

import (
	"os"
	"testing"
	"time"
)

func TestParseProc(t *testing.T) {
	stat := []byte("4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 12 0 100 123456789 2000 18446744073709551615\n")
	cpu, err := parseStatCPU(stat)
	if err != nil || cpu != 325*clockTick {
		t.Errorf("parseStatCPU = %s, %v; want %s", cpu, err, 325*clockTick)
	}
	if _, err := parseStatCPU([]byte("4242 (x) S 1 2")); err == nil {
		t.Error("a short stat line parsed")
	}
	status := []byte("Name:\tchatbox\nVmPeak:\t  99999 kB\nVmRSS:\t   38240 kB\nThreads:\t9\n")
	if rss, err := parseStatusRSS(status); err != nil || rss != 38240 {
		t.Errorf("parseStatusRSS = %d, %v", rss, err)
	}
	if _, err := parseStatusRSS([]byte("Name:\tx\n")); err == nil {
		t.Error("a status without VmRSS parsed")
	}
	if v, ok := procField([]byte("rchar: 1\nwrite_bytes: 8192\ncancelled_write_bytes: 0\n"), "write_bytes:"); !ok || v != 8192 {
		t.Errorf("write_bytes = %d, %v", v, ok)
	}
}

func TestReadProcSelf(t *testing.T) {
	s, err := readProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.rssKB <= 0 || s.cpu < 0 {
		t.Errorf("own process: %+v", s)
	}
	end := time.Now().Add(30 * time.Millisecond)
	for time.Now().Before(end) { // burn a little CPU
	}
	if selfCPU() <= 0 {
		t.Error("no CPU time of our own")
	}
}
