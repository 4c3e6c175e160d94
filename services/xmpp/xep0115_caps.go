package xmpp

import (
	"cmp"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"slices"
	"strings"
	"time"
)

// XEP-0115 Entity Capabilities, the server's own: the stream features
// after authentication carry <c/> with the SHA-1 verification string of
// the domain's disco#info identities, features and XEP-0128 extended
// information forms (§5.1, §5.4; the XEP-0157 contact addresses form),
// and disco#info answers the node#ver node (xep0030_disco.go) with the
// same. Clients' caps travel in their presence untouched; the server
// does not cache or answer them (XEP-0390 is left out too).

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

// capsVer is the domain's verification string, computed over what
// disco#info on the domain answers now (serverDisco reads the store for
// the XEP-0157 admin addresses).
func (s *Server) capsVer() string {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return capsVerString(s.serverDisco(ctx))
}

// capsVerString computes a XEP-0115 §5.1 verification string with SHA-1:
// identities sorted by category, type and xml:lang, each
// "category/type/lang/name<", then the sorted features, each "var<",
// then the XEP-0128 extended information forms (jabber:x:data <x/>)
// sorted by their FORM_TYPE value: the FORM_TYPE value and "<", then
// each other field sorted by var, its var and "<" followed by each of
// its values sorted, each "<". A form without a FORM_TYPE field is left
// out (§5.4 tells receivers to ignore such forms).
func capsVerString(ids []discoIdentity, feats []string, forms []*Element) string {
	ids = append([]discoIdentity(nil), ids...)
	sortIdentities(ids)
	var b strings.Builder
	for _, id := range ids {
		b.WriteString(id.Category + "/" + id.Type + "/" + id.Lang + "/" + id.Name + "<")
	}
	for _, f := range sortedSet(feats) {
		b.WriteString(f + "<")
	}
	type field struct {
		name   string
		values []string
	}
	type form struct {
		formType string
		fields   []field
	}
	var fs []form
	for _, x := range forms {
		if x == nil || !x.Is(nsXData, "x") {
			continue
		}
		var f form
		hasType := false
		for _, k := range x.Kids() {
			if !k.Is(nsXData, "field") {
				continue
			}
			var vals []string
			for _, v := range k.Kids() {
				if v.Is(nsXData, "value") {
					vals = append(vals, v.Text())
				}
			}
			if k.Get("var") == "FORM_TYPE" {
				if len(vals) > 0 {
					f.formType, hasType = vals[0], true
				}
				continue
			}
			slices.Sort(vals)
			f.fields = append(f.fields, field{k.Get("var"), vals})
		}
		if !hasType {
			continue
		}
		slices.SortStableFunc(f.fields, func(a, b field) int { return cmp.Compare(a.name, b.name) })
		fs = append(fs, f)
	}
	slices.SortStableFunc(fs, func(a, b form) int { return cmp.Compare(a.formType, b.formType) })
	for _, f := range fs {
		b.WriteString(f.formType + "<")
		for _, fl := range f.fields {
			b.WriteString(fl.name + "<")
			for _, v := range fl.values {
				b.WriteString(v + "<")
			}
		}
	}
	sum := sha1.Sum([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(sum[:])
}
