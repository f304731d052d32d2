package httpapi

import (
	"net/http"
	"net/netip"
	"strings"

	"livedrops/domain"
)

// withClientAddr puts the client's address (clientAddr) in the request
// context, where the limits per address read it.
func withClientAddr(trusted []netip.Prefix, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a := clientAddr(r, trusted); a.IsValid() {
			r = r.WithContext(domain.WithClientAddr(r.Context(), a))
		}
		next.ServeHTTP(w, r)
	})
}

// clientAddr is the peer of the connection or, when that peer is a trusted
// proxy, the right-most X-Forwarded-For address that is not one: anything
// left of it was written by the client and proves nothing.
func clientAddr(r *http.Request, trusted []netip.Prefix) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	addr := ap.Addr().Unmap()
	if !isTrusted(addr, trusted) {
		return addr
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return addr // a trusted proxy passed on garbage: it is the last address we can believe
		}
		addr = hop.Unmap()
		if !isTrusted(addr, trusted) {
			return addr
		}
	}
	return addr
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
