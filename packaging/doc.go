// Package packaging holds what the Debian and OpenWrt packages ship
// (settings, systemd unit, procd init script, nfpm configurations;
// build.sh makes them) and the tests that open the packages, install the
// Debian one in a throw-away Debian root and start chatbox from it. It
// has no Go code of its own.
package packaging
