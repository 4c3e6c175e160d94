package xmpp

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"chatbox/services/chat"
)

// XEP-0054 vcard-temp and XEP-0153 vCard-Based Avatars.
//
// An account gets and sets its own vCard (IQ with no to, or to its bare
// JID) and gets other accounts' vCards (to their bare JID; the server
// answers on their behalf). The vCard is kept whole, as sent, in the
// core's profile store (one document per account, bounded by
// chat.MaxDataBytes and, before that, by the stanza size limit). Setting
// another account's vCard is forbidden; a vCard of an account that does
// not exist is service-unavailable, an existing account without one is
// item-not-found (one's own: an empty vCard, as XEP-0054 §3.1 allows).
//
// XEP-0153: the SHA-1 of the vCard's PHOTO is kept per account in memory
// (loaded when a session binds, or on first sight), and the server adds
// <x xmlns='vcard-temp:x:update'><photo>hash</photo></x> to every
// available presence from an account with a photo (XMPP or IRC session)
// that does not carry one already, so that contacts fetch the new avatar.
// Accounts without a photo get nothing added (an empty <photo/> would
// tell clients to drop an avatar published another way).
//
// vcardPhoto and setVCardPhoto give the avatar to other features
// (XEP-0398 conversion lives elsewhere). vCard4 (XEP-0292) is left out.

const (
	nsVCard       = "vcard-temp"
	nsVCardUpdate = "vcard-temp:x:update"
)

// avatarHashes caches each account's photo hash ("" for none) and
// serializes vCard writes (a photo change reads, edits and writes).
type avatarHashes struct {
	writeMu sync.Mutex

	mu      sync.Mutex
	hash    map[string]string
	loading map[string]bool
}

func registerVCard(f *features, s *Server) {
	f.avatars = &avatarHashes{hash: map[string]string{}, loading: map[string]bool{}}
	f.accountIQ[nsVCard] = s.vcardIQ
	f.serverFeatures = append(f.serverFeatures, nsVCard)
	f.accountFeatures = append(f.accountFeatures, nsVCard)
	f.onBound = append(f.onBound, func(ss *session) {
		ctx, cancel := ss.ctx()
		defer cancel()
		s.loadAvatarHash(ctx, ss.account)
	})
	f.outFilters = append(f.outFilters, s.avatarFilter)
	f.passRoom = append(f.passRoom, func(*session) bool { return true }) // rooms' presence is not an account's
}

func (s *Server) vcardIQ(ss *session, iq *Element) {
	account := ss.account
	if to := iq.Get("to"); to != "" {
		a, err := parseJID(to)
		if err != nil {
			ss.replyErr(iq, "jid-malformed", "")
			return
		}
		account = a.Local
	}
	own := account == ss.account
	ctx, cancel := ss.ctx()
	defer cancel()
	switch iq.Get("type") {
	case "get":
		if !own && !s.accountOnBox(ss, account) {
			ss.replyErr(iq, "service-unavailable", "")
			return
		}
		card, err := s.vcard(ctx, account)
		switch {
		case errors.Is(err, chat.ErrNotFound) && own:
			card = El(nsVCard, "vCard")
		case errors.Is(err, chat.ErrNotFound):
			ss.replyErr(iq, "item-not-found", account+" has no vCard")
			return
		case err != nil:
			s.log.Error("read vCard", "account", account, "err", err)
			ss.replyErr(iq, "internal-server-error", "the vCard could not be read; try again")
			return
		}
		ss.result(iq, card)
	case "set":
		if !own {
			ss.replyErr(iq, "forbidden", "you may change only your own vCard")
			return
		}
		card := iq.First()
		if !card.Is(nsVCard, "vCard") {
			ss.replyErr(iq, "bad-request", "a vCard set carries <vCard xmlns='vcard-temp'/>")
			return
		}
		s.features.avatars.writeMu.Lock()
		err := s.storeVCard(ctx, account, card)
		s.features.avatars.writeMu.Unlock()
		switch {
		case errors.Is(err, errBadPhoto):
			ss.replyErr(iq, "bad-request", err.Error())
		case errors.Is(err, chat.ErrTooLong):
			ss.replyErr(iq, "not-acceptable", fmt.Sprintf("the vCard is too large: at most %d bytes (use a smaller photo)", chat.MaxDataBytes))
		case err != nil:
			s.log.Error("store vCard", "account", account, "err", err)
			ss.replyErr(iq, "internal-server-error", "the vCard could not be stored; try again")
		default:
			ss.result(iq, nil)
		}
	default:
		ss.replyErr(iq, "bad-request", "")
	}
}

// vcard reads and parses account's stored vCard (ErrNotFound if none).
func (s *Server) vcard(ctx context.Context, account string) (*Element, error) {
	b, err := s.core.VCard(ctx, account)
	if err != nil {
		return nil, err
	}
	card, err := parseStored(b)
	if err != nil {
		return nil, fmt.Errorf("stored vCard of %s: %w", account, err)
	}
	return card, nil
}

var errBadPhoto = errors.New("the vCard PHOTO's BINVAL is not valid base64")

// storeVCard stores a vCard and updates the photo hash. The caller holds
// avatars.writeMu.
func (s *Server) storeVCard(ctx context.Context, account string, card *Element) error {
	_, photo, err := photoOf(card)
	if err != nil {
		return err
	}
	if err := s.core.SetVCard(ctx, account, []byte(card.String())); err != nil {
		return err
	}
	s.features.avatars.set(account, photoHash(photo))
	return nil
}

