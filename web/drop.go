package web

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"net/http"

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
	if !allowRead(w, r) {
		return
	}
	// Only a well-formed drop id names a page; whether the drop exists is
	// for the page to ask the API, which it does first.
	if _, err := domain.ParseID(r.PathValue("id"), domain.TypeDrop); err != nil {
		http.NotFound(w, r)
		return
	}
	// Stricter than the Playground: no inline styles and no fonts. Styles the
	// script sets through the CSSOM (the stock bar's widths) are not inline
	// styles in CSP's sense.
	writePage(w, r, p.body, p.etag, contentSecurityPolicy(r, p.connectSrc, "style-src 'self'"))
}
