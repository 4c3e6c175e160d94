package chat

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"hash"

	"golang.org/x/text/secure/precis"
)

// DefaultIterations is the PBKDF2 iteration count for new credentials:
// RFC 7677's minimum, which a Pi Zero derives in tens of milliseconds.
const DefaultIterations = 4096

// MinPasswordLength is the shortest password accepted for an account.
const MinPasswordLength = 8

// preparePassword applies the PRECIS OpaqueString profile (RFC 8265, the
// successor of SASLprep that RFC 5802 names) so that SCRAM clients and
// PLAIN checks derive the same keys.
func preparePassword(password string) ([]byte, error) {
	p, err := precis.OpaqueString.String(password)
	if err != nil {
		return nil, fmt.Errorf("%w: it holds characters that cannot be used in a password", ErrWeakPassword)
	}
	return []byte(p), nil
}

// NewCredentials derives salted SCRAM-SHA-256 and SCRAM-SHA-1 keys for a
// password (RFC 5802 §3). The password itself is not kept.
func NewCredentials(password string, iterations int) (Credentials, error) {
	if len([]rune(password)) < MinPasswordLength {
		return Credentials{}, fmt.Errorf("%w: use at least %d characters", ErrWeakPassword, MinPasswordLength)
	}
	p, err := preparePassword(password)
	if err != nil {
		return Credentials{}, err
	}
	if iterations <= 0 {
		iterations = DefaultIterations
	}
	var c Credentials
	if c.SHA256, err = deriveKeys(sha256.New, p, iterations); err != nil {
		return Credentials{}, err
	}
	if c.SHA1, err = deriveKeys(sha1.New, p, iterations); err != nil {
		return Credentials{}, err
	}
	return c, nil
}

func deriveKeys(h func() hash.Hash, password []byte, iterations int) (SCRAMKeys, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return SCRAMKeys{}, fmt.Errorf("make salt: %w", err)
	}
	stored, server, err := scramKeys(h, password, salt, iterations)
	if err != nil {
		return SCRAMKeys{}, err
	}
	return SCRAMKeys{Salt: salt, Iterations: iterations, StoredKey: stored, ServerKey: server}, nil
}

// scramKeys computes StoredKey and ServerKey from a prepared password.
func scramKeys(h func() hash.Hash, password, salt []byte, iterations int) (stored, server []byte, err error) {
	salted, err := pbkdf2.Key(h, string(password), salt, iterations, h().Size())
	if err != nil {
		return nil, nil, fmt.Errorf("derive key: %w", err)
	}
	clientKey := hmacSum(h, salted, "Client Key")
	server = hmacSum(h, salted, "Server Key")
	d := h()
	d.Write(clientKey)
	return d.Sum(nil), server, nil
}

func hmacSum(h func() hash.Hash, key []byte, msg string) []byte {
	m := hmac.New(h, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// VerifyPassword checks a plain-text password (SASL PLAIN, IRC PASS)
// against stored credentials by deriving the SCRAM-SHA-256 StoredKey from
// it, in constant time.
func VerifyPassword(c Credentials, password string) bool {
	k := c.SHA256
	if len(k.Salt) == 0 || k.Iterations <= 0 {
		return false
	}
	p, err := preparePassword(password)
	if err != nil {
		return false
	}
	stored, _, err := scramKeys(sha256.New, p, k.Salt, k.Iterations)
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare(stored, k.StoredKey) == 1
}
