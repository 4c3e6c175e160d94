// Server side of the SASL SCRAM mechanisms, verified against stored keys.
//
// This file implements the server half of SCRAM (RFC 5802) for
// SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 7677) and their channel-binding
// -PLUS variants. The server holds only the stored keys of an account
// (chat.SCRAMKeys: salt, iteration count, StoredKey, ServerKey), never the
// password or SaltedPassword, so it checks a proof by recovering ClientKey
// from it and comparing H(ClientKey) with StoredKey, and it signs its final
// message with ServerKey.
//
// Channel binding types come from the connection through a channelBinding
// function: tls-exporter (RFC 9266, the one TLS 1.3 can offer), tls-unique
// and tls-server-end-point (RFC 5929). The downgrade protection of RFC 5802
// §6 is enforced: a client saying "y" (it could bind but thinks the server
// cannot) fails when the server advertised a -PLUS mechanism.
//
// An unknown account does not end the exchange early: it goes on with a
// salt and iteration count derived from the username and a per-server
// secret, so that the same name always sees the same salt, and fails at the
// proof step as a wrong password would.
//
// Left out: the server-error attribute "e=" (RFC 5802 §7) is never sent,
// failures are reported as RFC 6120 §6.5 conditions instead; client
// extensions after the nonce are accepted and ignored; the reserved
// mandatory extension "m=" is refused; the authzid is passed up unchecked
// (deciding whether the user may act as it is the caller's business);
// passwords are never seen here, so SASLprep/OpaqueString only matters where
// the keys are made (chat.NewCredentials); SCRAM-SHA-512 and the
// iteration-count negotiation of later drafts are not implemented.

package xmpp

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/secure/precis"

	"chatbox/services/chat"
)

// channelBinding gives the channel binding data for a type name
// ("tls-exporter", "tls-unique", "tls-server-end-point"), or ok=false if
// the TLS connection cannot provide it. nil when the connection has no TLS.
type channelBinding func(cbType string) (data []byte, ok bool)

// saslError is a SASL failure with its RFC 6120 §6.5 condition:
// "not-authorized", "malformed-request", "invalid-authzid",
// "encryption-required", "temporary-auth-failure", "aborted",
// "account-disabled", "credentials-expired", "invalid-mechanism",
// "mechanism-too-weak". Text is optional human text.
type saslError struct{ Condition, Text string }

func (e *saslError) Error() string {
	if e.Text == "" {
		return "sasl: " + e.Condition
	}
	return "sasl: " + e.Condition + ": " + e.Text
}

// scramMaxMessage bounds every client message.
const scramMaxMessage = 4096

// scramServerNonceLen is the number of random bytes in the server's part of
// the nonce (RFC 5802 asks for enough to be unpredictable; 24 bytes encode
// to 32 base64 characters without padding).
const scramServerNonceLen = 24

// scramFakeSaltLen is the length of the salt shown for an unknown account,
// the same as chat.NewCredentials makes.
const scramFakeSaltLen = 16

// The stages of one exchange.
const (
	scramStart     = iota // nothing received yet
	scramWaitFirst        // sent an empty challenge, want client-first
	scramWaitFinal        // sent server-first, want client-final
	scramDone             // succeeded or failed; nothing more is accepted
)

// scramServer is one server-side SCRAM exchange.
type scramServer struct {
	mech           string
	hashName       string
	newHash        func() hash.Hash
	plus           bool
	lookup         func(username string) (chat.SCRAMKeys, error)
	cb             channelBinding
	plusAdvertised bool
	fakeSecret     []byte

	stage    int
	username string
	authzid  string

	keys       chat.SCRAMKeys
	fake       bool   // unknown account: always fail at the proof
	cbind      string // expected c= value (base64)
	nonce      string // combined nonce
	authPrefix []byte // client-first-bare "," server-first ","
}

