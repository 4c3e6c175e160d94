// Package hardening holds the end-to-end hardening suite, tests only: the
// real chatbox binary (internal/testbox) on loopback, attacked with the
// bad inputs the design brief bounds (over-long lines and stanzas, deep
// XML nesting, huge attributes, entity declarations, invalid UTF-8, NUL
// bytes, half-open TLS, slowloris, connection floods, password guessing)
// while well-behaved IRC and XMPP clients on the same box keep measuring
// their round trips (attack_test.go); and killed with SIGKILL in the
// middle of a message load, 20 times over, to check that every
// acknowledged message survives and the database stays sound
// (crash_test.go).
package hardening
