package mdns

import (
	"errors"
	"net"

	"github.com/pion/logging"
	pion "github.com/pion/mdns/v2"
	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// hostResponder answers A and AAAA questions for <host>.local, which
// zeroconf never does, with the address of the interface the question came
// in on. It is pion's mDNS server restricted to address records (zeroconf
// keeps service discovery).
//
// Sharing port 5353: binding a multicast address makes Go's net package
// bind the wildcard address with SO_REUSEADDR (as zeroconf's own sockets
// do), so this socket, zeroconf's and another responder's (avahi) all
// receive every multicast question.
type hostResponder struct {
	conn *pion.Conn
}

func startHostResponder(host string, ifs []net.Interface) (*hostResponder, error) {
	var pc4 *ipv4.PacketConn
	var pc6 *ipv6.PacketConn
	l4, err4 := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(224, 0, 0, 0), Port: 5353})
	if err4 == nil {
		pc4 = ipv4.NewPacketConn(l4)
	}
	l6, err6 := net.ListenUDP("udp6", &net.UDPAddr{IP: net.ParseIP("ff02::"), Port: 5353})
	if err6 == nil {
		pc6 = ipv6.NewPacketConn(l6)
	}
	if pc4 == nil && pc6 == nil {
		return nil, errors.Join(err4, err6)
	}
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelDisabled
	conn, err := pion.NewServer(pc4, pc6,
		pion.WithName("chatbox-host"),
		pion.WithLocalNames(host+".local"),
		pion.WithRecordTypes(dnsmessage.TypeA, dnsmessage.TypeAAAA),
		pion.WithInterfaces(ifs...),
		pion.WithCacheRefresh(false),
		pion.WithLoggerFactory(lf),
	)
	if err != nil {
		if pc4 != nil {
			pc4.Close()
		}
		if pc6 != nil {
			pc6.Close()
		}
		return nil, err
	}
	return &hostResponder{conn: conn}, nil
}

func (h *hostResponder) close() {
	if h != nil && h.conn != nil {
		h.conn.Close()
	}
}