// newSCRAMServer starts one server exchange for mech ("SCRAM-SHA-256",
// "SCRAM-SHA-1", "SCRAM-SHA-256-PLUS" or "SCRAM-SHA-1-PLUS").
//
// lookup returns the stored keys for the (already PRECIS-prepared,
// saslname-unescaped) username and the hash of mech, or an error for an
// unknown user: the exchange then goes on with a fake salt and iteration
// count, derived from the username and fakeSecret so that it does not
// reveal whether the account exists, and fails with not-authorized at the
// proof step. A *saslError from lookup (temporary-auth-failure, say) ends
// the exchange at once with that error instead. fakeSecret must not be
// empty (the server's per-run secret).
//
// cb provides channel binding data; it is nil without TLS. plusAdvertised
// says whether the server advertised any -PLUS mechanism (RFC 5802
// downgrade protection: a client sending gs2 flag "y" then fails).
func newSCRAMServer(mech string, lookup func(username string) (chat.SCRAMKeys, error), cb channelBinding, plusAdvertised bool, fakeSecret []byte) (*scramServer, error) {
	s := &scramServer{
		mech:           mech,
		lookup:         lookup,
		cb:             cb,
		plusAdvertised: plusAdvertised,
		fakeSecret:     fakeSecret,
	}
	base, plus := strings.CutSuffix(mech, "-PLUS")
	s.plus = plus
	switch base {
	case "SCRAM-SHA-256":
		s.newHash, s.hashName = sha256.New, "SHA-256"
	case "SCRAM-SHA-1":
		s.newHash, s.hashName = sha1.New, "SHA-1"
	default:
		return nil, &saslError{Condition: "invalid-mechanism", Text: fmt.Sprintf("%q is not a SCRAM mechanism this server offers", mech)}
	}
	if lookup == nil {
		return nil, errors.New("sasl: newSCRAMServer needs a lookup function")
	}
	if len(s.fakeSecret) == 0 {
		return nil, errors.New("sasl: SCRAM needs a secret for unknown accounts' fake salts")
	}
	return s, nil
}

// Username is the authentication identity (after the exchange began),
// PRECIS-prepared; "" before the client-first message was accepted.
func (s *scramServer) Username() string { return s.username }

// Authzid is the authorization identity from the gs2 header ("" if none).
func (s *scramServer) Authzid() string { return s.authzid }

// Step takes the client's message (the decoded SASL payload; the first call
// gets the initial response, possibly empty meaning the client sends
// nothing yet: then it returns an empty challenge and done=false) and
// returns the server's next message. done=true with err==nil means success,
// and out is then the server-final message ("v=...") to send in <success/>.
// On failure err is a *saslError and done is true: the exchange is over.
func (s *scramServer) Step(in []byte) (out []byte, done bool, err error) {
	if s.stage == scramDone {
		return nil, true, &saslError{Condition: "malformed-request", Text: "the SCRAM exchange is already over"}
	}
	if len(in) > scramMaxMessage {
		s.stage = scramDone
		return nil, true, &saslError{Condition: "malformed-request", Text: "message too long"}
	}
	switch s.stage {
	case scramStart:
		if len(in) == 0 {
			s.stage = scramWaitFirst
			return []byte{}, false, nil
		}
		out, err = s.first(in)
	case scramWaitFirst:
		out, err = s.first(in)
	case scramWaitFinal:
		out, err = s.final(in)
		if err == nil {
			s.stage = scramDone
			return out, true, nil
		}
	}
	if err != nil {
		s.stage = scramDone
		return nil, true, err
	}
	s.stage = scramWaitFinal
	return out, false, nil
}

func scramMalformed(format string, args ...any) *saslError {
	return &saslError{Condition: "malformed-request", Text: fmt.Sprintf(format, args...)}
}

