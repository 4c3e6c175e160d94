package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"chatbox/appliance"
	"chatbox/internal/testbox"
	"chatbox/services/chat"
	"chatbox/services/store"
)

// TestSeedAndStartup seeds a small data directory, checks what it holds
// through the store, then times chatbox starting over it twice. No timing
// is asserted, only that every figure was taken.
func TestSeedAndStartup(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs chatbox")
	}
	bin, cleanup, err := testbox.Build("../chatbox")
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	testbox.Skip(t, bin) // CHATBOX_E2E=off (under qemu-user)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	data := filepath.Join(t.TempDir(), "data")

	o, err := parse("--seed", data, "--seed-accounts", "12", "--seed-messages", "400", "--seed-rooms", "3", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := seedStore(ctx, &o, &out, nil); err != nil {
		t.Fatal(err)
	}
	var seeded seedReport
	if err := json.Unmarshal(out.Bytes(), &seeded); err != nil {
		t.Fatalf("--seed --json printed %q: %v", out.String(), err)
	}
	if seeded.Accounts != 12 || seeded.Messages != 400 || seeded.Rooms != 3 || seeded.DBBytes <= 0 ||
		seeded.SchemaVersion != store.SchemaVersion() {
		t.Errorf("seed report %+v", seeded)
	}
	if err := seedStore(ctx, &o, &out, nil); err == nil || !strings.Contains(err.Error(), "already holds a database") {
		t.Errorf("seeding the same directory again: %v", err)
	}

	st, err := store.Open(ctx, filepath.Join(data, appliance.DBFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	accounts, err := st.Accounts(ctx)
	if err != nil || len(accounts) != 12 || accounts[0].Name != "u0000" || !accounts[0].Admin || accounts[11].Name != "u0011" {
		t.Errorf("seeded accounts %v, %v", accounts, err)
	}
	a, c, err := st.Account(ctx, "u0007")
	if err != nil || !chat.VerifyPassword(c, "pw-u0007") {
		t.Errorf("u0007 (%v, %v) does not take its password pw-u0007", a, err)
	}
	rooms, err := st.Rooms(ctx)
	if err != nil || len(rooms) != 3 {
		t.Errorf("seeded rooms %v, %v", rooms, err)
	}
	inRooms := 0
	for _, r := range rooms {
		n, err := st.CountHistory(ctx, chat.HistoryQuery{Room: r.Name})
		if err != nil {
			t.Fatal(err)
		}
		inRooms += n
	}
	direct := 0
	for _, a := range accounts {
		n, err := st.CountHistory(ctx, chat.HistoryQuery{Account: a.Name})
		if err != nil {
			t.Fatal(err)
		}
		direct += n // each direct message counts for its sender and its recipient
	}
	if inRooms != 360 || direct != 2*40 {
		t.Errorf("%d room messages and %d direct ones (counted twice); want 360 and 80", inRooms, direct)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	o, err = parse("--startup", data, "--chatbox", bin, "--runs", "2", "--json", "--start-timeout", "90s", "--cold")
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := measureStartup(ctx, &o, &out, nil); err != nil {
		t.Fatal(err)
	}
	var rep startupReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("--startup --json printed %q: %v", out.String(), err)
	}
	if rep.Runs != 2 || !rep.Cold || len(rep.ReadyMS) != 2 || len(rep.AnswerMS) != 2 || len(rep.CPUReadyMS) != 2 ||
		rep.WarmupReadyMS <= 0 || rep.RSSReadyKB <= 0 || rep.DBBytes <= 0 {
		t.Fatalf("startup report %+v", rep)
	}
	for i := range rep.ReadyMS {
		if rep.ReadyMS[i] <= 0 || rep.AnswerMS[i] < rep.ReadyMS[i] {
			t.Errorf("run %d: ready at %v ms, IRC answered at %v ms", i, rep.ReadyMS[i], rep.AnswerMS[i])
		}
	}
}
