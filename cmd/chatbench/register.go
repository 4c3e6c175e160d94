package main

// In-band registration, XEP-0077 (In-Band Registration) §3.1, for
// --xmpp-register: before a run against another XMPP server (Prosody,
// ejabberd), each XMPP account is created over its own short stream
// (STARTTLS, then <iq type='set'><query xmlns='jabber:iq:register'>
// with username and password), so that no server tool has to be run once
// per account. An account that exists (<conflict/>) is fine: a second run
// logs in with the same password. Left out: registration forms (x:data),
// CAPTCHAs, and registration after login (changing a password).

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
)

const nsRegister = "jabber:iq:register"

// registerAll registers the XMPP accounts, o.connectParallel at a time,
// each bounded by --join-timeout; it stops at the first refusal.
func registerAll(ctx context.Context, o *options, progress func(int)) error {
	tcfg, err := tlsConfig(o)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, o.connectParallel)
	var wg sync.WaitGroup
	var done atomic.Int64
	for i := range o.xmppClients() {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			name, pw := o.account(i)
			jctx, jcancel := context.WithTimeoutCause(ctx, o.joinTimeout, fmt.Errorf("--join-timeout %s reached", o.joinTimeout))
			defer jcancel()
			if err := registerOne(jctx, o, tcfg, name, pw); err != nil {
				cancel(fmt.Errorf("registering %s (XEP-0077): %w", name, err))
				return
			}
			progress(int(done.Add(1)))
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

// registerOne creates one account over its own stream.
func registerOne(ctx context.Context, o *options, tcfg *tls.Config, account, password string) error {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", o.xmppAddr)
	if err != nil {
		return err
	}
	dl, _ := ctx.Deadline()
	m := &member{account: account, proto: "xmpp"}
	c := &xmppClient{peer: peer{nc: nc, deadline: dl}, m: m}
	stop := watchCtx(ctx, nc)
	defer stop()
	defer c.close(`</stream:stream>`)
	f, _, err := c.startTLS(ctx, tcfg, o)
	if err != nil {
		return err
	}
	if f.child("http://jabber.org/features/iq-register", "register") == nil {
		return errors.New("the server does not offer in-band registration after STARTTLS (enable it, or make the accounts with the server's own tool)")
	}
	if err := c.write([]byte(`<iq type='set' id='reg1'><query xmlns='` + nsRegister + `'><username>` + xmlEscape(account) +
		`</username><password>` + xmlEscape(password) + `</password></query></iq>`)); err != nil {
		return ioErr(ctx, "register", err)
	}
	for range 100 { // the answer comes among at most a few other stanzas
		el, err := c.next(ctx, "register")
		if err != nil {
			return err
		}
		if el.name.Local != "iq" || el.get("id") != "reg1" {
			continue
		}
		switch {
		case el.get("type") == "result":
			return nil
		case el.get("type") == "error" && conflict(el):
			return nil // there already; the password is the bench's own
		}
		return fmt.Errorf("%w: %s", errServer, describeError(el))
	}
	return errors.New("no answer to the registration among 100 stanzas")
}

// conflict reports whether a stanza error is <conflict/> (the account
// exists).
func conflict(el *elem) bool {
	if er := el.child("jabber:client", "error"); er != nil {
		return er.child(nsStanzas, "conflict") != nil
	}
	return false
}
