package xmpp

import (
	"crypto/sha1"
	"encoding/base64"
	"strings"
)

// XEP-0115 Entity Capabilities, the server's own: the stream features
// after authentication carry <c/> with the SHA-1 verification string of
// the domain's disco#info identities and features (§5.1), and disco#info
// answers the node#ver node (xep0030_disco.go) with the same. Clients'
// caps travel in their presence untouched; the server does not cache or
// answer them (XEP-0390 is left out too).

const (
	nsCaps = "http://jabber.org/protocol/caps"
	// capsNodeURI names the software (XEP-0115 §4: a URI of the
	// product); .invalid is reserved and never resolves.
	capsNodeURI = "https://chatbox.invalid"
)

func registerCaps(f *features, s *Server) {
	f.boundFeatures = append(f.boundFeatures, func(*conn) *Element {
		return El(nsCaps, "c", "hash", "sha-1", "node", s.capsNode(), "ver", s.capsVer())
	})
}

func (s *Server) capsNode() string { return capsNodeURI }

// capsVer is the domain's verification string.
func (s *Server) capsVer() string {
	ids, feats := s.serverDisco()
	return capsVerString(ids, feats)
}

// capsVerString computes a XEP-0115 §5.1 verification string with SHA-1:
// identities sorted by category, type and xml:lang, each
// "category/type/lang/name<", then the sorted features, each "var<".
// No XEP-0128 forms are included (the server has none).
func capsVerString(ids []discoIdentity, feats []string) string {
	ids = append([]discoIdentity(nil), ids...)
	sortIdentities(ids)
	var b strings.Builder
	for _, id := range ids {
		b.WriteString(id.Category + "/" + id.Type + "/" + id.Lang + "/" + id.Name + "<")
	}
	for _, f := range sortedSet(feats) {
		b.WriteString(f + "<")
	}
	sum := sha1.Sum([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(sum[:])
}
