package hardening

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The bad-input suite: one box, attacked in turn with each bad input the
// design brief bounds, each answered as ARCHITECTURE.md says; during every
// attack a well-behaved IRC client (PING/PONG) and XMPP client (XEP-0199
// ping) on the same box go on making round trips, which are logged (the
// figures are in the closing note) and only required to complete within
// the harness's bounded wait (no timing is asserted). Attackers come from
// their own loopback addresses (127.0.0.x), so the per-address bounds
// they hit are theirs.

const (
	loginTimeout = 5 * time.Second // limits.login_timeout, for slowloris and half-open TLS
	perAddress   = 8               // limits.connections_per_address
	failedLogins = 5               // limits.failed_logins_per_minute
	maxStanza    = 64 << 10        // xmpp.max_stanza_bytes
	// probeInterval paces the well-behaved clients' round trips, within
	// the flood limits the box is given (limits.messages_per_second=100:
	// IRC lines and XMPP stanzas), so that their own pace never slows them.
	probeInterval = 20 * time.Millisecond
	// attackRounds is how many times a quick attack is repeated, so that
	// the probes' round trips overlap it.
	attackRounds = 40
)

// probes are the well-behaved clients.
type probes struct {
	irc, xmpp *rawConn
	n         int
}

// roundTrip makes one IRC and one XMPP round trip and returns their
// durations.
func (p *probes) roundTrip() (irc, xmpp time.Duration, err error) {
	p.n++
	tok := fmt.Sprintf("probe%d", p.n)
	start := time.Now()
	if err := p.irc.write("PING :" + tok + "\r\n"); err != nil {
		return 0, 0, fmt.Errorf("IRC probe: %v", err)
	}
	if _, err := p.irc.waitFor(regexp.MustCompile(`PONG [^\r\n]*` + tok + `\r\n`)); err != nil {
		return 0, 0, fmt.Errorf("IRC probe: %v", err)
	}
	irc = time.Since(start)
	start = time.Now()
	if err := p.xmpp.write(`<iq type='get' id='` + tok + `' to='` + boxDomain + `'><ping xmlns='urn:xmpp:ping'/></iq>`); err != nil {
		return 0, 0, fmt.Errorf("XMPP probe: %v", err)
	}
	if _, err := p.xmpp.waitFor(regexp.MustCompile(`<iq[^>]*id=["']` + tok + `["'][^>]*>`)); err != nil {
		return 0, 0, fmt.Errorf("XMPP probe: %v", err)
	}
	return irc, time.Since(start), nil
}

// during runs attack and, until it returns, keeps the probes' round
// trips going (at least one, one every probeInterval); it logs them.
func (p *probes) during(t *testing.T, attack func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- attack() }()
	var ircs, xmpps []time.Duration
	var attackErr error
	tick := time.NewTicker(probeInterval)
	defer tick.Stop()
	for finished := false; !finished; {
		i, x, err := p.roundTrip()
		if err != nil {
			t.Fatalf("a well-behaved client's round trip failed during the attack: %v", err)
		}
		ircs, xmpps = append(ircs, i), append(xmpps, x)
		select {
		case attackErr = <-done:
			finished = true
		case <-tick.C:
		}
	}
	t.Logf("round trips during the attack: IRC PING %s; XMPP ping %s", summary(ircs), summary(xmpps))
	if attackErr != nil {
		t.Error(attackErr)
	}
}

func summary(d []time.Duration) string {
	slices.Sort(d)
	return fmt.Sprintf("n=%d min=%v median=%v max=%v", len(d), d[0].Round(time.Microsecond),
		d[len(d)/2].Round(time.Microsecond), d[len(d)-1].Round(time.Microsecond))
}

// attacker connects from src to addr.
func attacker(src, addr string) (*rawConn, error) {
	nc, err := dialFrom(src, addr)
	if err != nil {
		return nil, err
	}
	return newRawConn(nc), nil
}

