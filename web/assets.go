package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
)

// AssetPrefix is the URL path under which Assets serves the embedded files.
const AssetPrefix = "/assets/"

//go:embed assets
var embedded embed.FS

// hashLen is how many hex digits of a file's SHA-256 go into its fingerprinted
// URL: enough that two versions of one file never collide in practice.
const hashLen = 12

// immutable is sent with fingerprinted URLs: their content never changes.
const immutable = "public, max-age=31536000, immutable"

// contentTypes pins the types browsers are strict about, so they do not depend
// on the host's mime tables.
var contentTypes = map[string]string{
	".js":    "text/javascript; charset=utf-8",
	".mjs":   "text/javascript; charset=utf-8",
	".css":   "text/css; charset=utf-8",
	".html":  "text/html; charset=utf-8",
	".json":  "application/json",
	".svg":   "image/svg+xml",
	".png":   "image/png",
	".ico":   "image/x-icon",
	".woff2": "font/woff2",
	"":       "text/plain; charset=utf-8", // VERSIONS, LICENSES
}

type asset struct {
	name        string // path under assets/, e.g. "playground/graphiql.min.js"
	data        []byte
	hash        string
	contentType string

	gzipOnce sync.Once
	gzipped  []byte // nil when compressing does not make the file smaller
}

// assets holds every embedded file, keyed by its path under assets/.
var assets = mustLoadAssets()

func mustLoadAssets() map[string]*asset {
	m, err := loadAssets(embedded, "assets")
	if err != nil {
		panic(err)
	}
	return m
}

func loadAssets(fsys fs.FS, root string) (map[string]*asset, error) {
	m := make(map[string]*asset)
	err := fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return fmt.Errorf("web: read embedded asset %s: %w", p, err)
		}
		sum := sha256.Sum256(data)
		name := strings.TrimPrefix(p, root+"/")
		m[name] = &asset{
			name:        name,
			data:        data,
			hash:        hex.EncodeToString(sum[:])[:hashLen],
			contentType: contentTypeOf(name),
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("web: load embedded assets: %w", err)
	}
	return m, nil
}

func contentTypeOf(name string) string {
	ext := strings.ToLower(path.Ext(name))
	if ct, ok := contentTypes[ext]; ok {
		return ct
	}
	if ct := mime.TypeByExtension(ext); ct != "" {
		return ct
	}
	return "application/octet-stream"
}

// AssetURL returns the fingerprinted URL of an embedded file, named by its
// path under web/assets/ (e.g. "playground/graphiql.min.js"). The URL changes
// whenever the file does, so browsers and CDNs may cache it forever. It panics
// if no such file is embedded: that is a programming error caught by tests.
func AssetURL(name string) string {
	a, ok := assets[name]
	if !ok {
		panic(fmt.Sprintf("web: no embedded asset %q", name))
	}
	return AssetPrefix + fingerprint(a.name, a.hash)
}

// fingerprint puts the hash before the last extension:
// "playground/graphiql.min.js" becomes "playground/graphiql.min.<hash>.js".
func fingerprint(name, hash string) string {
	ext := path.Ext(name)
	return strings.TrimSuffix(name, ext) + "." + hash + ext
}

// unfingerprint undoes fingerprint, reporting the hash it found, if any.
func unfingerprint(name string) (plain, hash string, ok bool) {
	ext := path.Ext(name)
	stem := strings.TrimSuffix(name, ext)
	if h := strings.TrimPrefix(path.Ext(stem), "."); isHash(h) {
		return strings.TrimSuffix(stem, "."+h) + ext, h, true
	}
	// A file without an extension carries its hash as one.
	if h := strings.TrimPrefix(ext, "."); isHash(h) {
		return stem, h, true
	}
	return "", "", false
}

func isHash(s string) bool {
	if len(s) != hashLen {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// Assets serves the embedded files under AssetPrefix ("/assets/"); it expects
// the full request path, so mount it at that prefix without stripping it.
// A fingerprinted URL (see AssetURL) is cached for a year; the plain path of a
// file is served too, but must be revalidated with its ETag.
func Assets() http.Handler {
	return http.HandlerFunc(serveAsset)
}

func serveAsset(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name, found := strings.CutPrefix(r.URL.Path, AssetPrefix)
	if !found {
		http.NotFound(w, r)
		return
	}
	cache := "no-cache"
	a, ok := assets[name]
	if !ok {
		plain, hash, isFingerprinted := unfingerprint(name)
		if isFingerprinted {
			a, ok = assets[plain]
		}
		if !ok {
			http.NotFound(w, r)
			return
		}
		// A stale fingerprint (a page from an older build) still gets the
		// current file, but must not be cached under that URL.
		if hash == a.hash {
			cache = immutable
		}
	}
	a.serve(w, r, cache)
}

func (a *asset) serve(w http.ResponseWriter, r *http.Request, cacheControl string) {
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("Cache-Control", cacheControl)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Add("Vary", "Accept-Encoding")
	body, etag := a.data, `"`+a.hash+`"`
	// Ranges are served from the plain file: a range of gzipped bytes is
	// rarely what a client can use.
	if gz := a.gzip(); gz != nil && acceptsGzip(r) && r.Header.Get("Range") == "" {
		h.Set("Content-Encoding", "gzip")
		// ServeContent leaves the length out once an encoding is set.
		h.Set("Content-Length", strconv.Itoa(len(gz)))
		body, etag = gz, `"`+a.hash+`-gz"`
	}
	h.Set("ETag", etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// gzip compresses the file on first use, so start-up does not pay for files
// nobody asks for.
func (a *asset) gzip() []byte {
	a.gzipOnce.Do(func() {
		if !compressible(a.contentType) {
			return
		}
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		if _, err := zw.Write(a.data); err != nil {
			return
		}
		if err := zw.Close(); err != nil {
			return
		}
		if buf.Len() < len(a.data) {
			a.gzipped = buf.Bytes()
		}
	})
	return a.gzipped
}

func compressible(contentType string) bool {
	return strings.HasPrefix(contentType, "text/") ||
		strings.HasPrefix(contentType, "application/json") ||
		strings.HasPrefix(contentType, "image/svg+xml")
}

// acceptsGzip reads Accept-Encoding well enough for real browsers and proxies:
// gzip listed, and not refused with q=0.
func acceptsGzip(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept-Encoding") {
		for _, part := range strings.Split(v, ",") {
			coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
				continue
			}
			q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}
