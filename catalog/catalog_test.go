package catalog_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"livedrops/cache"
	"livedrops/catalog"
	"livedrops/config"
	"livedrops/domain"
	"livedrops/internal/testenv"
	"livedrops/media"
	"livedrops/media/mediatest"
	"livedrops/store"
	"livedrops/store/storetest"
)

type env struct {
	svc   *catalog.Service
	db    *store.DB
	cache *cache.Cache
	rdb   redis.UniversalClient
	cfg   *config.Config
}

// setup wires the service to a fresh database, a Redis prefix and an S3
// bucket of the test's own, on the real servers.
func setup(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	db := storetest.Open(t)
	redisURL, prefix := testenv.Redis(t)
	rdb, err := cache.Connect(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	c := cache.New(rdb, prefix, time.Minute)
	endpoint, bucket := testenv.S3(t)
	cfg := &config.Config{
		S3Endpoint: endpoint, S3Bucket: bucket, S3Region: testenv.S3Region,
		S3AccessKey: testenv.S3AccessKey, S3SecretKey: testenv.S3SecretKey,
		MediaBaseURL: endpoint + "/" + bucket,
	}
	ms, err := media.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{svc: catalog.New(db, ms, c), db: db, cache: c, rdb: rdb, cfg: cfg}
}

// user signs up a user, a creator when asked; it returns the user id.
func (e *env) user(t *testing.T, handle string, creator bool) int64 {
	t.Helper()
	ctx := context.Background()
	u, err := e.db.CreateUser(ctx, handle, handle, "hash")
	if err != nil {
		t.Fatal(err)
	}
	if creator {
		if _, err := e.db.CreateCreator(ctx, u.ID, handle, ""); err != nil {
			t.Fatal(err)
		}
	}
	return u.ID
}

func wantError(t *testing.T, err error, code, field string) {
	t.Helper()
	var de *domain.Error
	if !errors.As(err, &de) || de.Code != code || de.Field != field {
		t.Fatalf("err = %#v, want %s on %q", err, code, field)
	}
}

func TestCreateProduct(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	ada := e.user(t, "ada", true)
	bo := e.user(t, "bo", false)

	_, err := e.svc.CreateProduct(ctx, bo, catalog.ProductInput{Title: "x", PriceCents: 1, Currency: "USD"})
	wantError(t, err, domain.Forbidden, "")
	if !strings.Contains(err.Error(), "become a creator first") {
		t.Fatalf("message %q", err.Error())
	}

	p, err := e.svc.CreateProduct(ctx, ada, catalog.ProductInput{Title: "  Desk lamp ", Description: " warm light\n", PriceCents: 4999, Currency: "eur"})
	if err != nil {
		t.Fatal(err)
	}
	if p.ID == 0 || p.Title != "Desk lamp" || p.Description != "warm light" || p.Currency != "EUR" || p.PriceCents != 4999 {
		t.Fatalf("created %+v", p)
	}
	stored, err := e.db.ProductsByIDs(ctx, []int64{p.ID})
	if err != nil || len(stored) != 1 || stored[0].Title != "Desk lamp" {
		t.Fatalf("stored %+v, %v", stored, err)
	}

	title120 := strings.Repeat("é", 120) // characters, not bytes
	for _, tc := range []struct {
		name  string
		in    catalog.ProductInput
		field string // "" when valid
	}{
		{"longest title", catalog.ProductInput{Title: title120, PriceCents: 1, Currency: "USD"}, ""},
		{"free", catalog.ProductInput{Title: "t", PriceCents: 0, Currency: "JPY"}, ""},
		{"most expensive", catalog.ProductInput{Title: "t", PriceCents: catalog.MaxPriceCents, Currency: "PLN"}, ""},
		{"longest description", catalog.ProductInput{Title: "t", Description: strings.Repeat("d", 5000), PriceCents: 1, Currency: "USD"}, ""},
		{"empty title", catalog.ProductInput{Title: "", PriceCents: 1, Currency: "USD"}, "title"},
		{"blank title", catalog.ProductInput{Title: " \t ", PriceCents: 1, Currency: "USD"}, "title"},
		{"title too long", catalog.ProductInput{Title: title120 + "e", PriceCents: 1, Currency: "USD"}, "title"},
		{"two-line title", catalog.ProductInput{Title: "a\nb", PriceCents: 1, Currency: "USD"}, "title"},
		{"description too long", catalog.ProductInput{Title: "t", Description: strings.Repeat("d", 5001), PriceCents: 1, Currency: "USD"}, "description"},
		{"negative price", catalog.ProductInput{Title: "t", PriceCents: -1, Currency: "USD"}, "priceCents"},
		{"price too high", catalog.ProductInput{Title: "t", PriceCents: catalog.MaxPriceCents + 1, Currency: "USD"}, "priceCents"},
		{"unknown currency", catalog.ProductInput{Title: "t", PriceCents: 1, Currency: "XBT"}, "currency"},
		{"no currency", catalog.ProductInput{Title: "t", PriceCents: 1}, "currency"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.CreateProduct(ctx, ada, tc.in)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("valid input refused: %v", err)
				}
				return
			}
			wantError(t, err, domain.BadUserInput, tc.field)
		})
	}
}

