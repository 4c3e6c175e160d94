package imagetest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The test boots dist/image/chatbox-qemu.img (image/build.sh qemu) in
// qemu-system-aarch64 with user-mode networking that forwards only
// 127.0.0.1 ports to the guest and lets no packet out (restrict=on), then:
//
//  1. waits until chatbox answers IRC (TLS, 6697) and XMPP (direct TLS,
//     5223) through the forwarded ports: boot-to-ready time is logged;
//  2. reboots the box through gokrazy's API and checks /perm kept chatbox's
//     data: the certificate authority made at first boot still signs the
//     server certificate (a lost /perm makes a new one);
//  3. performs an A/B update with gok update (image/build.sh with
//     GOK_UPDATE_URL) to a build with another version string, checks the
//     box runs it, and updates back to the first version.
//
// Each wait has a deadline; QEMU is killed when the test ends.

const (
	bootDeadline = 4 * time.Minute // TCG emulation on a 2-core machine
	guestIRC     = 6697
	guestXMPP    = 5223
	guestGokrazy = 8080 // image/build.sh's IMAGE_HTTP_PORT
)

func TestQEMUBoot(t *testing.T) {
	if os.Getenv("CHATBOX_IMAGE_TEST") != "1" {
		t.Skip("boots the SD image in QEMU: make image-test (CHATBOX_IMAGE_TEST=1)")
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dist := filepath.Join(repo, "dist", "image")
	img := filepath.Join(dist, "chatbox-qemu.img")
	version := readTrim(t, filepath.Join(dist, "chatbox-qemu.version"))
	password := readTrim(t, filepath.Join(dist, "gokrazy-password.txt"))
	firmware := "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd"
	for _, p := range []string{img, firmware} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%v (make image-test builds the image; Debian: apt-get install qemu-system-arm qemu-efi-aarch64 ipxe-qemu)", err)
		}
	}

	dir := t.TempDir()
	disk := filepath.Join(dir, "disk.img")
	if out, err := exec.Command("cp", "--sparse=always", img, disk).CombinedOutput(); err != nil {
		t.Fatalf("copy the image: %v: %s", err, out)
	}
	ircPort, xmppPort, gokPort := freePort(t), freePort(t), freePort(t)
	serial := filepath.Join(dir, "serial.log")
	netdev := fmt.Sprintf("user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:%d-:%d,hostfwd=tcp:127.0.0.1:%d-:%d,hostfwd=tcp:127.0.0.1:%d-:%d",
		ircPort, guestIRC, xmppPort, guestXMPP, gokPort, guestGokrazy)
	ctx, cancel := context.WithCancel(context.Background())
	qemu := exec.CommandContext(ctx, "qemu-system-aarch64",
		"-name", "chatbox-imagetest",
		"-machine", "virt,highmem=off", "-cpu", "cortex-a72", "-smp", "2", "-m", "1024",
		"-bios", firmware,
		"-drive", "file="+disk+",format=raw",
		"-device", "e1000,netdev=net0", "-netdev", netdev,
		"-display", "none", "-monitor", "none", "-serial", "file:"+serial)
	var qemuOut bytes.Buffer
	qemu.Stdout, qemu.Stderr = &qemuOut, &qemuOut
	start := time.Now()
	if err := qemu.Start(); err != nil {
		t.Fatalf("start qemu-system-aarch64: %v (Debian: apt-get install qemu-system-arm)", err)
	}
	qemuDone := make(chan error, 1)
	go func() { qemuDone <- qemu.Wait() }()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("chatbox's log on gokrazy:\n%s", gokrazyLog(gokPort, password))
		}
		cancel()
		<-qemuDone
		if t.Failed() {
			t.Logf("qemu output:\n%s", qemuOut.String())
			if b, err := os.ReadFile(serial); err == nil {
				t.Logf("serial console (last 4 KiB):\n%s", tail(b, 4096))
			}
		}
	})
	box := &vm{t: t, serial: serial, irc: ircPort, xmpp: xmppPort, done: qemuDone}

	// 1. First boot.
	box.waitBoots(1)
	ca := box.waitReady(version)
	t.Logf("first boot: chatbox answered IRC and XMPP %v after QEMU started", time.Since(start).Round(100*time.Millisecond))

	// 2. Reboot: /perm keeps the data.
	req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/reboot", gokPort), nil)
	req.SetBasicAuth("gokrazy", password)
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		t.Fatalf("reboot through gokrazy's API: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("reboot through gokrazy's API: %s", resp.Status)
	}
	rebooted := time.Now()
	box.waitBoots(2)
	if got := box.waitReady(version); got != ca {
		t.Fatalf("after a reboot the certificate authority is %s, was %s: /perm lost chatbox's data", got, ca)
	}
	t.Logf("reboot: ready again %v after the request; /perm kept the data (same CA %s)", time.Since(rebooted).Round(100*time.Millisecond), ca[:16])

	// 3. A/B update to a newer build and back.
	for i, v := range []string{version + "-ab", version} {
		sent := time.Now()
		cmd := exec.Command("bash", filepath.Join(repo, "image", "build.sh"), "qemu")
		cmd.Env = append(os.Environ(), "VERSION="+v,
			fmt.Sprintf("GOK_UPDATE_URL=http://gokrazy:%s@127.0.0.1:%d/", password, gokPort))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("gok update to %s: %v\n%s", v, err, out)
		}
		box.waitBoots(3 + i)
		if got := box.waitReady(v); got != ca {
			t.Fatalf("after the update to %s the certificate authority is %s, was %s", v, got, ca)
		}
		t.Logf("A/B update to %s: running it %v after gok update started", v, time.Since(sent).Round(100*time.Millisecond))
	}
}

