package web

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"livedrops/domain"
)

var dropGID = domain.GlobalID(domain.TypeDrop, 42)

func TestDropPageReferencesOnlyLocalAssetsThatResolve(t *testing.T) {
	srv := httptest.NewServer(Handler(Options{Endpoint: "/query"}))
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}

	res, err := client.Get(srv.URL + DropURL(dropGID))
	if err != nil {
		t.Fatalf("GET drop page: %v", err)
	}
	page := string(readBody(t, res))
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d, want 200", DropURL(dropGID), res.StatusCode)
	}
	if ct := res.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("page Content-Type = %q", ct)
	}
	if !strings.Contains(page, `data-endpoint="/query"`) {
		t.Errorf("page does not carry the endpoint /query")
	}
	if strings.Contains(page, "http://") || strings.Contains(page, "https://") {
		t.Errorf("page holds an absolute URL; everything must be served locally:\n%s", page)
	}
	if strings.Contains(page, "style=") || strings.Contains(page, "<style") {
		t.Errorf("page has inline styles, which its CSP refuses")
	}
	if strings.Contains(page, "<script>") {
		t.Errorf("page has an inline script, which its CSP refuses")
	}

	var scripts, styles int
	for _, m := range attrURL.FindAllStringSubmatch(page, -1) {
		ref := m[1]
		if ref == "data:," {
			continue
		}
		if !strings.HasPrefix(ref, AssetPrefix) {
			t.Errorf("page references %q, outside %s", ref, AssetPrefix)
			continue
		}
		res, err := client.Get(srv.URL + ref)
		if err != nil {
			t.Fatalf("GET %s: %v", ref, err)
		}
		readBody(t, res)
		if res.StatusCode != http.StatusOK || res.Header.Get("Cache-Control") != immutable {
			t.Errorf("GET %s = %d, Cache-Control %q; want 200 and immutable", ref, res.StatusCode, res.Header.Get("Cache-Control"))
		}
		switch res.Header.Get("Content-Type") {
		case "text/javascript; charset=utf-8":
			scripts++
		case "text/css; charset=utf-8":
			styles++
		}
	}
	// The page's own script, the graphql-ws client and the page's style.
	if scripts != 2 || styles != 1 {
		t.Errorf("page loads %d scripts and %d style sheets, want 2 and 1", scripts, styles)
	}
}

func TestDropPageSecurityHeaders(t *testing.T) {
	res := get(t, Handler(Options{}), http.MethodGet, DropURL(dropGID), nil)
	readBody(t, res)
	h := res.Header
	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self';", "form-action 'none'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("CSP %q allows inline code", csp)
	}
	// The WebSocket to /query on the page's own host must be allowed.
	if !strings.Contains(csp, "connect-src 'self' ws://example.com wss://example.com") {
		t.Errorf("CSP %q does not let the page reach the API on its host", csp)
	}
	if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("nosniff %q, Referrer-Policy %q", h.Get("X-Content-Type-Options"), h.Get("Referrer-Policy"))
	}
}

func TestDropPageFollowsEndpointOptions(t *testing.T) {
	h := Handler(Options{Endpoint: "https://api.example.test/query", SubscriptionEndpoint: "wss://live.example.test/query"})
	res := get(t, h, http.MethodGet, DropURL(dropGID), nil)
	body := string(readBody(t, res))
	if !strings.Contains(body, `data-endpoint="https://api.example.test/query"`) ||
		!strings.Contains(body, `data-subscription-endpoint="wss://live.example.test/query"`) {
		t.Errorf("page does not carry the configured endpoints")
	}
	csp := res.Header.Get("Content-Security-Policy")
	for _, origin := range []string{"https://api.example.test", "wss://live.example.test"} {
		if !strings.Contains(csp, origin) {
			t.Errorf("CSP %q does not allow %s", csp, origin)
		}
	}
}

func TestDropPageRoutes(t *testing.T) {
	h := Playground("/query")
	tests := []struct {
		method, target string
		want           int
	}{
		{http.MethodGet, DropURL(dropGID), http.StatusOK},
		{http.MethodHead, DropURL(dropGID), http.StatusOK},
		{http.MethodPost, DropURL(dropGID), http.StatusMethodNotAllowed},
		{http.MethodGet, "/drops/", http.StatusNotFound},
		{http.MethodGet, "/drops", http.StatusNotFound},
		{http.MethodGet, DropURL(dropGID) + "/more", http.StatusNotFound},
		// Ids of other types, or malformed, name no drop page.
		{http.MethodGet, DropURL(domain.GlobalID(domain.TypeUser, 42)), http.StatusNotFound},
		{http.MethodGet, "/drops/42", http.StatusNotFound},
		{http.MethodGet, "/drops/" + dropGID + "%3D", http.StatusNotFound},
		{http.MethodGet, "/drops/%3Cscript%3E", http.StatusNotFound},
		// The Playground is still where it was.
		{http.MethodGet, "/", http.StatusOK},
		{http.MethodGet, "/assets/drop/drop.js", http.StatusOK},
	}
	for _, tt := range tests {
		res := get(t, h, tt.method, tt.target, nil)
		readBody(t, res)
		if res.StatusCode != tt.want {
			t.Errorf("%s %s = %d, want %d", tt.method, tt.target, res.StatusCode, tt.want)
		}
	}
}

func TestDropPageIsOnePageForEveryDrop(t *testing.T) {
	h := Playground("/query")
	a := get(t, h, http.MethodGet, DropURL(domain.GlobalID(domain.TypeDrop, 1)), nil)
	b := get(t, h, http.MethodGet, DropURL(domain.GlobalID(domain.TypeDrop, 2)), nil)
	if string(readBody(t, a)) != string(readBody(t, b)) || a.Header.Get("ETag") != b.Header.Get("ETag") {
		t.Errorf("two drops got different pages; the script reads the id from the URL")
	}
	etag := a.Header.Get("ETag")
	if etag == "" || a.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("ETag %q, Cache-Control %q: want an ETag and no-cache", etag, a.Header.Get("Cache-Control"))
	}
	res := get(t, h, http.MethodGet, DropURL(dropGID), map[string]string{"If-None-Match": etag})
	if res.StatusCode != http.StatusNotModified {
		t.Errorf("conditional GET = %d, want 304", res.StatusCode)
	}
}

func TestDropPageCSPIgnoresOddHosts(t *testing.T) {
	req := httptest.NewRequest(http.MethodGet, DropURL(dropGID), nil)
	req.Host = "evil.test;script-src *"
	rec := httptest.NewRecorder()
	Playground("/query").ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET = %d", rec.Code)
	}
	if csp := rec.Header().Get("Content-Security-Policy"); strings.Contains(csp, "evil") {
		t.Errorf("CSP took in the Host header: %q", csp)
	}
}

// The page's script finds every element it writes to: an id renamed in one
// file and not the other would break the page only at run time.
func TestDropScriptElementsExist(t *testing.T) {
	script := string(assets["drop/drop.js"].data)
	for _, m := range dollarID.FindAllStringSubmatch(script, -1) {
		if !strings.Contains(dropHTML, `id="`+m[1]+`"`) {
			t.Errorf("drop.js uses #%s, which drop.html does not have", m[1])
		}
	}
}

var dollarID = regexp.MustCompile(`\$\('([a-z-]+)'\)`)
