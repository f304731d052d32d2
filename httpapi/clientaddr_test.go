package httpapi

import (
	"net/http"
	"net/netip"
	"testing"
)

func TestClientAddr(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	for _, tc := range []struct {
		name, remote string
		xff          []string
		want         string
	}{
		{"no proxy", "203.0.113.5:4000", nil, "203.0.113.5"},
		{"untrusted peer's header ignored", "203.0.113.5:4000", []string{"198.51.100.1"}, "203.0.113.5"},
		{"trusted proxy", "10.0.0.2:4000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"client-written entries left of the proxy's ignored", "10.0.0.2:4000", []string{"1.2.3.4, 198.51.100.1"}, "198.51.100.1"},
		{"chain of trusted proxies", "10.0.0.2:4000", []string{"198.51.100.1, 10.0.0.9"}, "198.51.100.1"},
		{"several headers", "10.0.0.2:4000", []string{"1.2.3.4", "198.51.100.1"}, "198.51.100.1"},
		{"trusted proxy, no header", "10.0.0.2:4000", nil, "10.0.0.2"},
		{"garbage from a trusted proxy", "10.0.0.2:4000", []string{"198.51.100.1, not-an-ip"}, "10.0.0.2"},
		{"all trusted", "10.0.0.2:4000", []string{"10.1.1.1"}, "10.1.1.1"},
		{"IPv6 proxy", "[fd00::1]:4000", []string{"2001:db8::7"}, "2001:db8::7"},
		{"IPv4-mapped peer", "[::ffff:10.0.0.2]:4000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"no peer", "", nil, "invalid IP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tc.remote, Header: http.Header{}}
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := clientAddr(r, trusted).String(); got != tc.want {
				t.Fatalf("clientAddr = %s; want %s", got, tc.want)
			}
		})
	}
}
