package irc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/ergochat/irc-go/ircreader"

	"chatbox/internal/netpoll"
)

// chunkSource gives its chunks one Read at a time, netpoll.ErrWouldBlock
// between two chunks (the socket empty), then io.EOF.
type chunkSource struct {
	chunks  [][]byte
	blocked bool
}

func (s *chunkSource) Read(p []byte) (int, error) {
	if s.blocked {
		s.blocked = false
		return 0, netpoll.ErrWouldBlock
	}
	if len(s.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.chunks[0])
	if s.chunks[0] = s.chunks[0][n:]; len(s.chunks[0]) == 0 {
		s.chunks = s.chunks[1:]
		s.blocked = true
	}
	return n, nil
}

// readAll reads lines until an error other than ErrWouldBlock, and
// reports them with that error.
func readAll(rd lineReader) ([]string, error) {
	var lines []string
	for range 100000 {
		line, err := rd.ReadLine()
		if errors.Is(err, netpoll.ErrWouldBlock) {
			continue
		}
		if err != nil {
			return lines, err
		}
		lines = append(lines, string(line))
	}
	return lines, errors.New("no end")
}

// sameAsIRCReader checks that idleReader reads data, cut into chunks,
// as ircreader.Reader reads it whole.
func sameAsIRCReader(t *testing.T, data []byte, cuts []int, max int) {
	t.Helper()
	var want ircreader.Reader
	want.Initialize(bytes.NewReader(data), max/2, max)
	wantLines, wantErr := readAll(&want)

	var chunks [][]byte
	rest := data
	for _, c := range cuts {
		if c <= 0 || len(rest) == 0 {
			continue
		}
		c = min(c, len(rest))
		chunks = append(chunks, rest[:c])
		rest = rest[c:]
	}
	if len(rest) > 0 {
		chunks = append(chunks, rest)
	}
	rd := &idleReader{src: &chunkSource{chunks: chunks}, max: max}
	lines, err := readAll(rd)
	if fmt.Sprint(lines) != fmt.Sprint(wantLines) || !errors.Is(err, wantErr) {
		t.Fatalf("data %q cut %v:\n got %q, %v\nwant %q, %v", data, cuts, lines, err, wantLines, wantErr)
	}
	if rd.buf != nil {
		t.Fatalf("data %q: buffer kept after the end", data)
	}
}

func TestIdleReaderLikeIRCReader(t *testing.T) {
	long := bytes.Repeat([]byte("x"), 100)
	cases := [][]byte{
		[]byte(""),
		[]byte("PING a\r\n"),
		[]byte("PING a\nPING b\r\nPING c"),
		[]byte("\r\n\n\r\r\n"),
		[]byte("NICK a\r\nUSER a 0 * :a\r\nJOIN #x\r\n"),
		append(append([]byte("A "), long...), "\r\nB\r\n"...),
		append(append([]byte("A "), bytes.Repeat(long, 3)...), "\n"...), // over max: ErrReadQ
		[]byte("tail without newline"),
		[]byte("x\r"),
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, data := range cases {
		sameAsIRCReader(t, data, nil, 128)
		for cut := 1; cut <= len(data); cut++ {
			cuts := make([]int, 0, len(data)/cut+1)
			for range len(data)/cut + 1 {
				cuts = append(cuts, cut)
			}
			sameAsIRCReader(t, data, cuts, 128)
		}
		for range 50 {
			cuts := make([]int, 20)
			for i := range cuts {
				cuts[i] = 1 + rng.IntN(40)
			}
			sameAsIRCReader(t, data, cuts, 128)
		}
	}
}

// TestIdleReaderHoldsNoBufferWhenEmpty: between bursts a silent client
// holds no buffer; a partial line keeps one.
func TestIdleReaderHoldsNoBufferWhenEmpty(t *testing.T) {
	src := &chunkSource{chunks: [][]byte{[]byte("PING a\r\nPI"), []byte("NG b\r\n"), []byte("PING c\r\n")}}
	rd := &idleReader{src: src, max: maxReadLine}
	expect := func(want string, wantErr error) {
		t.Helper()
		line, err := rd.ReadLine()
		if string(line) != want || !errors.Is(err, wantErr) {
			t.Fatalf("ReadLine = %q, %v; want %q, %v", line, err, want, wantErr)
		}
	}
	expect("PING a", nil)
	expect("", netpoll.ErrWouldBlock)
	if rd.buf == nil {
		t.Fatal("a partial line was dropped")
	}
	expect("PING b", nil)
	expect("", netpoll.ErrWouldBlock)
	if rd.buf != nil {
		t.Fatal("an empty reader holds a buffer")
	}
	expect("PING c", nil)
	expect("", netpoll.ErrWouldBlock)
	expect("", io.EOF)
}

func FuzzIdleReader(f *testing.F) {
	f.Add([]byte("PING a\r\nPING b\n"), []byte{3, 1, 7})
	f.Add([]byte("A\r\r\n\nB"), []byte{1})
	f.Add(bytes.Repeat([]byte("y"), 300), []byte{100, 100})
	f.Fuzz(func(t *testing.T, data, cutBytes []byte) {
		if len(data) > 4096 || len(cutBytes) > 64 {
			return
		}
		cuts := make([]int, len(cutBytes))
		for i, c := range cutBytes {
			cuts[i] = int(c)
		}
		sameAsIRCReader(t, data, cuts, 256)
	})
}
