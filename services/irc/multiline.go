package irc

import (
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ergochat/irc-go/ircmsg"
	"github.com/ergochat/irc-go/ircreader"
)

// IRCv3 draft/multiline (https://ircv3.net/specs/extensions/multiline) on
// top of client-initiated batches (https://ircv3.net/specs/extensions/batch):
//
//   - receiving: BATCH +ref draft/multiline <target>, PRIVMSG or NOTICE
//     lines tagged batch=ref (draft/multiline-concat joins a line to the
//     previous one without a newline), BATCH -ref. The lines become ONE
//     message to the core, bounded by max-bytes and max-lines.
//   - sending: a message whose body renders as several lines goes to
//     clients with draft/multiline (and batch) as one draft/multiline batch
//     (deliver.go, messageLines); other clients get separate lines.
//
// The open batch is read by the BATCH handler itself, on the connection's
// reader goroutine, until BATCH -ref (or a time limit): its state lives on
// the handler's stack, so it needs no field on the connection and nothing
// to clean up when the connection ends. Lines of other commands sent while
// the batch is open are handled as usual.
//
// Left out: the line composition a client chose (where it split a long
// line with draft/multiline-concat) is not stored; the core keeps the
// joined text and the door re-splits it for each reader. Client-only tags
// on the opening BATCH (+draft/reply…) are dropped: the core stores none.
// Client batch types other than draft/multiline are refused.

const (
	multilineMaxBytes = 4096
	multilineMaxLines = 32
	// multilineCapValue is the draft/multiline value in CAP LS 302.
	multilineCapValue = "max-bytes=4096,max-lines=32"
	// multilineTimeout bounds how long a client may keep a batch open.
	multilineTimeout = 30 * time.Second
	// maxIgnoredBatches bounds the refused batches whose lines are being
	// skipped while a multiline batch is open.
	maxIgnoredBatches = 8
	concatTag         = "draft/multiline-concat"
)

// batchFail is a FAIL BATCH reply.
type batchFail struct {
	code    string
	context []string
	text    string
}

func (f *batchFail) send(r *request) {
	params := append([]string{"BATCH", f.code}, f.context...)
	r.send(ircmsg.MakeMessage(nil, r.c.srv.cfg.ServerName, "FAIL", append(params, f.text)...))
}

// mlLine is one line of a multiline batch.
type mlLine struct {
	text   string
	concat bool
}

// mlBatch collects a client's multiline batch.
type mlBatch struct {
	target string // as the client named it on BATCH +
	verb   string // PRIVMSG or NOTICE, set by the first line
	lines  []mlLine
	bytes  int // combined message length, joining newlines included
	failed *batchFail
}

// add appends one PRIVMSG/NOTICE line of the batch. It returns the
// failure the first time the batch breaks a rule; later lines are ignored.
func (b *mlBatch) add(verb, target, text string, concat bool) *batchFail {
	if b.failed != nil {
		return nil
	}
	switch {
	case verb != "PRIVMSG" && verb != "NOTICE":
		return b.fail(&batchFail{"MULTILINE_INVALID", nil, "A multiline batch holds PRIVMSG or NOTICE lines only, not " + verb})
	case b.verb != "" && verb != b.verb:
		return b.fail(&batchFail{"MULTILINE_INVALID", nil, "Invalid multiline batch: it mixes PRIVMSG and NOTICE"})
	case fold(target) != fold(b.target):
		return b.fail(&batchFail{"MULTILINE_INVALID_TARGET", []string{b.target, target}, "Invalid multiline target: every line must go to the batch's target"})
	case concat && text == "":
		return b.fail(&batchFail{"MULTILINE_INVALID", nil, "Invalid multiline batch with concatenated blank line"})
	}
	b.verb = verb
	if len(b.lines) > 0 && !concat {
		b.bytes++ // the joining line feed
	}
	b.bytes += len(text)
	b.lines = append(b.lines, mlLine{text: text, concat: concat})
	if len(b.lines) > multilineMaxLines {
		return b.fail(&batchFail{"MULTILINE_MAX_LINES", []string{strconv.Itoa(multilineMaxLines)}, "Multiline batch max-lines exceeded"})
	}
	if b.bytes > multilineMaxBytes {
		return b.fail(&batchFail{"MULTILINE_MAX_BYTES", []string{strconv.Itoa(multilineMaxBytes)}, "Multiline batch max-bytes exceeded"})
	}
	return nil
}

func (b *mlBatch) fail(f *batchFail) *batchFail {
	b.failed = f
	b.lines = nil
	return f
}

// body joins the batch's lines into the message: a line feed between
// lines, nothing before a concat line.
func (b *mlBatch) body() (string, *batchFail) {
	if b.failed != nil {
		return "", b.failed
	}
	if len(b.lines) == 0 {
		return "", &batchFail{"MULTILINE_INVALID", nil, "Invalid multiline batch: it holds no line"}
	}
	var sb strings.Builder
	sb.Grow(b.bytes)
	blank := true
	for i, l := range b.lines {
		if i > 0 && !l.concat {
			sb.WriteByte('\n')
		}
		sb.WriteString(l.text)
		if strings.TrimSpace(l.text) != "" {
			blank = false
		}
	}
	if blank {
		return "", &batchFail{"MULTILINE_INVALID", nil, "Invalid multiline batch with blank lines only"}
	}
	return sb.String(), nil
}

