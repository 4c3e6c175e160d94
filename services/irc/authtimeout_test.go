package irc

import (
	"bufio"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestAccountNickRenamedAfterTimeout: a client that takes an account's
// name as its nick and does not log in within AuthTimeout is renamed to
// a guest nick and stays connected; with guests allowed it may then join
// rooms under that nick.
func TestAccountNickRenamedAfterTimeout(t *testing.T) {
	d := newFuzzDoor(t, fuzzDoorOptions{
		accounts: map[string]bool{"alice": false},
		cfg:      Config{AuthTimeout: 300 * time.Millisecond, Guests: true},
	})
	nc, done := d.attach(d.nextIP())
	defer func() { nc.Close(); <-done }()
	rd := bufio.NewReader(nc)
	go fmt.Fprintf(nc, "NICK alice\r\nUSER x 0 * :squatter\r\n")
	waitFor := func(want string) string {
		t.Helper()
		nc.SetReadDeadline(time.Now().Add(15 * time.Second))
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				t.Fatalf("waiting for %q: %v", want, err)
			}
			if strings.Contains(line, want) {
				return line
			}
		}
	}
	waitFor(" 001 alice ")
	waitFor("is a registered account")
	line := waitFor(" NICK ")
	if !strings.HasPrefix(line, ":alice!") || !strings.Contains(line, "Guest") {
		t.Fatalf("rename line %q", line)
	}
	guest := strings.TrimSpace(line[strings.LastIndex(line, " ")+1:])
	guest = strings.TrimPrefix(guest, ":")
	go fmt.Fprintf(nc, "JOIN #general\r\n")
	waitFor(" JOIN #general")
	waitFor(" 366 " + guest + " #general")
}

// TestNickCaseChangeKeepsClaim: changing only the case of a nick keeps
// it claimed, so a second client cannot take it.
func TestNickCaseChangeKeepsClaim(t *testing.T) {
	d := newFuzzDoor(t, fuzzDoorOptions{accounts: map[string]bool{"alice": false}})
	x := d.srv
	nc, done := d.attach(d.nextIP())
	defer func() { nc.Close(); <-done }()
	rd := bufio.NewReader(nc)
	go fmt.Fprintf(nc, "NICK alice\r\nUSER x 0 * :x\r\nNICK Alice\r\nPING sync\r\n")
	nc.SetReadDeadline(time.Now().Add(15 * time.Second))
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(line, "PONG") {
			break
		}
	}
	if holders := x.nickHolders("alice"); len(holders) != 1 {
		t.Fatalf("after a case change, %d connections hold alice", len(holders))
	}
}