// first handles client-first-message and returns server-first-message.
func (s *scramServer) first(in []byte) ([]byte, error) {
	msg := string(in)
	if !utf8.ValidString(msg) || strings.IndexByte(msg, 0) >= 0 {
		return nil, scramMalformed("the client-first message is not valid UTF-8 text")
	}

	// gs2-header = gs2-cbind-flag "," [ authzid ] ","
	flag, rest, ok := strings.Cut(msg, ",")
	if !ok {
		return nil, scramMalformed("missing GS2 header")
	}
	az, bare, ok := strings.Cut(rest, ",")
	if !ok {
		return nil, scramMalformed("missing GS2 header")
	}
	gs2Header := msg[:len(msg)-len(bare)]

	var cbType string
	switch {
	case flag == "n":
		if s.plus {
			return nil, scramMalformed("%s needs channel binding (gs2 flag p=)", s.mech)
		}
	case flag == "y":
		if s.plus {
			return nil, scramMalformed("%s needs channel binding (gs2 flag p=)", s.mech)
		}
		if s.plusAdvertised {
			// RFC 5802 §6: the client could bind and thinks we cannot,
			// yet we offered binding: someone stripped it.
			return nil, &saslError{Condition: "not-authorized", Text: "channel binding was offered but the client thinks it was not"}
		}
	case strings.HasPrefix(flag, "p="):
		cbType = flag[2:]
		if !scramValidCBName(cbType) {
			return nil, scramMalformed("bad channel binding type name")
		}
		if !s.plus {
			return nil, scramMalformed("channel binding requested with %s; use %s-PLUS", s.mech, s.mech)
		}
	default:
		return nil, scramMalformed("bad GS2 channel binding flag")
	}

	if az != "" {
		v, ok := strings.CutPrefix(az, "a=")
		if !ok || v == "" {
			return nil, scramMalformed("bad authorization identity in the GS2 header")
		}
		authzid, err := scramUnescape(v)
		if err != nil {
			return nil, err
		}
		s.authzid = authzid
	}

	// client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
	attrs := strings.Split(bare, ",")
	if len(attrs) < 2 {
		return nil, scramMalformed("the client-first message needs n= and r=")
	}
	if strings.HasPrefix(attrs[0], "m=") {
		return nil, scramMalformed("mandatory extension not supported")
	}
	user, ok := strings.CutPrefix(attrs[0], "n=")
	if !ok || user == "" {
		return nil, scramMalformed("the client-first message needs a username (n=)")
	}
	cnonce, ok := strings.CutPrefix(attrs[1], "r=")
	if !ok || cnonce == "" || !scramPrintable(cnonce) {
		return nil, scramMalformed("the client-first message needs a nonce (r=)")
	}
	for _, ext := range attrs[2:] {
		if !scramValidAttr(ext) {
			return nil, scramMalformed("bad extension in the client-first message")
		}
	}
	raw, err := scramUnescape(user)
	if err != nil {
		return nil, err
	}
	username, err := precis.UsernameCaseMapped.String(raw)
	if err != nil || username == "" {
		return nil, &saslError{Condition: "not-authorized"}
	}
	s.username = username

	// Channel binding data is fixed now so that c= can be checked later.
	cbData := []byte(nil)
	if cbType != "" {
		var data []byte
		ok := false
		if s.cb != nil {
			data, ok = s.cb(cbType)
		}
		if !ok {
			return nil, scramMalformed("channel binding type %q is not supported on this connection", cbType)
		}
		cbData = data
	}
	s.cbind = base64.StdEncoding.EncodeToString(append([]byte(gs2Header), cbData...))

	keys, err := s.lookup(username)
	var se *saslError
	switch {
	case errors.As(err, &se):
		return nil, se
	case err != nil || !s.usable(keys):
		keys = s.fakeKeys(username)
		s.fake = true
	}
	s.keys = keys

	snonce := make([]byte, scramServerNonceLen)
	if _, err := rand.Read(snonce); err != nil {
		return nil, &saslError{Condition: "temporary-auth-failure"}
	}
	s.nonce = cnonce + base64.StdEncoding.EncodeToString(snonce)
	serverFirst := "r=" + s.nonce +
		",s=" + base64.StdEncoding.EncodeToString(keys.Salt) +
		",i=" + strconv.Itoa(keys.Iterations)
	s.authPrefix = []byte(bare + "," + serverFirst + ",")
	return []byte(serverFirst), nil
}

