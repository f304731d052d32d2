package httpapi

import (
	"io"
	"net/http"
	"sync"
	"time"

	"livedrops/domain"
	"livedrops/ratelimit"
)

// boundBodyRead gives a request at most d to send its body. The server has no
// ReadTimeout, which would cut WebSocket and SSE streams too; here the
// deadline is lifted once the body has been read to its end, so a stream
// that follows its request lives on.
func boundBodyRead(d time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			rc := http.NewResponseController(w)
			if rc.SetReadDeadline(time.Now().Add(d)) == nil {
				r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// deadlineBody lifts the connection's read deadline when its body ends.
type deadlineBody struct {
	io.ReadCloser
	rc     *http.ResponseController
	lifted bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.lifted {
		b.lifted = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// addrCount counts what each client address holds open (WebSockets), up to
// max each.
type addrCount struct {
	max int
	mu  sync.Mutex
	n   map[string]int // by ratelimit.AddrKey
}

func newAddrCount(max int) *addrCount { return &addrCount{max: max, n: map[string]int{}} }

// take counts one more for the client of r, or reports false when it holds
// max already; release gives it back. A request with no known address is
// not counted.
func (c *addrCount) take(r *http.Request) (release func(), ok bool) {
	addr := domain.ClientAddr(r.Context())
	if !addr.IsValid() {
		return func() {}, true
	}
	a := ratelimit.AddrKey(addr)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[a] >= c.max {
		return nil, false
	}
	c.n[a]++
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.n[a]--; c.n[a] == 0 {
			delete(c.n, a)
		}
	}, true
}
