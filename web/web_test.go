package web

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"strings"
	"testing"
)

// get fetches path from h in-process with the given request headers.
func get(t *testing.T, h http.Handler, method, target string, header map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func readBody(t *testing.T, res *http.Response) []byte {
	t.Helper()
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return b
}

var attrURL = regexp.MustCompile(`(?:src|href)="([^"]*)"`)

func TestPageReferencesOnlyLocalAssetsThatResolve(t *testing.T) {
	srv := httptest.NewServer(Handler(Options{Endpoint: "/query"}))
	defer srv.Close()
	// Compression is negotiated explicitly below, not by the transport.
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}

	res, err := client.Get(srv.URL + "/")
	if err != nil {
		t.Fatalf("GET /: %v", err)
	}
	page := string(readBody(t, res))
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET / = %d, want 200", res.StatusCode)
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
	csp := res.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("page CSP = %q, want scripts from self only", csp)
	}

	refs := attrURL.FindAllStringSubmatch(page, -1)
	var assetRefs int
	for _, m := range refs {
		ref := m[1]
		if ref == "data:," { // the empty favicon, which spares a request
			continue
		}
		if !strings.HasPrefix(ref, AssetPrefix) {
			t.Errorf("page references %q, outside %s", ref, AssetPrefix)
			continue
		}
		assetRefs++
		res, err := client.Get(srv.URL + ref)
		if err != nil {
			t.Fatalf("GET %s: %v", ref, err)
		}
		body := readBody(t, res)
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d, want 200", ref, res.StatusCode)
			continue
		}
		wantType := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}[path.Ext(ref)]
		if got := res.Header.Get("Content-Type"); got != wantType {
			t.Errorf("GET %s Content-Type = %q, want %q", ref, got, wantType)
		}
		if got := res.Header.Get("Cache-Control"); got != immutable {
			t.Errorf("GET %s Cache-Control = %q, want %q", ref, got, immutable)
		}
		plain, _, _ := unfingerprint(strings.TrimPrefix(ref, AssetPrefix))
		if a := assets[plain]; a == nil || !bytes.Equal(body, a.data) {
			t.Errorf("GET %s did not return the embedded %s", ref, plain)
		}
	}
	// React, ReactDOM, graphql-ws, GraphiQL, its CSS, and the page's own JS and CSS.
	if assetRefs != 7 {
		t.Errorf("page references %d assets, want 7: %v", assetRefs, refs)
	}
}

