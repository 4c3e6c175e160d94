package xmpp

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"chatbox/services/chat"
)

// XEP-0398 User Avatar to vCard-Based Avatars Conversion
// (urn:xmpp:pep-vcard-conversion:0, advertised on the account): the
// server keeps an account's XEP-0084 avatar (PEP) and its XEP-0153 one
// (the vCard PHOTO, xep0054_vcard.go) the same, both ways.
//
//   - PEP to vCard (§3.1): when a client publishes to
//     urn:xmpp:avatar:metadata, the info element without a url names the
//     item of urn:xmpp:avatar:data whose bytes become the vCard PHOTO
//     (with the info's type), if their SHA-1 is that id; an empty
//     <metadata/> (avatar disabled) removes the PHOTO.
//   - vCard to PEP (§3.2): after a client set its vCard, if the PHOTO's
//     SHA-1 is not the published avatar's id, the image is published to
//     urn:xmpp:avatar:data (item id the SHA-1, hex) and then
//     urn:xmpp:avatar:metadata (one info: bytes, id, type; the TYPE of the
//     vCard or, if it has none, the sniffed type), notifying as any
//     publish; a vCard without a PHOTO publishes an empty <metadata/> if
//     an avatar was published. Nodes this creates are open, as the vCard
//     is (anyone on the box may read it); existing nodes keep their
//     configuration.
//
// The presence hash of §4 is added by xep0054_vcard.go for every avatar.
// Left out: the info's width and height (RECOMMENDED, they need image
// decoders the box does not carry).

const (
	nsAvatarData          = "urn:xmpp:avatar:data"
	nsAvatarMetadata      = "urn:xmpp:avatar:metadata"
	nsPEPVCardConversion  = "urn:xmpp:pep-vcard-conversion:0"
	avatarConvertedAccess = "open"
)

// registerAvatarConversion must run after registerVCard: it wraps the
// vcard-temp handler to see the vCards clients set.
func (p *pepService) registerAvatarConversion(f *features) {
	f.accountFeatures = append(f.accountFeatures, nsPEPVCardConversion)
	p.watchers[nsAvatarMetadata] = func(ss *session, ch pepChange) {
		if ch.kind == "publish" {
			p.avatarToVCard(ss.account, ch.payload)
		}
	}
	vcard := f.accountIQ[nsVCard]
	if vcard == nil {
		p.s.log.Warn("XEP-0398: no vcard-temp handler registered before PEP; vCard photos are not converted to PEP avatars")
		return
	}
	f.accountIQ[nsVCard] = func(ss *session, iq *Element) {
		vcard(ss, iq)
		if iq.Get("type") == "set" && (iq.Get("to") == "" || iq.Get("to") == ss.bare) {
			p.vcardToAvatar(ss.account)
		}
	}
}

// avatarToVCard puts the avatar a client published on PEP in its vCard.
func (p *pepService) avatarToVCard(account string, metadata *Element) {
	if !metadata.Is(nsAvatarMetadata, "metadata") {
		return
	}
	p.syncMu.Lock()
	defer p.syncMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), timeoutStore)
	defer cancel()
	var info *Element
	for _, k := range metadata.Kids() {
		if k.Is(nsAvatarMetadata, "info") && k.Get("url") == "" {
			info = k
			break
		}
	}
	if info == nil {
		if len(metadata.Kids()) > 0 {
			return // only images hosted elsewhere: nothing to put in the vCard
		}
		if _, _, err := p.s.vcardPhoto(ctx, account); errors.Is(err, chat.ErrNotFound) {
			return
		}
		if err := p.s.setVCardPhoto(ctx, account, "", nil); err != nil {
			p.s.log.Error("remove the vCard photo of a disabled avatar", "account", account, "err", err)
		}
		return
	}
	id := info.Get("id")
	it, err := p.s.core.Data(ctx, account, pepItemsPrefix+nsAvatarData, id)
	if err != nil {
		p.s.log.Debug("avatar metadata names no published data", "account", account, "id", id, "err", err)
		return
	}
	kids := parseFragment(string(it.Value))
	if len(kids) == 0 || !kids[0].Is(nsAvatarData, "data") {
		return
	}
	data, err := base64.StdEncoding.DecodeString(strings.Map(dropSpace, kids[0].Text()))
	if err != nil || len(data) == 0 || photoHash(data) != strings.ToLower(id) {
		p.s.log.Debug("avatar data does not match its id; the vCard is left alone", "account", account, "id", id)
		return
	}
	if _, old, err := p.s.vcardPhoto(ctx, account); err == nil && photoHash(old) == photoHash(data) {
		return
	}
	if err := p.s.setVCardPhoto(ctx, account, info.Get("type"), data); err != nil {
		p.s.log.Error("put the PEP avatar in the vCard", "account", account, "err", err)
	}
}

func dropSpace(r rune) rune {
	if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
		return -1
	}
	return r
}

// publishedAvatar is the id of the avatar account published on PEP ("" if
// none, or disabled).
func (p *pepService) publishedAvatar(ctx context.Context, account string) (string, error) {
	items, err := p.items(ctx, account, nsAvatarMetadata)
	if err != nil || len(items) == 0 {
		return "", err
	}
	for _, k := range items[len(items)-1].payload.Kids() {
		if k.Is(nsAvatarMetadata, "info") && k.Get("url") == "" {
			return k.Get("id"), nil
		}
	}
	return "", nil
}

// vcardToAvatar publishes account's vCard photo as its PEP avatar if it
// is not that already.
func (p *pepService) vcardToAvatar(account string) {
	p.syncMu.Lock()
	defer p.syncMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), timeoutStore)
	defer cancel()
	mime, data, err := p.s.vcardPhoto(ctx, account)
	if err != nil && !errors.Is(err, chat.ErrNotFound) {
		p.s.log.Error("read the vCard photo", "account", account, "err", err)
		return
	}
	current, err := p.publishedAvatar(ctx, account)
	if err != nil {
		p.s.log.Error("read the PEP avatar", "account", account, "err", err)
		return
	}
	opts := map[string][]string{"pubsub#access_model": {avatarConvertedAccess}}
	if data == nil {
		if current != "" {
			if _, perr := p.publish(ctx, account, nsAvatarMetadata, "", El(nsAvatarMetadata, "metadata"), opts, false); perr != nil {
				p.s.log.Error("disable the PEP avatar", "account", account, "err", perr)
			}
		}
		return
	}
	id := photoHash(data)
	if id == current {
		return
	}
	if mime == "" {
		mime = http.DetectContentType(data)
	}
	if _, perr := p.publish(ctx, account, nsAvatarData, id,
		El(nsAvatarData, "data").Add(base64.StdEncoding.EncodeToString(data)), opts, false); perr != nil {
		p.s.log.Error("publish the vCard photo as PEP avatar data", "account", account, "err", perr)
		return
	}
	meta := El(nsAvatarMetadata, "metadata").Add(
		El(nsAvatarMetadata, "info", "bytes", strconv.Itoa(len(data)), "id", id, "type", mime))
	if _, perr := p.publish(ctx, account, nsAvatarMetadata, id, meta, opts, false); perr != nil {
		p.s.log.Error("publish the vCard photo as PEP avatar metadata", "account", account, "err", perr)
	}
}