// final handles client-final-message and returns server-final-message.
func (s *scramServer) final(in []byte) ([]byte, error) {
	msg := string(in)
	// client-final-message = client-final-message-without-proof "," proof,
	// where without-proof = channel-binding "," nonce ["," extensions].
	i := strings.LastIndex(msg, ",p=")
	if i < 0 {
		return nil, scramMalformed("the client-final message needs a proof (p=)")
	}
	withoutProof, proofB64 := msg[:i], msg[i+len(",p="):]
	attrs := strings.Split(withoutProof, ",")
	if len(attrs) < 2 {
		return nil, scramMalformed("the client-final message needs c= and r=")
	}
	cbind, ok := strings.CutPrefix(attrs[0], "c=")
	if !ok {
		return nil, scramMalformed("the client-final message needs channel binding (c=)")
	}
	nonce, ok := strings.CutPrefix(attrs[1], "r=")
	if !ok {
		return nil, scramMalformed("the client-final message needs the nonce (r=)")
	}
	for _, ext := range attrs[2:] {
		if !scramValidAttr(ext) {
			return nil, scramMalformed("bad extension in the client-final message")
		}
	}
	if _, err := base64.StdEncoding.Strict().DecodeString(cbind); err != nil {
		return nil, scramMalformed("channel binding (c=) is not base64")
	}
	proof, err := base64.StdEncoding.Strict().DecodeString(proofB64)
	if err != nil {
		return nil, scramMalformed("proof (p=) is not base64")
	}
	size := s.newHash().Size()
	if len(proof) != size {
		return nil, scramMalformed("proof (p=) has the wrong length")
	}
	if subtle.ConstantTimeCompare([]byte(cbind), []byte(s.cbind)) != 1 {
		return nil, &saslError{Condition: "not-authorized", Text: "channel binding does not match"}
	}
	if subtle.ConstantTimeCompare([]byte(nonce), []byte(s.nonce)) != 1 {
		return nil, &saslError{Condition: "not-authorized", Text: "nonce does not match"}
	}

	authMessage := append(s.authPrefix[:len(s.authPrefix):len(s.authPrefix)], withoutProof...)
	clientSignature := scramHMAC(s.newHash, s.keys.StoredKey, authMessage)
	clientKey := make([]byte, size)
	subtle.XORBytes(clientKey, proof, clientSignature)
	h := s.newHash()
	h.Write(clientKey)
	good := subtle.ConstantTimeCompare(h.Sum(nil), s.keys.StoredKey) == 1
	if !good || s.fake {
		return nil, &saslError{Condition: "not-authorized"}
	}
	serverSignature := scramHMAC(s.newHash, s.keys.ServerKey, authMessage)
	return []byte("v=" + base64.StdEncoding.EncodeToString(serverSignature)), nil
}

// usable says whether stored keys fit this mechanism's hash.
func (s *scramServer) usable(k chat.SCRAMKeys) bool {
	size := s.newHash().Size()
	return len(k.Salt) > 0 && k.Iterations > 0 && len(k.StoredKey) == size && len(k.ServerKey) == size
}

// fakeKeys makes stand-in keys for an unknown account: the salt depends
// only on the secret, the hash and the username, so asking twice shows the
// same salt, as for a real account. The keys match no proof (and are not
// trusted anyway: s.fake fails the exchange).
func (s *scramServer) fakeKeys(username string) chat.SCRAMKeys {
	m := hmac.New(sha256.New, s.fakeSecret)
	m.Write([]byte("chatbox SCRAM fake salt\x00" + s.hashName + "\x00" + username))
	seed := m.Sum(nil)
	return chat.SCRAMKeys{
		Salt:       seed[:scramFakeSaltLen],
		Iterations: chat.DefaultIterations,
		StoredKey:  scramHMAC(s.newHash, seed, []byte("stored")),
		ServerKey:  scramHMAC(s.newHash, seed, []byte("server")),
	}
}

func scramHMAC(h func() hash.Hash, key, msg []byte) []byte {
	m := hmac.New(h, key)
	m.Write(msg)
	return m.Sum(nil)
}

// scramUnescape decodes a saslname: "=2C" is ",", "=3D" is "=", and any
// other "=" is malformed.
func scramUnescape(v string) (string, error) {
	if !strings.Contains(v, "=") {
		return v, nil
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] != '=' {
			b.WriteByte(v[i])
			continue
		}
		switch {
		case strings.HasPrefix(v[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(v[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", scramMalformed("bad escape in a SASL name")
		}
		i += 2
	}
	return b.String(), nil
}

// scramValidCBName checks cb-name = 1*(ALPHA / DIGIT / "." / "-").
func scramValidCBName(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// scramPrintable checks printable = %x21-2B / %x2D-7E (no comma).
func scramPrintable(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x21 || c > 0x7e || c == ',' {
			return false
		}
	}
	return true
}

// scramValidAttr checks an extension attr-val: ALPHA "=" value.
func scramValidAttr(a string) bool {
	if len(a) < 2 || a[1] != '=' {
		return false
	}
	c := a[0]
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
