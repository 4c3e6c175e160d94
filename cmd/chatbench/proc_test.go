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

func TestCPUSince(t *testing.T) {
	if ns, ok := parseSchedstat([]byte("2314190862 638512289 1542\n")); !ok || ns != 2314190862 {
		t.Errorf("parseSchedstat = %d, %v", ns, ok)
	}
	if _, ok := parseSchedstat([]byte("\n")); ok {
		t.Error("an empty schedstat parsed")
	}
	a := procSample{cpu: 10 * clockTick, threads: map[int]time.Duration{1: 50 * time.Millisecond, 2: 47 * time.Millisecond}}
	b := procSample{cpu: 12 * clockTick, threads: map[int]time.Duration{1: 61 * time.Millisecond, 2: 47 * time.Millisecond, 3: 4 * time.Millisecond}}
	if got := b.cpuSince(a); got != 15*time.Millisecond {
		t.Errorf("threads 1 and 2 kept, 3 new: %s, want 15ms", got)
	}
	gone := procSample{cpu: 13 * clockTick, threads: map[int]time.Duration{1: 70 * time.Millisecond}}
	if got := gone.cpuSince(a); got != 3*clockTick {
		t.Errorf("a thread ended: %s, want the ticks' 30ms", got)
	}
	if got := (procSample{cpu: 11 * clockTick}).cpuSince(a); got != clockTick {
		t.Errorf("no thread figures: %s, want the ticks' 10ms", got)
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
	c0 := selfCPU()
	for end := time.Now().Add(10 * time.Second); selfCPU()-c0 < 30*time.Millisecond && time.Now().Before(end); {
		// burn a little CPU
	}
	if selfCPU() <= 0 {
		t.Error("no CPU time of our own")
	}
	s2, err := readProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if len(s.threads) == 0 || s2.cpuSince(s) < 20*time.Millisecond {
		t.Errorf("%d threads read; %s of CPU over a loop of 30 ms of it (getrusage)", len(s.threads), s2.cpuSince(s))
	}
}