func TestPageEndpointOptions(t *testing.T) {
	tests := []struct {
		name       string
		opts       Options
		wantInPage []string
		wantCSP    []string
	}{
		{
			name:       "default endpoint",
			opts:       Options{},
			wantInPage: []string{`data-endpoint="/query"`, `data-subscription-endpoint=""`},
			wantCSP:    []string{"connect-src 'self' ws://example.test wss://example.test"},
		},
		{
			name:       "path endpoint",
			opts:       Options{Endpoint: "/graphql"},
			wantInPage: []string{`data-endpoint="/graphql"`},
		},
		{
			name:       "absolute endpoint",
			opts:       Options{Endpoint: "https://api.example.test/query"},
			wantInPage: []string{`data-endpoint="https://api.example.test/query"`},
			wantCSP:    []string{"https://api.example.test", "wss://api.example.test"},
		},
		{
			name:       "separate subscription endpoint",
			opts:       Options{Endpoint: "/query", SubscriptionEndpoint: "wss://live.example.test/query"},
			wantInPage: []string{`data-subscription-endpoint="wss://live.example.test/query"`},
			wantCSP:    []string{"wss://live.example.test"},
		},
		{
			name:       "custom default query is escaped",
			opts:       Options{DefaultQuery: `{ creator(handle: "<b>") { id } }`},
			wantInPage: []string{`data-default-query="{ creator(handle: &#34;&lt;b&gt;&#34;) { id } }"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := get(t, Handler(tt.opts), http.MethodGet, "http://example.test/", nil)
			page := string(readBody(t, res))
			for _, want := range tt.wantInPage {
				if !strings.Contains(page, want) {
					t.Errorf("page lacks %s", want)
				}
			}
			csp := res.Header.Get("Content-Security-Policy")
			for _, want := range tt.wantCSP {
				if !strings.Contains(csp, want) {
					t.Errorf("CSP %q lacks %s", csp, want)
				}
			}
		})
	}
}

func TestPlaygroundShowsDefaultQuery(t *testing.T) {
	page := string(readBody(t, get(t, Playground("/query"), http.MethodGet, "/", nil)))
	for _, want := range []string{"viewer {", "creators(first: 5)", "followerCount", "Authorization"} {
		if !strings.Contains(page, want) {
			t.Errorf("page's default query lacks %q", want)
		}
	}
}

func TestHandlerRejectsBadEndpoints(t *testing.T) {
	for _, opts := range []Options{
		{Endpoint: "query"},
		{Endpoint: "javascript:alert(1)"},
		{Endpoint: "ftp://example.test/query"},
		{Endpoint: "//example.test/query"},
		{SubscriptionEndpoint: "http://example.test/query"},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Handler(%+v) accepted a bad endpoint", opts)
				}
			}()
			Handler(opts)
		}()
	}
}

func TestHandlerRoutes(t *testing.T) {
	h := Playground("/query")
	tests := []struct {
		method, target string
		want           int
	}{
		{http.MethodGet, "/", http.StatusOK},
		{http.MethodHead, "/", http.StatusOK},
		{http.MethodPost, "/", http.StatusMethodNotAllowed},
		{http.MethodGet, "/index.html", http.StatusNotFound},
		{http.MethodGet, "/favicon.ico", http.StatusNotFound},
		{http.MethodGet, "/assets/playground/playground.js", http.StatusOK},
		{http.MethodPost, "/assets/playground/playground.js", http.StatusMethodNotAllowed},
		{http.MethodGet, "/assets/playground/missing.js", http.StatusNotFound},
		{http.MethodGet, "/assets/", http.StatusNotFound},
		// ServeMux redirects to the cleaned path, which is then not found.
		{http.MethodGet, "/assets/../web.go", http.StatusTemporaryRedirect},
		{http.MethodGet, "/web.go", http.StatusNotFound},
	}
	for _, tt := range tests {
		res := get(t, h, tt.method, tt.target, nil)
		readBody(t, res)
		if res.StatusCode != tt.want {
			t.Errorf("%s %s = %d, want %d", tt.method, tt.target, res.StatusCode, tt.want)
		}
	}
}

func TestPageRevalidates(t *testing.T) {
	h := Playground("/query")
	res := get(t, h, http.MethodGet, "/", nil)
	readBody(t, res)
	etag := res.Header.Get("ETag")
	if etag == "" || res.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("page ETag %q, Cache-Control %q: want an ETag and no-cache", etag, res.Header.Get("Cache-Control"))
	}
	if res := get(t, h, http.MethodGet, "/", map[string]string{"If-None-Match": etag}); res.StatusCode != http.StatusNotModified {
		t.Errorf("conditional GET / = %d, want 304", res.StatusCode)
	}
}

func TestAssetCaching(t *testing.T) {
	const name = "playground/graphiql.min.js"
	a := assets[name]
	if a == nil {
		t.Fatalf("%s is not embedded", name)
	}
	url := AssetURL(name)
	if url != "/assets/playground/graphiql.min."+a.hash+".js" {
		t.Fatalf("AssetURL(%q) = %q", name, url)
	}
	stale := "/assets/playground/graphiql.min.000000000000.js"

	tests := []struct {
		target    string
		wantCache string
	}{
		{url, immutable},
		{"/assets/" + name, "no-cache"},
		{stale, "no-cache"}, // an older page's URL gets today's file, uncached
	}
	for _, tt := range tests {
		res := get(t, Assets(), http.MethodGet, tt.target, nil)
		body := readBody(t, res)
		if res.StatusCode != http.StatusOK || !bytes.Equal(body, a.data) {
			t.Errorf("GET %s = %d with %d bytes, want 200 with the file", tt.target, res.StatusCode, len(body))
		}
		if got := res.Header.Get("Cache-Control"); got != tt.wantCache {
			t.Errorf("GET %s Cache-Control = %q, want %q", tt.target, got, tt.wantCache)
		}
		if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("GET %s X-Content-Type-Options = %q", tt.target, got)
		}
		etag := res.Header.Get("ETag")
		cond := get(t, Assets(), http.MethodGet, tt.target, map[string]string{"If-None-Match": etag})
		if cond.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s If-None-Match %s = %d, want 304", tt.target, etag, cond.StatusCode)
		}
	}
}

func TestAssetCompression(t *testing.T) {
	const name = "playground/graphiql.min.js"
	a := assets[name]
	tests := []struct {
		acceptEncoding string
		wantGzip       bool
	}{
		{"", false},
		{"gzip", true},
		{"br, gzip, deflate", true},
		{"GZIP;q=0.5", true},
		{"gzip;q=0", false},
		{"identity", false},
	}
	for _, tt := range tests {
		res := get(t, Assets(), http.MethodGet, AssetURL(name), map[string]string{"Accept-Encoding": tt.acceptEncoding})
		body := readBody(t, res)
		gotGzip := res.Header.Get("Content-Encoding") == "gzip"
		if gotGzip != tt.wantGzip {
			t.Errorf("Accept-Encoding %q: gzip = %v, want %v", tt.acceptEncoding, gotGzip, tt.wantGzip)
			continue
		}
		if !strings.Contains(res.Header.Get("Vary"), "Accept-Encoding") {
			t.Errorf("Accept-Encoding %q: Vary = %q", tt.acceptEncoding, res.Header.Get("Vary"))
		}
		if gotGzip {
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				t.Fatalf("gzip reader: %v", err)
			}
			if body, err = io.ReadAll(zr); err != nil {
				t.Fatalf("gunzip: %v", err)
			}
			if len(res.Header.Get("Content-Length")) == 0 {
				t.Errorf("gzipped response has no Content-Length")
			}
		}
		if !bytes.Equal(body, a.data) {
			t.Errorf("Accept-Encoding %q: body is not the embedded file", tt.acceptEncoding)
		}
	}
}

func TestAssetContentTypes(t *testing.T) {
	want := map[string]string{
		"playground/graphiql.min.css": "text/css; charset=utf-8",
		"playground/playground.js":    "text/javascript; charset=utf-8",
		"playground/VERSIONS":         "text/plain; charset=utf-8",
		"playground/LICENSES":         "text/plain; charset=utf-8",
	}
	for name, ct := range want {
		res := get(t, Assets(), http.MethodHead, AssetPrefix+name, nil)
		if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != ct {
			t.Errorf("HEAD %s = %d %q, want 200 %q", name, res.StatusCode, res.Header.Get("Content-Type"), ct)
		}
	}
}

// The third-party files on disk are exactly those VERSIONS accounts for.
func TestVersionsListsEveryVendoredFile(t *testing.T) {
	own := map[string]bool{"playground.js": true, "playground.css": true, "VERSIONS": true, "LICENSES": true}
	listed := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(assets["playground/VERSIONS"].data))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 4 || !strings.Contains(fields[0], "@") || !strings.HasPrefix(fields[2], "sha512-") {
			t.Errorf("VERSIONS line %q is not: package@version license integrity files...", line)
			continue
		}
		if !bytes.Contains(assets["playground/LICENSES"].data, []byte("===== "+fields[0]+" ")) {
			t.Errorf("LICENSES lacks the license of %s", fields[0])
		}
		for _, f := range fields[3:] {
			listed[f] = true
			if assets["playground/"+f] == nil {
				t.Errorf("VERSIONS lists %s, which is not embedded", f)
			}
		}
	}
	for name := range assets {
		base := strings.TrimPrefix(name, "playground/")
		if strings.HasPrefix(name, "playground/") && !own[base] && !listed[base] {
			t.Errorf("%s is embedded but not listed in VERSIONS", name)
		}
	}
}

func TestFingerprintRoundTrip(t *testing.T) {
	tests := []struct{ name, hash, want string }{
		{"playground/graphiql.min.js", "0123456789ab", "playground/graphiql.min.0123456789ab.js"},
		{"a.css", "abcdefabcdef", "a.abcdefabcdef.css"},
		{"dir/VERSIONS", "abcdefabcdef", "dir/VERSIONS.abcdefabcdef"},
	}
	for _, tt := range tests {
		got := fingerprint(tt.name, tt.hash)
		if got != tt.want {
			t.Errorf("fingerprint(%q) = %q, want %q", tt.name, got, tt.want)
		}
		plain, hash, ok := unfingerprint(got)
		if !ok || plain != tt.name || hash != tt.hash {
			t.Errorf("unfingerprint(%q) = %q, %q, %v", got, plain, hash, ok)
		}
	}
	for _, bad := range []string{"graphiql.min.js", "a.0123456789.js", "a.0123456789xz.js", "noext", "a.b.c"} {
		if _, _, ok := unfingerprint(bad); ok {
			t.Errorf("unfingerprint(%q) found a fingerprint", bad)
		}
	}
	// Every embedded file is reachable by its fingerprinted URL.
	for name, a := range assets {
		plain, hash, ok := unfingerprint(fingerprint(name, a.hash))
		if !ok || plain != name || hash != a.hash {
			t.Errorf("%s does not round-trip through its fingerprint", name)
		}
	}
}

func TestCSPIgnoresOddHosts(t *testing.T) {
	h := Playground("/query")
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Host = "evil.test;script-src *"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if csp := rec.Header().Get("Content-Security-Policy"); strings.Contains(csp, "evil") {
		t.Errorf("CSP took in the Host header: %q", csp)
	}
}

func FuzzAssetPath(f *testing.F) {
	f.Add("/assets/playground/graphiql.min.js")
	f.Add(AssetURL("playground/playground.css"))
	f.Add("/assets/playground/x.000000000000.js")
	f.Add("/assets/%2e%2e/web.go")
	h := Assets()
	f.Fuzz(func(t *testing.T, p string) {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.URL.Path = p
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK && rec.Code != http.StatusNotFound {
			t.Fatalf("GET %q = %d, want 200 or 404", p, rec.Code)
		}
		if rec.Code == http.StatusOK {
			name, _ := strings.CutPrefix(p, AssetPrefix)
			if assets[name] == nil {
				if plain, _, ok := unfingerprint(name); !ok || assets[plain] == nil {
					t.Fatalf("GET %q served a file it does not name", p)
				}
			}
		}
	})
}

func TestAssetRangeIsServedPlain(t *testing.T) {
	a := assets["playground/playground.js"]
	res := get(t, Assets(), http.MethodGet, AssetURL("playground/playground.js"),
		map[string]string{"Accept-Encoding": "gzip", "Range": "bytes=0-9"})
	body := readBody(t, res)
	if res.StatusCode != http.StatusPartialContent || res.Header.Get("Content-Encoding") != "" {
		t.Fatalf("ranged GET = %d, encoding %q; want 206 unencoded", res.StatusCode, res.Header.Get("Content-Encoding"))
	}
	if !bytes.Equal(body, a.data[:10]) {
		t.Errorf("ranged GET body = %q, want %q", body, a.data[:10])
	}
}
