package chat

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Client certificates as credentials (SASL EXTERNAL, RFC 4422 appendix
// A, as IRCv3 and XEP-0178 use it): an account lists the SHA-256
// fingerprints of certificates that log it in, and no password is asked.

// CertFingerprint is the fingerprint of a DER certificate: SHA-256,
// lower-case hex without separators.
func CertFingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// normalizeFingerprint accepts hex with or without colons, any case.
func normalizeFingerprint(fp string) (string, error) {
	fp = strings.ToLower(strings.ReplaceAll(strings.TrimSpace(fp), ":", ""))
	if b, err := hex.DecodeString(fp); err != nil || len(b) != sha256.Size {
		return "", fmt.Errorf("%w: a certificate fingerprint is 64 hex digits (SHA-256)", ErrBadName)
	}
	return fp, nil
}

// AddCertificate lets a certificate log account in.
func (c *Core) AddCertificate(ctx context.Context, account, fingerprint string) error {
	fp, err := normalizeFingerprint(fingerprint)
	if err != nil {
		return err
	}
	return c.store.AddCert(ctx, Fold(account), fp, c.now().UTC())
}

// RemoveCertificate stops a certificate from logging account in.
func (c *Core) RemoveCertificate(ctx context.Context, account, fingerprint string) error {
	fp, err := normalizeFingerprint(fingerprint)
	if err != nil {
		return err
	}
	return c.store.RemoveCert(ctx, Fold(account), fp)
}

// Certificates lists the fingerprints that log account in.
func (c *Core) Certificates(ctx context.Context, account string) ([]string, error) {
	return c.store.Certs(ctx, Fold(account))
}

// AuthenticateCertificate logs in with a client certificate (the DER
// bytes the TLS handshake verified possession of). authzid, if not empty,
// must name the certificate's account. Failures count against addr like
// wrong passwords.
func (c *Core) AuthenticateCertificate(ctx context.Context, der []byte, authzid, addr, door string) (Account, error) {
	if err := c.LoginAllowed(addr); err != nil {
		return Account{}, err
	}
	if len(der) == 0 {
		c.LoginFailed(addr, authzid, door)
		return Account{}, fmt.Errorf("%w: no client certificate", ErrBadPassword)
	}
	name, err := c.store.AccountByCert(ctx, CertFingerprint(der))
	if errors.Is(err, ErrNotFound) || (err == nil && authzid != "" && Fold(authzid) != name) {
		c.LoginFailed(addr, authzid, door)
		return Account{}, fmt.Errorf("%w: this certificate is not registered to the account", ErrBadPassword)
	}
	if err != nil {
		return Account{}, err
	}
	a, _, err := c.store.Account(ctx, name)
	return a, err
}
