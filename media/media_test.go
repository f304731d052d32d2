package media

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"livedrops/config"
	"livedrops/internal/testenv"
	"livedrops/media/mediatest"
)

// testStore returns a Store on a bucket of the test's own on the real S3 server.
func testStore(t *testing.T) (*Store, *config.Config) {
	t.Helper()
	endpoint, bucket := testenv.S3(t)
	cfg := &config.Config{
		S3Endpoint: endpoint, S3Bucket: bucket, S3Region: testenv.S3Region,
		S3AccessKey: testenv.S3AccessKey, S3SecretKey: testenv.S3SecretKey,
		MediaBaseURL: endpoint + "/" + bucket,
	}
	s, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, cfg
}

// uploadRequest is the PUT a client builds from a presigned upload.
func uploadRequest(t *testing.T, rawURL string, headers map[string]string, body []byte) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, rawURL, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return req
}

func TestPresignedUploadIsServedAtItsURL(t *testing.T) {
	s, cfg := testStore(t)
	ctx := context.Background()
	body := make([]byte, 4096)
	rand.Read(body)
	key := "products/1/" + strconv.FormatInt(time.Now().UnixNano(), 10) + ".png"

	uploadURL, headers, expiresAt, err := s.PresignPut(ctx, key, "image/png", int64(len(body)), 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(expiresAt); d < 9*time.Minute || d > 10*time.Minute {
		t.Fatalf("expiresAt %v is %v away, want about 10m", expiresAt, d)
	}
	if headers["Content-Type"] != "image/png" || headers["Content-Length"] != "4096" {
		t.Fatalf("headers to send = %v", headers)
	}
	signed := url.URL{RawQuery: strings.SplitN(uploadURL, "?", 2)[1]}
	if sh := signed.Query().Get("X-Amz-SignedHeaders"); sh != "content-length;content-type;host" {
		t.Fatalf("signed headers %q do not bind the type and length", sh)
	}

	resp, err := http.DefaultClient.Do(uploadRequest(t, uploadURL, headers, body))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("presigned PUT: %s", resp.Status)
	}

	mediaURL := s.URL(key)
	if mediaURL != cfg.MediaBaseURL+"/"+key {
		t.Fatalf("URL(%q) = %q", key, mediaURL)
	}
	resp, err = http.Get(mediaURL)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, body) {
		t.Fatalf("GET %s: %s, %d bytes, same bytes %v", mediaURL, resp.Status, len(got), bytes.Equal(got, body))
	}
	if ct := resp.Header.Get("Content-Type"); ct != "image/png" {
		t.Fatalf("served with Content-Type %q", ct)
	}
}

func TestPresignedUploadBindsTypeAndSize(t *testing.T) {
	s, cfg := testStore(t)
	body := []byte("GIF89a but not really")
	uploadURL, headers, _, err := s.PresignPut(context.Background(), "products/2/a.gif", "image/gif", int64(len(body)), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	verify := func(r *http.Request) error {
		return mediatest.VerifyPresigned(r, cfg.S3AccessKey, cfg.S3SecretKey, cfg.S3Region)
	}
	// The verifier accepts the upload as presigned, so its refusals below mean something.
	if err := verify(uploadRequest(t, uploadURL, headers, body)); err != nil {
		t.Fatalf("the presigned upload itself does not verify: %v", err)
	}

	otherType := map[string]string{}
	for k, v := range headers {
		otherType[k] = v
	}
	otherType["Content-Type"] = "text/html"
	if err := verify(uploadRequest(t, uploadURL, otherType, body)); !errors.Is(err, mediatest.ErrSignatureMismatch) {
		t.Fatal("an upload with another Content-Type carries a valid signature")
	}
	bigger := append(bytes.Clone(body), make([]byte, 1<<20)...)
	if err := verify(uploadRequest(t, uploadURL, headers, bigger)); !errors.Is(err, mediatest.ErrSignatureMismatch) {
		t.Fatal("an upload of another size carries a valid signature")
	}
	if err := verify(uploadRequest(t, strings.Replace(uploadURL, "a.gif", "b.gif", 1), headers, body)); !errors.Is(err, mediatest.ErrSignatureMismatch) {
		t.Fatal("an upload to another key carries a valid signature")
	}
}

func TestBucketChecks(t *testing.T) {
	s, cfg := testStore(t)
	ctx := context.Background()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping an existing bucket: %v", err)
	}
	if err := s.EnsureBucket(ctx); err != nil {
		t.Fatalf("EnsureBucket on an existing bucket: %v", err)
	}

	missing := *cfg
	missing.S3Bucket = cfg.S3Bucket + "-new"
	m, err := New(ctx, &missing)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Ping(ctx); err == nil {
		t.Fatal("Ping of a missing bucket succeeded")
	}
	if err := m.EnsureBucket(ctx); err != nil {
		t.Fatalf("EnsureBucket creating %s: %v", missing.S3Bucket, err)
	}
	t.Cleanup(func() { _, _ = testenv.S3Client(cfg.S3Endpoint).DeleteBucket(ctx, deleteInput(missing.S3Bucket)) })
	if err := m.Ping(ctx); err != nil {
		t.Fatalf("Ping after EnsureBucket: %v", err)
	}

	// A media base URL (a CDN) replaces the bucket's own address.
	cdn := *cfg
	cdn.MediaBaseURL = "https://cdn.example.test/m/"
	c, _ := New(ctx, &cdn)
	if got := c.URL("products/1/x.png"); got != "https://cdn.example.test/m/products/1/x.png" {
		t.Fatalf("URL with a CDN base = %q", got)
	}
	noBase := *cfg
	noBase.MediaBaseURL = ""
	b, _ := New(ctx, &noBase)
	if got := b.URL("k"); got != cfg.S3Endpoint+"/"+cfg.S3Bucket+"/k" {
		t.Fatalf("URL without a base = %q", got)
	}
}

func deleteInput(bucket string) *s3.DeleteBucketInput {
	return &s3.DeleteBucketInput{Bucket: aws.String(bucket)}
}