func TestUpdateProduct(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	ada, bo := e.user(t, "ada", true), e.user(t, "bo", true)
	p, err := e.svc.CreateProduct(ctx, ada, catalog.ProductInput{Title: "Lamp", Description: "d", PriceCents: 100, Currency: "USD"})
	if err != nil {
		t.Fatal(err)
	}
	str := func(s string) *string { return &s }
	cents := func(n int64) *int64 { return &n }

	_, err = e.svc.UpdateProduct(ctx, bo, p.ID, catalog.ProductPatch{Title: str("mine now")})
	wantError(t, err, domain.Forbidden, "")
	_, err = e.svc.UpdateProduct(ctx, ada, p.ID+999, catalog.ProductPatch{Title: str("x")})
	wantError(t, err, domain.NotFound, "")
	_, err = e.svc.UpdateProduct(ctx, ada, p.ID, catalog.ProductPatch{PriceCents: cents(-5)})
	wantError(t, err, domain.BadUserInput, "priceCents")
	_, err = e.svc.UpdateProduct(ctx, ada, p.ID, catalog.ProductPatch{Title: str(" ")})
	wantError(t, err, domain.BadUserInput, "title")

	// The product sits in Redis, as a loader would have left it.
	_, err = cache.GetMany(ctx, e.cache, cache.KindProduct, []int64{p.ID}, func(ctx context.Context, ids []int64) (map[int64]domain.Product, error) {
		return map[int64]domain.Product{p.ID: *p}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	key := e.cache.Key(cache.KindProduct, p.ID)
	if e.rdb.Exists(ctx, key).Val() != 1 {
		t.Fatal("product not cached before the update")
	}

	got, err := e.svc.UpdateProduct(ctx, ada, p.ID, catalog.ProductPatch{Title: str("Lamp II"), PriceCents: cents(250)})
	if err != nil {
		t.Fatal(err)
	}
	if got.Title != "Lamp II" || got.PriceCents != 250 || got.Description != "d" || got.Currency != "USD" || got.CreatorID != p.CreatorID {
		t.Fatalf("patched product %+v", got)
	}
	if !got.UpdatedAt.After(p.UpdatedAt) && !got.UpdatedAt.Equal(p.UpdatedAt) {
		t.Fatalf("updated_at went back: %v < %v", got.UpdatedAt, p.UpdatedAt)
	}
	if e.rdb.Exists(ctx, key).Val() != 0 {
		t.Fatal("the update left the old product in Redis")
	}
	stored, _ := e.db.ProductsByIDs(ctx, []int64{p.ID})
	if stored[0].Title != "Lamp II" || stored[0].PriceCents != 250 || stored[0].Description != "d" {
		t.Fatalf("stored %+v", stored[0])
	}

	same, err := e.svc.UpdateProduct(ctx, ada, p.ID, catalog.ProductPatch{})
	if err != nil || same.Title != "Lamp II" {
		t.Fatalf("empty patch = %+v, %v", same, err)
	}
}

func TestCreateMediaUpload(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	ada, bo := e.user(t, "ada", true), e.user(t, "bo", false)
	p, err := e.svc.CreateProduct(ctx, ada, catalog.ProductInput{Title: "Lamp", PriceCents: 100, Currency: "USD"})
	if err != nil {
		t.Fatal(err)
	}

	_, err = e.svc.CreateMediaUpload(ctx, ada, p.ID, "application/pdf", 10)
	wantError(t, err, domain.BadUserInput, "contentType")
	_, err = e.svc.CreateMediaUpload(ctx, ada, p.ID, "image/png", 0)
	wantError(t, err, domain.BadUserInput, "byteSize")
	_, err = e.svc.CreateMediaUpload(ctx, ada, p.ID, "image/png", catalog.MaxMediaBytes+1)
	wantError(t, err, domain.BadUserInput, "byteSize")
	_, err = e.svc.CreateMediaUpload(ctx, bo, p.ID, "image/png", 10)
	wantError(t, err, domain.Forbidden, "")
	_, err = e.svc.CreateMediaUpload(ctx, ada, p.ID+999, "image/png", 10)
	wantError(t, err, domain.NotFound, "")
	if _, err := e.svc.CreateMediaUpload(ctx, ada, p.ID, "video/mp4", catalog.MaxMediaBytes); err != nil {
		t.Fatalf("a 20 MiB video refused: %v", err)
	}

	body := make([]byte, 3000)
	rand.Read(body)
	up, err := e.svc.CreateMediaUpload(ctx, ada, p.ID, "image/webp", int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	keyRE := regexp.MustCompile(`^products/` + strconv.FormatInt(p.ID, 10) + `/[0-9a-f-]{36}\.webp$`)
	if up.Method != "PUT" || !keyRE.MatchString(up.Media.Key) || up.Media.ID == 0 || up.Media.ByteSize != 3000 ||
		up.Media.ContentType != "image/webp" || time.Until(up.ExpiresAt) < 10*time.Minute {
		t.Fatalf("upload %+v media %+v", up, up.Media)
	}
	listed, err := e.db.MediaByProducts(ctx, []int64{p.ID})
	if err != nil || len(listed[p.ID]) != 2 || listed[p.ID][1].Key != up.Media.Key {
		t.Fatalf("media of the product: %+v, %v", listed, err)
	}

	put := func(headers map[string]string) *http.Request {
		req, err := http.NewRequest(up.Method, up.UploadURL, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		return req
	}
	// A client that sends another type than it asked for is refused by the signature.
	forged := map[string]string{}
	for k, v := range up.Headers {
		forged[k] = v
	}
	forged["Content-Type"] = "text/html"
	if err := mediatest.VerifyPresigned(put(forged), e.cfg.S3AccessKey, e.cfg.S3SecretKey, e.cfg.S3Region); !errors.Is(err, mediatest.ErrSignatureMismatch) {
		t.Fatalf("an upload as text/html verifies: %v", err)
	}
	req := put(up.Headers)
	if err := mediatest.VerifyPresigned(req, e.cfg.S3AccessKey, e.cfg.S3SecretKey, e.cfg.S3Region); err != nil {
		t.Fatalf("the upload as presigned does not verify: %v", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("upload: %s", resp.Status)
	}

	mediaURL := e.svc.MediaURL(up.Media)
	if mediaURL != e.cfg.MediaBaseURL+"/"+up.Media.Key {
		t.Fatalf("MediaURL = %q", mediaURL)
	}
	resp, err = http.Get(mediaURL)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, body) || resp.Header.Get("Content-Type") != "image/webp" {
		t.Fatalf("GET %s: %s, %d bytes, type %q", mediaURL, resp.Status, len(got), resp.Header.Get("Content-Type"))
	}
}
