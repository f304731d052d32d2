package web

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"livedrops/domain"
)

// DropRoute is the pattern of the live drop page: /drops/ followed by a
// drop's global id. The page shows the drop's stock and status as they
// change (the dropUpdated subscription) and lets a signed-in user order one
// unit (placeOrder).
const DropRoute = "/drops/{id}"

// DropURL is the path of a drop's live page.
func DropURL(dropGID string) string { return "/drops/" + dropGID }

//go:embed drop.html
var dropHTML string

var dropTemplate = template.Must(template.New("drop").Parse(dropHTML))

// dropPage is the live drop page. Its HTML is the same for every drop (the
// script reads the id from the URL), so it is rendered once.
type dropPage struct {
	body []byte
	etag string
	// connectSrc lists the origins the page may connect to besides its own.
	connectSrc []string
}

// newDropPage renders the page for the endpoints in opts; connectSrc are
// the extra origins those endpoints need, as the Playground computed them.
func newDropPage(opts Options, connectSrc []string) (*dropPage, error) {
	if opts.Endpoint == "" {
		opts.Endpoint = "/query"
	}
	var buf bytes.Buffer
	err := dropTemplate.Execute(&buf, map[string]string{
		"Endpoint":             opts.Endpoint,
		"SubscriptionEndpoint": opts.SubscriptionEndpoint,
		"DropCSS":              AssetURL("drop/drop.css"),
		"DropJS":               AssetURL("drop/drop.js"),
		// The Playground's vendored graphql-transport-ws client.
		"GraphQLWSJS": AssetURL("playground/graphql-ws.min.js"),
	})
	if err != nil {
		return nil, fmt.Errorf("web: render drop page: %w", err)
	}
	sum := sha256.Sum256(buf.Bytes())
	return &dropPage{
		body:       buf.Bytes(),
		etag:       `"` + hex.EncodeToString(sum[:])[:hashLen] + `"`,
		connectSrc: connectSrc,
	}, nil
}

func (p *dropPage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	// Only a well-formed drop id names a page; whether the drop exists is
	// for the page to ask the API, which it does first.
	if _, err := domain.ParseID(r.PathValue("id"), domain.TypeDrop); err != nil {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", p.etag)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", p.contentSecurityPolicy(r))
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(p.body))
}

// contentSecurityPolicy is the Playground's policy made stricter: this page
// has no inline styles and no fonts, so neither is allowed. Styles the
// script sets through the CSSOM (the stock bar's widths) are not inline
// styles in CSP's sense.
func (p *dropPage) contentSecurityPolicy(r *http.Request) string {
	connect := []string{"'self'"}
	// Older browsers do not count ws:// on the same host as 'self'.
	if isPlainHost(r.Host) {
		connect = append(connect, "ws://"+r.Host, "wss://"+r.Host)
	}
	connect = append(connect, p.connectSrc...)
	return strings.Join([]string{
		"default-src 'none'",
		"script-src 'self'",
		"style-src 'self'",
		"img-src 'self' data:",
		"connect-src " + strings.Join(connect, " "),
		"base-uri 'none'",
		"form-action 'none'",
		"frame-ancestors 'none'",
	}, "; ")
}
