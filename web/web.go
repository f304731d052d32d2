// Package web serves the pages the server shows to people: the GraphQL
// Playground (GraphiQL) at "/" and a drop's live page at "/drops/{id}", with
// every script and style embedded in the binary so they work with no network
// beyond the server itself.
package web

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultQuery is what the Playground shows on a first visit.
const DefaultQuery = `# Welcome to the Live Drops GraphQL API.
#
# Run this query with the play button or Ctrl+Enter.
#
# To act as a user, run the signUp or logIn mutation,
# then set this in the Headers tab below:
#   {"Authorization": "Bearer <token>"}
# Subscriptions (dropUpdated, dropEvents, ...) run over
# WebSocket and send the same header when they connect.
{
  viewer {
    id
    handle
  }
  creators(first: 5) {
    edges {
      node {
        id
        handle
        displayName
        followerCount
      }
    }
  }
}
`

// Options configures the Playground.
type Options struct {
	// Endpoint is where queries and mutations are sent (POST, JSON): a path on
	// the page's own host such as "/query", or an absolute http(s) URL.
	// Empty means "/query".
	Endpoint string
	// SubscriptionEndpoint is the WebSocket URL for subscriptions
	// (graphql-transport-ws). Empty means Endpoint on the page's host, with
	// ws:// or wss:// matching the page's scheme.
	SubscriptionEndpoint string
	// DefaultQuery replaces the package's DefaultQuery when not empty.
	DefaultQuery string
}

//go:embed playground.html
var playgroundHTML string

var playgroundTemplate = template.Must(template.New("playground").Parse(playgroundHTML))

// Handler serves the Playground page at "/", the live drop page at
// DropRoute ("/drops/{id}") and the embedded assets under AssetPrefix
// ("/assets/"); mount it at "/" (a more specific route such as "/query"
// still wins in an http.ServeMux). Any other path is 404. It panics on an
// endpoint that is neither a path nor an http(s)/ws(s) URL, as
// http.ServeMux does on a bad pattern: a configuration error found at start.
func Handler(opts Options) http.Handler {
	page, err := newPage(opts)
	if err != nil {
		panic(err)
	}
	drop, err := newDropPage(opts, page.connectSrc)
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle(AssetPrefix, Assets())
	mux.Handle("/{$}", page)
	mux.Handle(DropRoute, drop)
	return mux
}

// Playground is Handler with only the endpoint set.
func Playground(endpoint string) http.Handler {
	return Handler(Options{Endpoint: endpoint})
}

type page struct {
	body []byte
	etag string
	// connectSrc lists the origins the page may connect to besides its own.
	connectSrc []string
	// styles are the page's style (and font) CSP directives.
	styles []string
}

// renderPage renders t with data once, for every request to come.
func renderPage(t *template.Template, data map[string]string, connectSrc []string, styles ...string) (*page, error) {
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		return nil, fmt.Errorf("web: render %s: %w", t.Name(), err)
	}
	sum := sha256.Sum256(buf.Bytes())
	return &page{
		body:       buf.Bytes(),
		etag:       `"` + hex.EncodeToString(sum[:])[:hashLen] + `"`,
		connectSrc: connectSrc,
		styles:     styles,
	}, nil
}

func newPage(opts Options) (*page, error) {
	if opts.Endpoint == "" {
		opts.Endpoint = "/query"
	}
	if opts.DefaultQuery == "" {
		opts.DefaultQuery = DefaultQuery
	}
	var connect []string
	httpOrigin, err := endpointOrigin(opts.Endpoint, "http", "https")
	if err != nil {
		return nil, fmt.Errorf("web: playground endpoint: %w", err)
	}
	wsOrigin := ""
	if opts.SubscriptionEndpoint != "" {
		if wsOrigin, err = endpointOrigin(opts.SubscriptionEndpoint, "ws", "wss"); err != nil {
			return nil, fmt.Errorf("web: playground subscription endpoint: %w", err)
		}
	}
	for _, o := range []string{httpOrigin, wsOrigin} {
		if o != "" {
			connect = append(connect, o)
		}
	}
	if httpOrigin != "" && wsOrigin == "" {
		// Subscriptions follow an absolute endpoint to its host.
		connect = append(connect, "ws"+strings.TrimPrefix(httpOrigin, "http"))
	}

	// GraphiQL sets inline styles and embeds its fonts as data: URLs.
	return renderPage(playgroundTemplate, map[string]string{
		"Endpoint":             opts.Endpoint,
		"SubscriptionEndpoint": opts.SubscriptionEndpoint,
		"DefaultQuery":         opts.DefaultQuery,
		"GraphiQLCSS":          AssetURL("playground/graphiql.min.css"),
		"PlaygroundCSS":        AssetURL("playground/playground.css"),
		"ReactJS":              AssetURL("playground/react.production.min.js"),
		"ReactDOMJS":           AssetURL("playground/react-dom.production.min.js"),
		"GraphQLWSJS":          AssetURL("playground/graphql-ws.min.js"),
		"GraphiQLJS":           AssetURL("playground/graphiql.min.js"),
		"PlaygroundJS":         AssetURL("playground/playground.js"),
	}, connect, "style-src 'self' 'unsafe-inline'", "font-src 'self' data:")
}

// endpointOrigin checks that endpoint is a path on this host (origin "") or an
// absolute URL with one of the given schemes (its origin).
func endpointOrigin(endpoint, scheme, secureScheme string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", fmt.Errorf("parse %q: %w", endpoint, err)
	}
	switch {
	case u.Scheme == "" && u.Host == "" && strings.HasPrefix(u.Path, "/"):
		return "", nil
	case (u.Scheme == scheme || u.Scheme == secureScheme) && u.Host != "":
		return u.Scheme + "://" + u.Host, nil
	default:
		return "", fmt.Errorf("%q is neither a path starting with / nor a %s:// or %s:// URL", endpoint, scheme, secureScheme)
	}
}

func (p *page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if allowRead(w, r) {
		p.write(w, r)
	}
}

// allowRead answers 405 to anything but GET and HEAD, reporting whether the
// request may go on.
func allowRead(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	return false
}

// write sends the page with the headers every page shares: revalidated on
// each visit, never sniffed, framed or sent as a referrer, under its CSP.
func (p *page) write(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", p.etag)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", contentSecurityPolicy(r, p.connectSrc, p.styles...))
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(p.body))
}

// contentSecurityPolicy lets a page load code only from this server, so a
// stray CDN reference fails loudly instead of leaking users' traffic. It may
// connect to its own origin (HTTP and WebSocket) and to connectSrc; styles
// are the page's own style (and font) directives.
func contentSecurityPolicy(r *http.Request, connectSrc []string, styles ...string) string {
	connect := []string{"'self'"}
	// Older browsers do not count ws:// on the same host as 'self'.
	if isPlainHost(r.Host) {
		connect = append(connect, "ws://"+r.Host, "wss://"+r.Host)
	}
	connect = append(connect, connectSrc...)
	directives := append([]string{"default-src 'none'", "script-src 'self'"}, styles...)
	return strings.Join(append(directives,
		"img-src 'self' data:",
		"connect-src "+strings.Join(connect, " "),
		"base-uri 'none'",
		"form-action 'none'",
		"frame-ancestors 'none'",
	), "; ")
}

// isPlainHost accepts host[:port] made only of characters that cannot end or
// add a CSP directive (net/http lets ';' through in Host).
func isPlainHost(host string) bool {
	if host == "" {
		return false
	}
	for _, c := range host {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '-' || c == ':' || c == '[' || c == ']'
		if !ok {
			return false
		}
	}
	return true
}