// handleBatch handles a client's BATCH: it reads the batch's lines up to
// BATCH -ref, then sends the multiline message.
func handleBatch(r *request) {
	c := r.c
	ref := r.msg.Params[0]
	if len(ref) < 2 || ref[0] != '+' {
		if len(ref) > 1 && ref[0] == '-' {
			(&batchFail{"MULTILINE_INVALID", []string{ref[1:]}, "No open batch with that reference (it was refused, or not closed in time)"}).send(r)
			return
		}
		(&batchFail{"MULTILINE_INVALID", nil, "A batch reference is +ref to open a batch or -ref to close it"}).send(r)
		return
	}
	ref = ref[1:]
	var refused *batchFail
	kind := ""
	if len(r.msg.Params) > 1 {
		kind = r.msg.Params[1]
	}
	b := &mlBatch{}
	switch {
	case kind != "draft/multiline":
		refused = &batchFail{"MULTILINE_INVALID", []string{ref}, "Only draft/multiline batches are accepted from clients"}
	case !c.hasCap("draft/multiline") || !c.hasCap("batch"):
		refused = &batchFail{"MULTILINE_INVALID", []string{ref}, "Enable the batch and draft/multiline capabilities before sending a multiline batch"}
	case len(r.msg.Params) < 3 || r.msg.Params[2] == "" || strings.Contains(r.msg.Params[2], ","):
		refused = &batchFail{"MULTILINE_INVALID", []string{ref}, "A multiline batch names exactly one target: BATCH +ref draft/multiline <target>"}
	case strings.EqualFold(r.msg.Params[2], "NickServ"):
		refused = &batchFail{"MULTILINE_INVALID_TARGET", []string{r.msg.Params[2], r.msg.Params[2]}, "Send NickServ one command per line, without a multiline batch"}
	default:
		b.target = r.msg.Params[2]
	}
	b.failed = refused
	// The reply (FAIL or the echo) comes when the batch ends, labelled
	// then: the opening line gets no ACK of its own.
	label := r.label
	r.label = ""
	closed, timedOut := c.readBatch(ref, b)
	r.label = label
	switch {
	case b.failed != nil && (closed || timedOut):
		b.failed.send(r)
		return
	case timedOut:
		(&batchFail{"MULTILINE_INVALID", []string{ref}, "Multiline batch not closed within " + multilineTimeout.String() + "; it was discarded"}).send(r)
		return
	case !closed:
		return // the connection ended
	}
	body, fail := b.body()
	if fail != nil {
		fail.send(r)
		return
	}
	n := len(r.lines)
	sendOne(r, b.verb, b.target, body)
	labelMultilineEcho(r, n)
}

// readBatch reads the client's lines until BATCH -ref, adding the lines
// tagged batch=ref to b (a rule broken is left in b.failed) and handling
// the others as usual. It reports whether the batch was closed, or else
// whether it timed out (if not, the connection ended).
func (c *conn) readBatch(ref string, b *mlBatch) (closed, timedOut bool) {
	deadline := time.Now().Add(multilineTimeout)
	if c.pk != nil { // poll mode: the batch's reads wait (poll.go)
		c.blockReads = true
		defer func() {
			c.blockReads = false
			if !c.isDead() {
				c.nc.SetReadDeadline(time.Time{})
			}
		}()
	}
	ignored := map[string]bool{}
	server := c.srv.cfg.ServerName
	// Through an interface: a direct call would make an initialization
	// cycle (commands -> BATCH -> handleLine -> commands).
	var other lineHandler = c
	failNow := func(f *batchFail) {
		if f == nil {
			return
		}
		params := append([]string{"BATCH", f.code}, f.context...)
		c.sendLine(ircmsg.MakeMessage(nil, server, "FAIL", append(params, f.text)...))
	}
	for {
		if c.isDead() {
			return false, false
		}
		c.nc.SetReadDeadline(deadline)
		raw, err := c.rd.ReadLine()
		if err != nil {
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				return false, true
			case errors.Is(err, ircreader.ErrReadQ):
				c.numeric(ERR_INPUTTOOLONG, "Input line too long")
				c.kill("Input line too long")
			case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.Is(err, os.ErrDeadlineExceeded):
				c.kill("Connection closed")
			default:
				c.kill("Read error")
			}
			return false, false
		}
		line := string(raw)
		msg, perr := ircmsg.ParseLineStrict(line, true, maxLineBody)
		if perr != nil || !utf8.ValidString(line) {
			c.throttle()
			other.handleLine(line) // replies with the parse error
			continue
		}
		cmd := strings.ToUpper(msg.Command)
		_, tag := msg.GetTag("batch")
		if cmd == "BATCH" && len(msg.Params) > 0 {
			p := msg.Params[0]
			switch {
			case p == "-"+ref:
				return true, false
			case strings.HasPrefix(p, "-") && ignored[p[1:]]:
				delete(ignored, p[1:])
				continue
			case strings.HasPrefix(p, "+") && len(p) > 1:
				c.throttle()
				failNow(&batchFail{"MULTILINE_INVALID", []string{p[1:]}, "Close multiline batch " + ref + " before opening another"})
				if len(ignored) < maxIgnoredBatches {
					ignored[p[1:]] = true
				}
				continue
			}
		}
		switch {
		case tag == ref && tag != "":
			if b.failed != nil {
				c.throttle() // the rest of a refused batch: skipped, at the usual pace
				continue
			}
			target, text := "", ""
			if len(msg.Params) > 0 {
				target = msg.Params[0]
			}
			if len(msg.Params) > 1 {
				text = msg.Params[1]
			}
			b.add(cmd, target, text, msg.HasTag(concatTag))
		case tag != "" && ignored[tag]:
			c.throttle()
		default:
			c.throttle()
			other.handleLine(line)
		}
	}
}