type vm struct {
	t         *testing.T
	serial    string
	irc, xmpp int
	done      <-chan error
}

// waitBoots waits until the kernel started init n times in this VM (a
// reboot resets the guest in the same QEMU process).
func (v *vm) waitBoots(n int) {
	v.t.Helper()
	v.poll(fmt.Sprintf("boot %d (serial console)", n), func() error {
		b, _ := os.ReadFile(v.serial)
		if c := bytes.Count(b, []byte("Run /gokrazy/init as init process")); c < n {
			return fmt.Errorf("%d boots so far", c)
		}
		return nil
	})
}

// waitReady waits until chatbox answers IRC, reporting version, and XMPP;
// it returns the key id of the CA that signed the IRC certificate.
func (v *vm) waitReady(version string) string {
	v.t.Helper()
	var ca string
	v.poll("chatbox "+version+" on IRC", func() (err error) {
		ca, err = ircProbe(v.irc, version)
		return err
	})
	v.poll("chatbox on XMPP", func() error { return xmppProbe(v.xmpp) })
	return ca
}

func (v *vm) poll(what string, try func() error) {
	v.t.Helper()
	deadline := time.Now().Add(bootDeadline)
	var err error
	for time.Now().Before(deadline) {
		select {
		case qerr := <-v.done:
			v.t.Fatalf("QEMU exited while waiting for %s: %v", what, qerr)
		default:
		}
		if err = try(); err == nil {
			return
		}
		if wv, ok := err.(wrongVersion); ok { // it booted, into the wrong build
			v.t.Fatalf("waiting for %s: %v", what, wv)
		}
		time.Sleep(500 * time.Millisecond) // poll interval, not a wait for an outcome
	}
	v.t.Fatalf("waiting for %s: no answer within %v: %v", what, bootDeadline, err)
}

// wrongVersion is chatbox answering with another version than expected.
type wrongVersion struct{ got, want string }

func (e wrongVersion) Error() string {
	return fmt.Sprintf("IRC reports version %q, want %q", e.got, e.want)
}

// ircProbe registers over TLS and reads the welcome up to RPL_MYINFO (004),
// whose version field must be version.
func ircProbe(port int, version string) (string, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp",
		fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{InsecureSkipVerify: true}) // the box's own CA; its key id is what is checked
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	certs := c.ConnectionState().PeerCertificates
	if len(certs) == 0 || len(certs[0].AuthorityKeyId) == 0 {
		return "", fmt.Errorf("the IRC certificate names no authority key")
	}
	if _, err := fmt.Fprintf(c, "NICK probe\r\nUSER probe 0 * :image test\r\n"); err != nil {
		return "", err
	}
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 5 && f[1] == "004" {
			if got := strings.TrimPrefix(f[4], "chatbox-"); got != version {
				return "", wrongVersion{got, version}
			}
			fmt.Fprintf(c, "QUIT\r\n")
			return hex.EncodeToString(certs[0].AuthorityKeyId), nil
		}
	}
	return "", fmt.Errorf("no RPL_MYINFO: %v", sc.Err())
}

// xmppProbe opens a client stream over direct TLS and waits for the
// stream features.
func xmppProbe(port int) error {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp",
		fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"xmpp-client"}})
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(c, "<?xml version='1.0'?><stream:stream to='chatbox.local' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>")
	var got []byte
	buf := make([]byte, 4096)
	for len(got) < 64<<10 {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if bytes.Contains(got, []byte("mechanisms")) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("no stream features (got %q): %v", got, err)
		}
	}
	return fmt.Errorf("no SASL mechanisms in the first 64 KiB: %q", tail(got, 512))
}

func gokrazyLog(port int, password string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/log?path=/user/chatbox&stream=stderr", port), nil)
	req.SetBasicAuth("gokrazy", password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body) // the log streams: ends with the timeout
	return b.String()
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func readTrim(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (make image-test builds it with image/build.sh qemu)", err)
	}
	return strings.TrimSpace(string(b))
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
