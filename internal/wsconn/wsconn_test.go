package wsconn

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// lines is a test framer: a message is a line, output is cut at '\n'.
type lines struct{ buf []byte }

func (l *lines) Type() websocket.MessageType { return websocket.MessageText }

func (l *lines) In(typ websocket.MessageType, msg []byte, tooBig bool) ([]byte, error) {
	if tooBig {
		return nil, &ProtocolError{Status: websocket.StatusMessageTooBig, Reason: "too big"}
	}
	return append(msg, '\n'), nil
}

func (l *lines) Out(p []byte) [][]byte {
	l.buf = append(l.buf, p...)
	var out [][]byte
	for {
		i := strings.IndexByte(string(l.buf), '\n')
		if i < 0 {
			return out
		}
		out = append(out, append([]byte(nil), l.buf[:i]...))
		l.buf = l.buf[i+1:]
	}
}

// pair serves one Conn and returns it with the client's end.
func pair(t *testing.T, max int64) (*Conn, *websocket.Conn) {
	t.Helper()
	got := make(chan *Conn, 1)
	done := make(chan struct{})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		got <- New(ws, &lines{}, max, nil, TCPAddr(r.RemoteAddr))
		<-done
	}))
	t.Cleanup(func() { close(done); hs.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.CloseNow() })
	select {
	case c := <-got:
		t.Cleanup(func() { c.Close() })
		return c, cl
	case <-ctx.Done():
		t.Fatal("no server side")
		return nil, nil
	}
}

func write(t *testing.T, cl *websocket.Conn, s string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		t.Fatal(err)
	}
}

// TestReadDeadline: a read that times out reports a timeout and leaves
// the connection usable, as on TCP; moving the deadline wakes a blocked
// read; messages come through framed, in order, across small reads.
func TestReadDeadline(t *testing.T) {
	c, cl := pair(t, 1024)
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	var ne net.Error
	if _, err := c.Read(make([]byte, 10)); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past the deadline: %v, want a timeout", err)
	}
	c.SetReadDeadline(time.Time{})
	write(t, cl, "hello")
	write(t, cl, "world")
	var got []byte
	buf := make([]byte, 3)
	for len(got) < len("hello\nworld\n") {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	if string(got) != "hello\nworld\n" {
		t.Fatalf("read %q", got)
	}
	errc := make(chan error, 1)
	go func() { _, err := c.Read(buf); errc <- err }()
	c.SetReadDeadline(time.Now()) // as IRC's quit does
	select {
	case err := <-errc:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("woken read: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a blocked read did not see its deadline move")
	}
}

// TestWriteAndClose: writes are cut into messages; the client's close is
// io.EOF; a message over the limit ends the intake with the framer's
// status.
func TestWriteAndClose(t *testing.T) {
	c, cl := pair(t, 8)
	if _, err := c.Write([]byte("one\ntw")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("o\n")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, want := range []string{"one", "two"} {
		_, b, err := cl.Read(ctx)
		if err != nil || string(b) != want {
			t.Fatalf("client read %q, %v; want %q", b, err, want)
		}
	}
	write(t, cl, "much too long")
	if _, err := c.Read(make([]byte, 10)); err == nil || err.Error() != "too big" {
		t.Fatalf("oversized message: %v", err)
	}
	c.Close()
	if _, _, err := cl.Read(ctx); websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
		t.Fatalf("client sees %v, want status 1009", err)
	}

	c2, cl2 := pair(t, 8)
	cl2.Close(websocket.StatusNormalClosure, "")
	if _, err := c2.Read(make([]byte, 10)); !errors.Is(err, io.EOF) {
		t.Fatalf("read after the client closed: %v, want EOF", err)
	}
}