// lineHandler runs one line from the client (*conn.handleLine).
type lineHandler interface{ handleLine(line string) }

// labelMultilineEcho sends an echoed multiline batch with the client's
// label on its opening BATCH line, as the multiline spec asks, instead of
// inside a labeled-response batch. from is where the echo starts in
// r.lines; it is used only when the echo is all the reply.
func labelMultilineEcho(r *request, from int) {
	if r.label == "" || from != 0 || len(r.lines) < 2 {
		return
	}
	first := r.lines[0]
	if first.Command != "BATCH" || len(first.Params) < 2 || first.Params[1] != "draft/multiline" {
		return
	}
	last := r.lines[len(r.lines)-1]
	if last.Command != "BATCH" || len(last.Params) < 1 || last.Params[0] != "-"+first.Params[0][1:] {
		return
	}
	r.lines[0].SetTag("label", r.label)
	for _, m := range r.lines {
		r.c.sendLine(m)
	}
	r.lines = nil
	r.done = true
}

// strayBatchLine drops a PRIVMSG or NOTICE tagged with a batch that is not
// open (refused, timed out, or never opened) rather than sending it as a
// line of its own, and tells the client once per line.
func strayBatchLine(r *request) bool {
	present, ref := r.msg.GetTag("batch")
	if !present {
		return false
	}
	(&batchFail{"MULTILINE_INVALID", []string{ref}, "No open multiline batch with that reference: the line was not sent"}).send(r)
	return true
}

// bodyPiece is one protocol line of a message body: a line of the body,
// or a piece of a long line (concat: it continues the previous piece).
type bodyPiece struct {
	text   string
	concat bool
}

// splitBody cuts a message body into lines, and lines longer than n bytes
// into pieces, preferably after a space, never inside a character.
func splitBody(body string, n int) []bodyPiece {
	var out []bodyPiece
	for _, line := range strings.Split(strings.ReplaceAll(body, "\r\n", "\n"), "\n") {
		if line == "" {
			out = append(out, bodyPiece{})
			continue
		}
		for i, part := range splitLine(line, n) {
			out = append(out, bodyPiece{text: part, concat: i > 0})
		}
	}
	return out
}

// splitLine cuts s into pieces of at most n bytes: after the last space
// in the second half of the window if there is one (the space stays at
// the end of the piece, as the multiline spec recommends), else at the
// last character boundary.
func splitLine(s string, n int) []string {
	n = max(n, 8)
	var out []string
	for len(s) > n {
		cut := strings.LastIndexByte(s[:n], ' ') + 1
		if cut <= n/2 {
			cut = n
			for cut > 0 && !utf8.RuneStart(s[cut]) {
				cut--
			}
			if cut == 0 {
				cut = n
			}
		}
		out = append(out, s[:cut])
		s = s[cut:]
	}
	return append(out, s)
}

// multilineBatch renders pieces of one message as a draft/multiline batch
// from source to target: the message's tags on the opening BATCH line, the
// pieces as verb lines tagged batch (and draft/multiline-concat), then
// BATCH -. An action is framed once around the whole message.
func multilineBatch(tags map[string]string, source, verb, target string, pieces []bodyPiece, action bool) []ircmsg.Message {
	id := batchID()
	out := make([]ircmsg.Message, 0, len(pieces)+2)
	out = append(out, ircmsg.MakeMessage(tags, source, "BATCH", "+"+id, "draft/multiline", target))
	for i, p := range pieces {
		text := p.text
		if action && i == 0 {
			text = "\x01ACTION " + text
		}
		if action && i == len(pieces)-1 {
			text += "\x01"
		}
		lt := map[string]string{"batch": id}
		if p.concat {
			lt[concatTag] = ""
		}
		out = append(out, ircmsg.MakeMessage(lt, source, verb, target, text))
	}
	return append(out, ircmsg.MakeMessage(nil, source, "BATCH", "-"+id))
}
