package mdns

import (
	"net"
	"slices"
	"strconv"
	"strings"
)

// interfaces lists the interfaces to announce on now, and a key that
// changes whenever that list or one of their addresses changes.
// An interface qualifies when it is up, multicast, not loopback and has
// at least one non-loopback address: without an address there is nothing
// to announce, and zeroconf would freeze an empty list.
func (s *Service) interfaces() ([]net.Interface, string) {
	var cands []net.Interface
	if len(s.cfg.Interfaces) > 0 {
		for _, name := range s.cfg.Interfaces {
			if ifc, err := net.InterfaceByName(name); err == nil {
				cands = append(cands, *ifc)
			}
		}
	} else {
		all, err := net.Interfaces()
		if err != nil {
			return nil, ""
		}
		cands = all
	}
	var out []net.Interface
	var key strings.Builder
	for _, ifc := range cands {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagMulticast == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs := usableAddrs(&ifc)
		if len(addrs) == 0 {
			continue
		}
		out = append(out, ifc)
		key.WriteString(strconv.Itoa(ifc.Index) + "/" + ifc.Name + "=" + strings.Join(addrs, ",") + ";")
	}
	return out, key.String()
}

func usableAddrs(ifc *net.Interface) []string {
	addrs, err := ifc.Addrs()
	if err != nil {
		return nil
	}
	var out []string
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLoopback() || ipn.IP.IsUnspecified() {
			continue
		}
		out = append(out, ipn.IP.String())
	}
	slices.Sort(out)
	return out
}

func ifaceNames(ifs []net.Interface) []string {
	names := make([]string, len(ifs))
	for i, ifc := range ifs {
		names[i] = ifc.Name
	}
	return names
}