// expectClosed waits for the server to close c and checks that what it
// sent matches want.
func expectClosed(c *rawConn, limit time.Duration, want *regexp.Regexp) error {
	got, err := c.waitClosed(limit)
	if err != nil {
		return err
	}
	if !want.MatchString(got) {
		return fmt.Errorf("the server closed the connection with %q, want %q", got, want)
	}
	return nil
}

// xmppAttacker opens a stream on the STARTTLS port (no TLS yet: the
// stream's XML is read the same way before and after it) and waits for
// the features.
func xmppAttacker(src, addr string) (*rawConn, error) {
	c, err := attacker(src, addr)
	if err != nil {
		return nil, err
	}
	if err := c.write(streamOpen()); err != nil {
		return nil, err
	}
	if _, err := c.waitFor(reFeatures); err != nil {
		return nil, err
	}
	return c, nil
}

// xmppStreamError sends raw on a fresh stream and expects the stream
// error cond, then the close.
func xmppStreamError(src, addr, raw, cond string) error {
	c, err := xmppAttacker(src, addr)
	if err != nil {
		return err
	}
	defer c.close()
	if err := c.write(raw); err != nil && !errors.Is(err, net.ErrClosed) {
		// The server may close before it has read everything: that is
		// the point; what it said is checked below.
		var ne net.Error
		if !errors.As(err, &ne) {
			return err
		}
	}
	return expectClosed(c, waitLimit, regexp.MustCompile(`<stream:error><`+cond+` xmlns=['"]urn:ietf:params:xml:ns:xmpp-streams['"]`))
}

// repeat runs f n times, stopping at the first error.
func repeat(n int, f func(i int) error) error {
	for i := range n {
		if err := f(i); err != nil {
			return fmt.Errorf("round %d: %w", i, err)
		}
	}
	return nil
}

