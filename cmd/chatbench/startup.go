package main

// The start-up measurement (issue 10's "ready in ≤ 300 ms with 10 k
// accounts and 1 M messages"): --seed fills a new data directory through
// the store's API, --startup times the real chatbox binary from exec to
// ready (READY=1 on $NOTIFY_SOCKET, sd_notify(3)) and to its IRC listener's
// first answer, a few times over the same directory.

import (
	"bufio"
	"context"
	"encoding/base32"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"chatbox/appliance"
	"chatbox/services/chat"
	"chatbox/services/store"
)

// Bounds on what --seed and --startup may ask for.
const (
	maxSeedAccounts = 1_000_000
	maxSeedMessages = 100_000_000
	maxSeedRooms    = 1000
	maxStartupRuns  = 100
)

// seedReport is --seed's JSON line.
type seedReport struct {
	Data          string  `json:"data"`
	Accounts      int     `json:"accounts"`
	Rooms         int     `json:"rooms"`
	Messages      int     `json:"messages"`
	DirectShare   float64 `json:"direct_share"`
	DBBytes       int64   `json:"db_bytes"`
	AccountsMS    float64 `json:"accounts_ms"`
	MessagesMS    float64 `json:"messages_ms"`
	MessagesPerS  float64 `json:"messages_per_s"`
	DiskWriteB    int64   `json:"disk_write_bytes,omitempty"`
	DiskBPerMsg   float64 `json:"disk_bytes_per_message,omitempty"`
	SchemaVersion int     `json:"schema_version"`
}

