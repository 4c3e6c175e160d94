package xmpp

import (
	"strings"
	"testing"

	"chatbox/internal/chunkq"
)

// TestWriteBatchItems: plain and prepared items go out in order, the
// small ones joined up to coalesceBytes a write, a prepared stanza as its
// prefix, the receiver's JID and its suffix, one over coalesceBytes in a
// write of its own; a lone plain item is written as it is.
func TestWriteBatchItems(t *testing.T) {
	to := []byte("u1@box/phone")
	msg := &prepared{prefix: []byte(`<message to="`), suffix: []byte(`"><body>hi</body></message>`)}
	bigBody := strings.Repeat("x", coalesceBytes)
	big := &prepared{prefix: []byte(`<message to="`), suffix: []byte(`"><body>` + bigBody + `</body></message>`)}
	small := strings.Repeat("y", coalesceBytes/3)

	var batch chunkq.Queue[outItem]
	var pool chunkq.Pool[outItem]
	defer batch.Release(&pool)
	push := func(it outItem) { batch.Push(&pool, it) }
	push(outItem{b: []byte("<presence/>")})
	push(outItem{b: to, p: msg})
	push(outItem{b: []byte(small)})
	push(outItem{b: []byte(small)})
	push(outItem{b: []byte(small)}) // over coalesceBytes with what precedes: a new write
	push(outItem{b: to, p: big})    // alone
	push(outItem{b: to, p: msg})

	w := &recWriter{got: make(chan struct{}, 1)}
	if err := writeBatch(w, &batch, nil); err != nil {
		t.Fatal(err)
	}
	stanza := `<message to="u1@box/phone"><body>hi</body></message>`
	want := []string{
		"<presence/>" + stanza + small + small,
		small,
		`<message to="u1@box/phone"><body>` + bigBody + `</body></message>`,
		stanza,
	}
	if len(w.writes) != len(want) {
		t.Fatalf("%d writes, want %d (%v)", len(w.writes), len(want), lens(w.writes))
	}
	for i := range want {
		if w.writes[i] != want[i] {
			t.Errorf("write %d: %d bytes %.60q…, want %d bytes %.60q…", i, len(w.writes[i]), w.writes[i], len(want[i]), want[i])
		}
	}

	// One plain item: written from its own bytes, not copied.
	var one chunkq.Queue[outItem]
	defer one.Release(&pool)
	b := []byte("<r/>")
	one.Push(&pool, outItem{b: b})
	cw := &captureWriter{}
	if err := writeBatch(cw, &one, nil); err != nil {
		t.Fatal(err)
	}
	if len(cw.got) != 1 || &cw.got[0][0] != &b[0] {
		t.Fatal("a lone plain item was copied before its write")
	}
}

func lens(ws []string) []int {
	n := make([]int, len(ws))
	for i, w := range ws {
		n[i] = len(w)
	}
	return n
}

// captureWriter keeps the slices it is given.
type captureWriter struct{ got [][]byte }

func (w *captureWriter) Write(b []byte) (int, error) {
	w.got = append(w.got, b)
	return len(b), nil
}

// TestPushPreparedBounded: a burst of prepared stanzas over the queue's
// bound is refused whole, counted in bytes as written.
func TestPushPreparedBounded(t *testing.T) {
	w := &recWriter{got: make(chan struct{}, 1)}
	p := &prepared{prefix: []byte(`<presence to="`), suffix: []byte(`"/>`)}
	to := []byte("a@b/c")
	size := len(p.prefix) + len(to) + len(p.suffix)
	q := newOutQueue(w, 3*size, nil) // not started: nothing is written
	if !q.pushPrepared(false, to, p, p) {
		t.Fatal("two stanzas refused under the bound")
	}
	if q.pushPrepared(false, to, p, p) {
		t.Fatal("two more accepted over the bound")
	}
	if q.items.Len() != 2 || q.bytes != 2*size {
		t.Fatalf("queued %d items, %d bytes; want 2, %d", q.items.Len(), q.bytes, 2*size)
	}
	q.start(nil)
	w.waitFor(t, `<presence to="a@b/c"/><presence to="a@b/c"/>`)
}