func TestBadInput(t *testing.T) {
	b := startBox(t, "", []string{"alice", "bob", "carol"},
		"limits.login_timeout="+loginTimeout.String(),
		fmt.Sprintf("limits.connections_per_address=%d", perAddress),
		fmt.Sprintf("limits.failed_logins_per_minute=%d", failedLogins),
		fmt.Sprintf("xmpp.max_stanza_bytes=%d", maxStanza),
		"limits.messages_per_second=100", "limits.message_burst=100")
	p := &probes{irc: ircClient(t, b.ircPlain, "127.0.0.1", "alice", ""), xmpp: b.xmppClient(t, "127.0.0.1", "bob")}

	// IRC: a body over 512 bytes gets 417 and is dropped, the connection
	// stays; a line over the reader's buffer (512 + 4094 bytes of tags)
	// gets 417 and the connection is closed.
	t.Run("irc-long-lines", func(t *testing.T) {
		p.during(t, func() error {
			return repeat(attackRounds, func(int) error {
				c, err := attacker("127.0.0.2", b.ircPlain)
				if err != nil {
					return err
				}
				defer c.close()
				c.write("PRIVMSG alice :" + strings.Repeat("x", 600) + "\r\nPING :still-here\r\n")
				if _, err := c.waitFor(regexp.MustCompile(` 417 [^\r\n]*:Input line too long\r\n`)); err != nil {
					return err
				}
				if _, err := c.waitFor(regexp.MustCompile(`PONG [^\r\n]*still-here`)); err != nil {
					return fmt.Errorf("after a long body: %v", err)
				}
				c.write(strings.Repeat("A", 20000) + "\r\n")
				return expectClosed(c, waitLimit, regexp.MustCompile(` 417 [^\r\n]*Input line too long\r\nERROR :Closing link: Input line too long\r\n$`))
			})
		})
	})

	t.Run("xmpp-stanza-too-large", func(t *testing.T) {
		p.during(t, func() error {
			return repeat(attackRounds, func(int) error {
				return xmppStreamError("127.0.0.2", b.xmppPlain,
					`<message to='alice@box.test'><body>`+strings.Repeat("x", maxStanza+1000)+`</body></message>`, "policy-violation")
			})
		})
	})

	t.Run("xmpp-deep-nesting", func(t *testing.T) {
		p.during(t, func() error {
			return repeat(attackRounds, func(int) error {
				return xmppStreamError("127.0.0.2", b.xmppPlain,
					`<message>`+strings.Repeat("<a>", 1000), "policy-violation")
			})
		})
	})

	t.Run("xmpp-huge-attribute", func(t *testing.T) {
		p.during(t, func() error {
			return repeat(attackRounds, func(int) error {
				return xmppStreamError("127.0.0.2", b.xmppPlain,
					`<message to='`+strings.Repeat("a", maxStanza+1000)+`'/>`, "policy-violation")
			})
		})
	})

	// Entity declarations (a DTD, "billion laughs") and references to
	// entities beyond XML's five: restricted-xml (RFC 6120 §11.1).
	t.Run("xmpp-entities", func(t *testing.T) {
		p.during(t, func() error {
			return repeat(attackRounds, func(int) error {
				c, err := attacker("127.0.0.2", b.xmppPlain)
				if err != nil {
					return err
				}
				defer c.close()
				c.write(`<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>` + streamOpen())
				if err := expectClosed(c, waitLimit, regexp.MustCompile(`<restricted-xml `)); err != nil {
					return fmt.Errorf("DTD: %v", err)
				}
				return xmppStreamError("127.0.0.2", b.xmppPlain, `<message><body>&lol2;</body></message>`, "restricted-xml")
			})
		})
	})

	// Invalid UTF-8 and NUL: IRC answers FAIL and goes on (UTF8ONLY);
	// XMPP ends the stream, not-well-formed (neither is XML).
	t.Run("invalid-utf8-and-nul", func(t *testing.T) {
		p.during(t, func() error {
			return repeat(attackRounds, func(int) error {
				c, err := attacker("127.0.0.2", b.ircPlain)
				if err != nil {
					return err
				}
				defer c.close()
				c.write("PRIVMSG alice :caf\xe9 \xff\xfe\r\n")
				if _, err := c.waitFor(regexp.MustCompile(`FAIL \* INVALID_UTF8 `)); err != nil {
					return err
				}
				c.write("PRIVMSG alice :a\x00b\r\n")
				if _, err := c.waitFor(regexp.MustCompile(`FAIL \* INVALID_MESSAGE `)); err != nil {
					return fmt.Errorf("NUL: %v", err)
				}
				c.write("PING :still-here\r\n")
				if _, err := c.waitFor(regexp.MustCompile(`PONG [^\r\n]*still-here`)); err != nil {
					return err
				}
				if err := xmppStreamError("127.0.0.2", b.xmppPlain, "<message><body>caf\xe9 \xff\xfe</body></message>", "not-well-formed"); err != nil {
					return fmt.Errorf("XMPP, invalid UTF-8: %v", err)
				}
				if err := xmppStreamError("127.0.0.2", b.xmppPlain, "<message><body>a\x00b</body></message>", "not-well-formed"); err != nil {
					return fmt.Errorf("XMPP, NUL: %v", err)
				}
				return nil
			})
		})
	})

	// Half-open TLS: a TCP connection to a TLS port that sends nothing,
	// or only the start of a ClientHello, is closed once
	// limits.login_timeout has passed (the handshake has that deadline).
	t.Run("half-open-tls", func(t *testing.T) {
		p.during(t, func() error {
			hello := partialClientHello()
			var wg sync.WaitGroup
			errs := make(chan error, 8)
			for _, addr := range []string{b.ircTLS, b.xmppTLS} {
				for _, send := range []string{"", hello} {
					wg.Add(1)
					go func() {
						defer wg.Done()
						c, err := attacker("127.0.0.3", addr)
						if err != nil {
							errs <- err
							return
						}
						defer c.close()
						if send != "" {
							c.write(send)
						}
						if _, err := c.waitClosed(loginTimeout + waitLimit); err != nil {
							errs <- fmt.Errorf("%s, %d bytes of ClientHello: %v", addr, len(send), err)
						}
					}()
				}
			}
			// STARTTLS, then no handshake.
			c, err := xmppAttacker("127.0.0.3", b.xmppPlain)
			if err != nil {
				return err
			}
			defer c.close()
			c.write(`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`)
			if _, err := c.waitFor(regexp.MustCompile(`<proceed `)); err != nil {
				return err
			}
			if _, err := c.waitClosed(loginTimeout + waitLimit); err != nil {
				return fmt.Errorf("STARTTLS without a handshake: %v", err)
			}
			wg.Wait()
			close(errs)
			return errors.Join(slices.Collect(chanValues(errs))...)
		})
	})

	// Slowloris: one byte at a time (IRC: complete lines, each of which
	// used to restart the timer; XMPP: a SASL <auth/> that never ends),
	// never logging in: closed once limits.login_timeout has passed since
	// the connection, however it trickles.
	t.Run("slowloris", func(t *testing.T) {
		p.during(t, func() error {
			ircErr := make(chan error, 1)
			go func() {
				ircErr <- trickle("127.0.0.4", b.ircPlain, nil, "", strings.Repeat("PING :x\r\n", 1000),
					regexp.MustCompile(`ERROR :Closing link: Registration timed out\r\n$`))
			}()
			// Over TLS: without it the first stanza ends the stream.
			xerr := trickle("127.0.0.4", b.xmppTLS, b.tlsConfig(), streamOpen(),
				`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>`+strings.Repeat("A", 2000),
				regexp.MustCompile(`<policy-violation [^>]*/><text [^>]*>took too long to log in</text>`))
			return errors.Join(<-ircErr, xerr)
		})
	})

	// A flood of connections from one address: past
	// limits.connections_per_address each is refused at accept with the
	// door's error (IRC ERROR, XMPP policy-violation); the accepted ones
	// are closed by the login timeout.
	t.Run("connection-flood", func(t *testing.T) {
		const flood = 40
		p.during(t, func() error {
			var errs []error
			for _, door := range []struct {
				addr             string
				refused, timeout *regexp.Regexp
			}{
				{b.ircPlain, regexp.MustCompile(`^ERROR :Closing link: Too many connections from your address\r\n$`),
					regexp.MustCompile(`^ERROR :Closing link: Registration timed out\r\n$`)},
				{b.xmppPlain, regexp.MustCompile(`<policy-violation [^>]*/><text [^>]*>too many connections from your address</text>`),
					regexp.MustCompile(`<policy-violation [^>]*/><text [^>]*>took too long to log in</text>`)},
			} {
				var conns []*rawConn
				for range flood {
					c, err := attacker("127.0.0.5", door.addr)
					if err != nil {
						return err
					}
					defer c.close()
					conns = append(conns, c)
				}
				var refused, timedOut int
				for i, c := range conns {
					got, err := c.waitClosed(loginTimeout + waitLimit)
					switch {
					case err != nil:
						errs = append(errs, fmt.Errorf("%s, connection %d: %v", door.addr, i, err))
					case door.refused.MatchString(got):
						refused++
					case door.timeout.MatchString(got):
						timedOut++
					default:
						errs = append(errs, fmt.Errorf("%s, connection %d: closed with %q", door.addr, i, got))
					}
				}
				if refused != flood-perAddress || timedOut != perAddress {
					errs = append(errs, fmt.Errorf("%s: %d connections refused and %d timed out, want %d and %d",
						door.addr, refused, timedOut, flood-perAddress, perAddress))
				}
			}
			return errors.Join(errs...)
		})
	})

	// Password guessing: after limits.failed_logins_per_minute failures
	// from one address, even the right password is refused from there,
	// on both doors (the core counts per address); others log in.
	t.Run("password-guessing", func(t *testing.T) {
		p.during(t, func() error {
			c, err := attacker("127.0.0.6", b.ircPlain)
			if err != nil {
				return err
			}
			defer c.close()
			c.write("CAP REQ :sasl\r\nNICK guess\r\nUSER guess 0 * :guess\r\n")
			if _, err := c.waitFor(regexp.MustCompile(`CAP \S+ ACK :?sasl`)); err != nil {
				return err
			}
			try := func(pw string) ([]byte, error) {
				c.write("AUTHENTICATE PLAIN\r\n")
				if _, err := c.waitFor(regexp.MustCompile(`AUTHENTICATE \+\r\n`)); err != nil {
					return nil, err
				}
				c.write("AUTHENTICATE " + base64.StdEncoding.EncodeToString([]byte("carol\x00carol\x00"+pw)) + "\r\n")
				return c.waitFor(regexp.MustCompile(` 90[34] [^\r\n]*\r\n`))
			}
			for i := range failedLogins {
				got, err := try(fmt.Sprintf("guess-%d", i))
				if err != nil {
					return err
				}
				if !regexp.MustCompile(` 904 [^\r\n]*:SASL authentication failed\r\n`).Match(got) {
					return fmt.Errorf("guess %d answered %q", i, got)
				}
			}
			got, err := try(password("carol"))
			if err != nil {
				return err
			}
			if !strings.Contains(string(got), " 904 ") || !strings.Contains(string(got), "too many failed logins") {
				return fmt.Errorf("the right password after %d guesses: %q, want 904 too many failed logins", failedLogins, got)
			}
			_, err = b.xmppLogin("127.0.0.6", "carol", password("carol"))
			var sf *saslFailure
			if !errors.As(err, &sf) || !strings.Contains(sf.xml, "<temporary-auth-failure/>") {
				return fmt.Errorf("XMPP login from the guessing address: %v, want temporary-auth-failure", err)
			}
			// Elsewhere, carol logs in on both doors.
			x, err := b.xmppLogin("127.0.0.7", "carol", password("carol"))
			if err != nil {
				return fmt.Errorf("carol from another address: %v", err)
			}
			x.close()
			return nil
		})
		ircClient(t, b.ircPlain, "127.0.0.7", "carol", "")
	})
}