// seedStore creates a new data directory o.seed holding o.seedAccounts
// accounts (o.account's names and passwords, the first one an admin),
// o.seedRooms rooms (o.room and r001 …) and o.seedMessages messages
// written through store.AppendMessage by 64 concurrent writers, as the
// core would (group commits): one in ten is a direct message between two
// seeded accounts, the others go to a room; times are spread over the
// 30 days before now, in seq order.
func seedStore(ctx context.Context, o *options, stdout io.Writer, progress func(string)) error {
	if _, err := os.Stat(filepath.Join(o.seed, appliance.DBFile)); err == nil {
		return fmt.Errorf("--seed %s: the directory already holds a database; give a new directory", o.seed)
	}
	if err := os.MkdirAll(o.seed, 0o700); err != nil {
		return fmt.Errorf("--seed %s: %w", o.seed, err)
	}
	path := filepath.Join(o.seed, appliance.DBFile)
	st, err := store.Open(ctx, path, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	now := time.Now().UTC()
	rep := seedReport{Data: o.seed, Accounts: o.seedAccounts, Rooms: o.seedRooms, Messages: o.seedMessages,
		DirectShare: 0.1, SchemaVersion: store.SchemaVersion()}

	rooms := []string{o.room}
	for i := 1; len(rooms) < o.seedRooms; i++ {
		rooms = append(rooms, fmt.Sprintf("r%03d", i))
	}
	for _, name := range rooms {
		err := st.CreateRoom(ctx, chat.Room{Name: name, Created: now, Settings: chat.DefaultRoomSettings()})
		if err != nil {
			return fmt.Errorf("seed room %s: %w", name, err)
		}
	}

	// Accounts: PBKDF2 is the cost, so one worker per CPU.
	t0 := time.Now()
	var next, made atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	for range max(1, min(8, runtime.NumCPU())) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= o.seedAccounts || ctx.Err() != nil {
					return
				}
				name, pw := o.account(i)
				cred, err := chat.NewCredentials(pw, 0)
				if err == nil {
					err = st.CreateAccount(ctx, chat.Account{Name: name, Created: now, Admin: i == 0}, cred)
				}
				if err != nil {
					select {
					case errs <- fmt.Errorf("seed account %s: %w", name, err):
					default:
					}
					return
				}
				if n := made.Add(1); progress != nil && n%500 == 0 {
					progress(fmt.Sprintf("accounts %d/%d", n, o.seedAccounts))
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
	}
	if err := context.Cause(ctx); err != nil {
		return err
	}
	rep.AccountsMS = ms(time.Since(t0))

	// Messages, through the group-commit writer.
	w0, _ := readProc(os.Getpid())
	t0 = time.Now()
	span := 30 * 24 * time.Hour
	first := now.Add(-span)
	step := span / time.Duration(max(1, o.seedMessages))
	body := "a typical line of chat, about eighty bytes long, give or take a word or two."
	next.Store(0)
	made.Store(0)
	for w := range 64 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 10))
			for {
				i := int(next.Add(1) - 1)
				if i >= o.seedMessages || ctx.Err() != nil {
					return
				}
				fi := r.IntN(o.seedAccounts)
				from, _ := o.account(fi)
				at := first.Add(time.Duration(i) * step)
				// As the core makes them (chat's newMessageID): 48 bits
				// of milliseconds, big-endian, then random bits.
				var id [16]byte
				binary.BigEndian.PutUint64(id[:8], uint64(at.UnixMilli())<<16)
				binary.LittleEndian.PutUint64(id[6:14], r.Uint64())
				binary.LittleEndian.PutUint16(id[14:], uint16(r.Uint32()))
				m := &chat.Message{
					ID:   seedIDEncoding.EncodeToString(id[:]),
					Time: at, From: from, FromNick: from,
					Kind: chat.KindNormal, Body: body,
				}
				if i%10 == 9 && o.seedAccounts > 1 {
					m.To, _ = o.account((fi + 1 + r.IntN(o.seedAccounts-1)) % o.seedAccounts)
				} else {
					m.Room = rooms[r.IntN(len(rooms))]
				}
				if err := st.AppendMessage(ctx, m, nil); err != nil {
					select {
					case errs <- fmt.Errorf("seed message %d: %w", i, err):
					default:
					}
					return
				}
				if n := made.Add(1); progress != nil && n%10000 == 0 {
					progress(fmt.Sprintf("messages %d/%d", n, o.seedMessages))
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
	}
	if err := context.Cause(ctx); err != nil {
		return err
	}
	el := time.Since(t0)
	rep.MessagesMS = ms(el)
	rep.MessagesPerS = round(float64(o.seedMessages)/el.Seconds(), 0)
	if w1, err := readProc(os.Getpid()); err == nil && w0.writeBytes >= 0 && w1.writeBytes >= 0 && o.seedMessages > 0 {
		rep.DiskWriteB = w1.writeBytes - w0.writeBytes
		rep.DiskBPerMsg = round(float64(rep.DiskWriteB)/float64(o.seedMessages), 0)
	}
	if err := st.Close(); err != nil {
		return err
	}
	rep.DBBytes = dbBytes(path)
	if progress != nil {
		progress("")
	}
	return printJSONOrText(stdout, o.json, rep, func(w io.Writer) {
		fmt.Fprintf(w, "seeded %s: %d accounts (%.1f s), %d rooms, %d messages (%.1f s, %.0f/s, %.0f bytes written each), database %.1f MB\n",
			rep.Data, rep.Accounts, rep.AccountsMS/1e3, rep.Rooms, rep.Messages, rep.MessagesMS/1e3, rep.MessagesPerS,
			rep.DiskBPerMsg, float64(rep.DBBytes)/1e6)
	})
}

// seedIDEncoding spells message IDs as the core does (26 characters).
var seedIDEncoding = base32.NewEncoding("234567abcdefghijklmnopqrstuvwxyz").WithPadding(base32.NoPadding)

// dbBytes is the size of the database file and its WAL.
func dbBytes(path string) int64 {
	var n int64
	for _, p := range []string{path, path + "-wal"} {
		if fi, err := os.Stat(p); err == nil {
			n += fi.Size()
		}
	}
	return n
}

func printJSONOrText(w io.Writer, asJSON bool, v any, text func(io.Writer)) error {
	if asJSON {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(w, string(b))
		return err
	}
	text(w)
	return nil
}

// startupReport is --startup's JSON line. Times are from exec.
type startupReport struct {
	Data          string    `json:"data"`
	DBBytes       int64     `json:"db_bytes"`
	Runs          int       `json:"runs"`
	Cold          bool      `json:"cold"`            // --cold: the database dropped from the page cache before each start
	WarmupReadyMS float64   `json:"warmup_ready_ms"` // the unmeasured first start (it may write the TLS files)
	ReadyMS       []float64 `json:"ready_ms"`        // READY=1 on $NOTIFY_SOCKET, each run
	AnswerMS      []float64 `json:"answer_ms"`       // first line back from the IRC listener, each run
	ReadyP50MS    float64   `json:"ready_p50_ms"`
	ReadyMaxMS    float64   `json:"ready_max_ms"`
	CPUReadyP50MS float64   `json:"cpu_ready_p50_ms"`
	AnswerP50MS   float64   `json:"answer_p50_ms"`
	CPUReadyMS    []float64 `json:"cpu_ready_ms"`     // the server's CPU time (user+system) until ready, each run
	ReadReadyB    int64     `json:"read_ready_bytes"` // what the server read (rchar, page cache included) until ready, last run
	RSSReadyKB    int64     `json:"rss_ready_kb"`     // the server's VmRSS at ready, last run
	StopMS        float64   `json:"stop_ms"`          // SIGTERM to exit, last run
}

