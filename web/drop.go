package web

import (
	_ "embed"
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

// dropPage is the live page of a drop. It is the same for every drop (its
// script reads the id from the URL), so it is rendered once.
type dropPage struct{ *page }

// newDropPage renders the page for the endpoints in opts; connectSrc are
// the extra origins those endpoints need, as the Playground computed them.
func newDropPage(opts Options, connectSrc []string) (*dropPage, error) {
	if opts.Endpoint == "" {
		opts.Endpoint = "/query"
	}
	// Stricter than the Playground: no inline styles and no fonts. Styles the
	// script sets through the CSSOM (the stock bar's widths) are not inline
	// styles in CSP's sense.
	p, err := renderPage(dropTemplate, map[string]string{
		"Endpoint":             opts.Endpoint,
		"SubscriptionEndpoint": opts.SubscriptionEndpoint,
		"DropCSS":              AssetURL("drop/drop.css"),
		"DropJS":               AssetURL("drop/drop.js"),
		// The Playground's vendored graphql-transport-ws client.
		"GraphQLWSJS": AssetURL("playground/graphql-ws.min.js"),
	}, connectSrc, "style-src 'self'")
	if err != nil {
		return nil, err
	}
	return &dropPage{p}, nil
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
	p.write(w, r)
}
