package chat

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"testing"
)

// TestSCRAMVectors checks the derived keys against the exchanges printed
// in RFC 5802 §5 (SHA-1) and RFC 7677 §3 (SHA-256): from the client's
// proof we recover ClientKey, whose hash must be our StoredKey, and our
// ServerKey must sign the AuthMessage as the server did.
func TestSCRAMVectors(t *testing.T) {
	cases := []struct {
		name     string
		h        func() hash.Hash
		salt     string
		auth     string
		proof    string
		verifier string
	}{
		{"SHA-1", sha1.New, "QSXCR+Q6sek8bf92",
			"n=user,r=fyko+d2lbbFgONRv9qkxdawL,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096,c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j",
			"v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=", "rmF9pqV8S7suAoZWja4dJRkFsKQ="},
		{"SHA-256", sha256.New, "W22ZaJ0SNY7soEsUEjb6gQ==",
			"n=user,r=rOprNGfwEbeRWgbNEkqO,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
			"dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			salt, _ := base64.StdEncoding.DecodeString(tc.salt)
			stored, server, err := scramKeys(tc.h, []byte("pencil"), salt, 4096)
			if err != nil {
				t.Fatal(err)
			}
			proof, _ := base64.StdEncoding.DecodeString(tc.proof)
			sig := hmacSum(tc.h, stored, tc.auth)
			clientKey := make([]byte, len(proof))
			for i := range proof {
				clientKey[i] = proof[i] ^ sig[i]
			}
			d := tc.h()
			d.Write(clientKey)
			if !hmac.Equal(d.Sum(nil), stored) {
				t.Errorf("StoredKey does not match the RFC's client proof")
			}
			if got := base64.StdEncoding.EncodeToString(hmacSum(tc.h, server, tc.auth)); got != tc.verifier {
				t.Errorf("server signature %s, want %s", got, tc.verifier)
			}
		})
	}
}

func TestCredentials(t *testing.T) {
	c, err := NewCredentials("correct horse", 4096)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.SHA256.StoredKey) != 32 || len(c.SHA1.StoredKey) != 20 || len(c.SHA256.Salt) != 16 {
		t.Fatalf("unexpected key sizes: %+v", c)
	}
	if !VerifyPassword(c, "correct horse") {
		t.Error("right password refused")
	}
	for _, p := range []string{"correct hors", "Correct horse", "", "correct horse "} {
		if VerifyPassword(c, p) {
			t.Errorf("wrong password %q accepted", p)
		}
	}
	c2, _ := NewCredentials("correct horse", 4096)
	if hmac.Equal(c.SHA256.Salt, c2.SHA256.Salt) {
		t.Error("two credentials share a salt")
	}
	if _, err := NewCredentials("short", 0); err == nil {
		t.Error("short password accepted")
	}
	if VerifyPassword(Credentials{}, "anything") {
		t.Error("empty credentials accepted a password")
	}
}