// measureStartup starts chatbox (o.chatbox) over data directory o.startup
// once to warm up, then o.runs times, each until it is ready and has
// answered on IRC, and stops it with SIGTERM.
func measureStartup(ctx context.Context, o *options, stdout io.Writer, progress func(string)) error {
	path := filepath.Join(o.startup, appliance.DBFile)
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("--startup %s: no database there (%v): seed one with --seed", o.startup, err)
	}
	rep := startupReport{Data: o.startup, Runs: o.runs, Cold: o.cold}
	for i := 0; i <= o.runs; i++ {
		if progress != nil {
			progress(fmt.Sprintf("start %d/%d", i, o.runs))
		}
		if o.cold {
			if err := dropFromCache(path, path+"-wal"); err != nil {
				return fmt.Errorf("--cold: %w", err)
			}
		}
		r, err := startOnce(ctx, o)
		if err != nil {
			return fmt.Errorf("start %d: %w", i, err)
		}
		if i == 0 {
			rep.WarmupReadyMS = ms(r.ready)
			continue
		}
		rep.ReadyMS = append(rep.ReadyMS, ms(r.ready))
		rep.AnswerMS = append(rep.AnswerMS, ms(r.answer))
		rep.CPUReadyMS = append(rep.CPUReadyMS, ms(r.cpu))
		rep.RSSReadyKB, rep.ReadReadyB, rep.StopMS = r.rssKB, r.read, ms(r.stop)
	}
	if progress != nil {
		progress("")
	}
	rep.DBBytes = dbBytes(path)
	rep.ReadyP50MS, rep.ReadyMaxMS = median(rep.ReadyMS), slices.Max(rep.ReadyMS)
	rep.AnswerP50MS, rep.CPUReadyP50MS = median(rep.AnswerMS), median(rep.CPUReadyMS)
	return printJSONOrText(stdout, o.json, rep, func(w io.Writer) {
		cache := "warm"
		if rep.Cold {
			cache = "cold"
		}
		fmt.Fprintf(w, "chatbox over %s (database %.1f MB, %s cache): ready in %.1f ms (median of %d; max %.1f; first start %.1f) using %.1f ms of CPU and reading %.1f MB, IRC answers at %.1f ms, RSS at ready %d KB, stops in %.1f ms\n",
			rep.Data, float64(rep.DBBytes)/1e6, cache, rep.ReadyP50MS, rep.Runs, rep.ReadyMaxMS, rep.WarmupReadyMS,
			rep.CPUReadyP50MS, float64(rep.ReadReadyB)/1e6, rep.AnswerP50MS, rep.RSSReadyKB, rep.StopMS)
	})
}