// trickle connects from src to addr (over TLS if tc is set), sends first at once, then rest one
// byte every 50 ms until the server closes the connection (or all of it
// is sent), and checks how the server closed it.
func trickle(src, addr string, tc *tls.Config, first, rest string, want *regexp.Regexp) error {
	nc, err := dialFrom(src, addr)
	if err != nil {
		return err
	}
	if tc != nil {
		nc = tls.Client(nc, tc)
	}
	c := newRawConn(nc)
	defer c.close()
	if first != "" {
		c.write(first)
	}
	start := time.Now()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for i := 0; i < len(rest); i++ {
		select {
		case <-c.ended:
			i = len(rest)
			continue
		case <-tick.C:
		}
		if c.write(rest[i:i+1]) != nil {
			break
		}
	}
	if err := expectClosed(c, waitLimit, want); err != nil {
		return fmt.Errorf("%s: %v", addr, err)
	}
	if since := time.Since(start); since < loginTimeout-time.Second {
		return fmt.Errorf("%s: closed after %v, before the login timeout (%v)", addr, since, loginTimeout)
	}
	return nil
}

// partialClientHello is the first 40 bytes of a real TLS ClientHello.
func partialClientHello() string {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	got := make(chan []byte, 1)
	go func() {
		p := make([]byte, 40)
		n, _ := b.Read(p)
		got <- p[:n]
		b.Close()
	}()
	go tls.Client(a, &tls.Config{ServerName: boxDomain}).Handshake()
	return string(<-got)
}

func chanValues[T any](c <-chan T) func(func(T) bool) {
	return func(yield func(T) bool) {
		for v := range c {
			if !yield(v) {
				return
			}
		}
	}
}