// photoOf returns a vCard's PHOTO (its TYPE and decoded BINVAL); nil data
// if it has none (or only an EXTVAL).
func photoOf(card *Element) (mime string, data []byte, err error) {
	p := card.Child(nsVCard, "PHOTO")
	if p == nil || p.Child(nsVCard, "BINVAL") == nil {
		return "", nil, nil
	}
	b64 := strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, p.ChildText(nsVCard, "BINVAL"))
	data, err = base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return "", nil, errBadPhoto
	}
	if len(data) == 0 {
		return "", nil, nil
	}
	return strings.TrimSpace(p.ChildText(nsVCard, "TYPE")), data, nil
}

// photoHash is the XEP-0153 hash of an image: SHA-1, lower-case hex; ""
// for no image.
func photoHash(data []byte) string {
	if len(data) == 0 {
		return ""
	}
	sum := sha1.Sum(data)
	return hex.EncodeToString(sum[:])
}

// vcardPhoto returns account's avatar from its vCard: the image's MIME
// type and bytes. The error wraps chat.ErrNotFound if it has none.
func (s *Server) vcardPhoto(ctx context.Context, account string) (mime string, data []byte, err error) {
	card, err := s.vcard(ctx, account)
	if err != nil {
		return "", nil, err
	}
	mime, data, err = photoOf(card)
	if err != nil {
		return "", nil, fmt.Errorf("vCard of %s: %w", account, err)
	}
	if data == nil {
		return "", nil, fmt.Errorf("vCard of %s has no photo: %w", account, chat.ErrNotFound)
	}
	return mime, data, nil
}

// setVCardPhoto replaces the PHOTO of account's vCard (making a vCard if
// it has none); nil data removes the photo.
func (s *Server) setVCardPhoto(ctx context.Context, account, mime string, data []byte) error {
	s.features.avatars.writeMu.Lock()
	defer s.features.avatars.writeMu.Unlock()
	card, err := s.vcard(ctx, account)
	if errors.Is(err, chat.ErrNotFound) {
		card, err = El(nsVCard, "vCard"), nil
	}
	if err != nil {
		return err
	}
	card.Remove(func(k *Element) bool { return k.Is(nsVCard, "PHOTO") })
	if len(data) > 0 {
		card.Add(El(nsVCard, "PHOTO").Add(
			El(nsVCard, "TYPE").Add(mime),
			El(nsVCard, "BINVAL").Add(base64.StdEncoding.EncodeToString(data))))
	}
	return s.storeVCard(ctx, account, card)
}

func (a *avatarHashes) get(account string) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	h, ok := a.hash[account]
	return h, ok
}

func (a *avatarHashes) set(account, hash string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.hash[account] = hash
}

// forget drops an account's entry (the account was removed).
func (a *avatarHashes) forget(account string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.hash, account)
}

// loadAvatarHash reads account's photo hash into the cache.
func (s *Server) loadAvatarHash(ctx context.Context, account string) {
	if _, ok := s.features.avatars.get(account); ok {
		return
	}
	card, err := s.vcard(ctx, account)
	hash := ""
	switch {
	case errors.Is(err, chat.ErrNotFound):
	case err != nil:
		s.log.Debug("read vCard for its avatar hash", "account", account, "err", err)
		return
	default:
		_, photo, err := photoOf(card)
		if err != nil {
			s.log.Debug("stored vCard photo", "account", account, "err", err)
		}
		hash = photoHash(photo)
	}
	s.features.avatars.mu.Lock()
	if _, ok := s.features.avatars.hash[account]; !ok {
		s.features.avatars.hash[account] = hash
	}
	s.features.avatars.mu.Unlock()
}

// avatarFilter adds the XEP-0153 photo hash to available presence from
// an account that has a photo. It may run under the core's lock (IRC
// presence), so an account not yet cached is loaded in the background
// and its presence goes out as it is this once.
func (s *Server) avatarFilter(ss *session, el *Element) bool {
	if !el.Is(nsClient, "presence") || el.Get("type") != "" || el.Child(nsVCardUpdate, "x") != nil {
		return true
	}
	from := el.Get("from")
	if bare, _, _ := strings.Cut(from, "/"); !strings.HasSuffix(bare, "@"+s.cfg.Domain) {
		return true // not an account here (a room occupant, a remote user): nothing parsed
	}
	a, err := parseJID(from)
	if err != nil || a.Local == "" || a.Domain != s.cfg.Domain {
		return true
	}
	hash, ok := s.features.avatars.get(a.Local)
	if !ok {
		s.loadAvatarLater(a.Local)
		return true
	}
	if hash != "" {
		el.Add(El(nsVCardUpdate, "x").Add(El(nsVCardUpdate, "photo").Add(hash)))
	}
	return true
}

func (s *Server) loadAvatarLater(account string) {
	av := s.features.avatars
	av.mu.Lock()
	if av.loading[account] {
		av.mu.Unlock()
		return
	}
	av.loading[account] = true
	av.mu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		s.loadAvatarHash(ctx, account)
		av.mu.Lock()
		delete(av.loading, account)
		av.mu.Unlock()
	}()
}