// dropFromCache asks the kernel to drop the files' clean pages from the
// page cache (POSIX_FADV_DONTNEED), so that the next start reads them from
// the disk as after a reboot, without touching the rest of the machine's
// cache. A missing file is skipped.
func dropFromCache(paths ...string) error {
	for _, p := range paths {
		f, err := os.Open(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		err = f.Sync() // dirty pages are not dropped
		if err == nil {
			err = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
		}
		f.Close()
		if err != nil {
			return fmt.Errorf("drop %s from the page cache: %w", p, err)
		}
	}
	return nil
}

func median(v []float64) float64 {
	s := slices.Sorted(slices.Values(v))
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

type startResult struct {
	ready, answer, stop, cpu time.Duration
	rssKB, read              int64
}

var ircListeningRe = regexp.MustCompile(`msg=listening door=irc addr=(\S+)`)

// startOnce runs chatbox over o.startup until it is ready and its IRC
// listener answered CAP LS, then stops it.
func startOnce(ctx context.Context, o *options) (res startResult, err error) {
	ctx, cancel := context.WithTimeout(ctx, o.startTimeout)
	defer cancel()
	sockDir, err := os.MkdirTemp("", "chatbench-notify")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(sockDir)
	sockPath := filepath.Join(sockDir, "notify")
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		return res, fmt.Errorf("notify socket: %w", err)
	}
	defer sock.Close()

	cmd := exec.Command(o.chatbox, "--data", o.startup,
		"--set", "domain=bench.local", "--set", "hw.backend=sim",
		"--set", "xmpp.listen=127.0.0.1:0", "--set", "xmpp.tls_listen=[]",
		"--set", "irc.plain_listen=127.0.0.1:0", "--set", "irc.tls_listen=[]",
		"--set", "web.listen=", "--set", "upload.listen=[]", "--set", "calls.listen=[]")
	cmd.Env = append(os.Environ(), "CHATBOX_CONFIG=", "CHATBOX_DATA=", "NOTIFY_SOCKET="+sockPath)
	cmd.Env = slices.DeleteFunc(cmd.Env, func(e string) bool { return strings.HasPrefix(e, "WATCHDOG_") })
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return res, err
	}
	var logMu sync.Mutex
	var logTail []string
	ircAddr := make(chan string, 1)
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("run %s: %w", o.chatbox, err)
	}
	exited := make(chan error, 1)
	logDone := make(chan struct{})
	go func() { // reads the log to its end, so the server never blocks on it
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			logMu.Lock()
			if logTail = append(logTail, line); len(logTail) > 20 {
				logTail = logTail[1:]
			}
			logMu.Unlock()
			if m := ircListeningRe.FindStringSubmatch(line); m != nil {
				select {
				case ircAddr <- m[1]:
				default:
				}
			}
		}
	}()
	go func() {
		<-logDone
		exited <- cmd.Wait()
	}()
	stopped := false
	defer func() {
		if !stopped {
			cmd.Process.Kill()
			<-exited
		}
		if err != nil {
			logMu.Lock()
			err = fmt.Errorf("%w; the server's last log lines:\n%s", err, strings.Join(logTail, "\n"))
			logMu.Unlock()
		}
	}()

	// READY=1 on the notify socket.
	readyC := make(chan error, 1)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := sock.ReadFromUnix(buf)
			if err != nil {
				readyC <- err
				return
			}
			for _, l := range strings.Split(string(buf[:n]), "\n") {
				if l == "READY=1" {
					readyC <- nil
					return
				}
			}
		}
	}()
	select {
	case err := <-readyC:
		if err != nil {
			return res, fmt.Errorf("notify socket: %w", err)
		}
		res.ready = time.Since(t0)
	case err := <-exited:
		stopped = true
		return res, fmt.Errorf("chatbox exited before it was ready: %v", err)
	case <-ctx.Done():
		return res, fmt.Errorf("chatbox not ready within %s", o.startTimeout)
	}
	if s, err := readProc(cmd.Process.Pid); err == nil {
		res.rssKB, res.cpu = s.rssKB, s.cpu
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", cmd.Process.Pid)); err == nil {
		res.read, _ = procField(b, "rchar:")
	}

	// The IRC listener's first answer.
	var addr string
	select {
	case addr = <-ircAddr:
	case <-ctx.Done():
		return res, errors.New("ready, but no IRC listening address in the log")
	}
	if _, err := loopbackAddr("irc", addr); err != nil {
		return res, err
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return res, fmt.Errorf("IRC listener: %w", err)
	}
	deadline, _ := ctx.Deadline()
	c.SetDeadline(deadline)
	if _, err := io.WriteString(c, "CAP LS 302\r\n"); err != nil {
		c.Close()
		return res, fmt.Errorf("IRC listener: %w", err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	c.Close()
	if err != nil {
		return res, fmt.Errorf("IRC listener: no answer to CAP LS: %w", err)
	}
	if !strings.Contains(line, "CAP") {
		return res, fmt.Errorf("IRC listener: answered %q to CAP LS", strings.TrimSpace(line))
	}
	res.answer = time.Since(t0)

	// Stop it.
	t1 := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return res, err
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			return res, fmt.Errorf("chatbox exited with %v after SIGTERM", err)
		}
		res.stop = time.Since(t1)
	case <-ctx.Done():
		return res, fmt.Errorf("chatbox still running %s after SIGTERM", o.startTimeout)
	}
	return res, nil
}
