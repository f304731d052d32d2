// Package media talks to the S3 bucket product media live in: presigned
// uploads that bind what may be uploaded, and the public URL of each object.
package media

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"livedrops/config"
)

// Store is the media bucket.
type Store struct {
	client  *s3.Client
	presign *s3.PresignClient
	bucket  string
	baseURL string
}

// New returns a Store for cfg's S3 endpoint and bucket. Media URLs start
// with MEDIA_BASE_URL, or with the bucket's own path-style URL when unset.
func New(ctx context.Context, cfg *config.Config) (*Store, error) {
	if cfg.S3Endpoint == "" {
		return nil, errors.New("media: no S3 endpoint configured")
	}
	endpoint := strings.TrimRight(cfg.S3Endpoint, "/")
	client := s3.New(s3.Options{
		BaseEndpoint: aws.String(endpoint),
		Region:       cfg.S3Region,
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(cfg.S3AccessKey, cfg.S3SecretKey, ""),
		// Checksums only when S3 requires them: a presigned URL carrying the
		// checksum of an empty body would refuse every real upload.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
	base := strings.TrimRight(cfg.MediaBaseURL, "/")
	if base == "" {
		base = endpoint + "/" + cfg.S3Bucket
	}
	return &Store{client: client, presign: s3.NewPresignClient(client), bucket: cfg.S3Bucket, baseURL: base}, nil
}

// PresignPut returns a URL that accepts one PUT of key for ttl. The signature
// covers the Content-Type and Content-Length, so the upload must carry
// exactly the returned headers: another type or size is refused by S3.
func (s *Store) PresignPut(ctx context.Context, key, contentType string, size int64, ttl time.Duration) (url string, headers map[string]string, expiresAt time.Time, err error) {
	signedAt := time.Now()
	req, err := s.presign.PresignPutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(s.bucket),
		Key:           aws.String(key),
		ContentType:   aws.String(contentType),
		ContentLength: aws.Int64(size),
	}, s3.WithPresignExpires(ttl))
	if err != nil {
		return "", nil, time.Time{}, fmt.Errorf("media: presign upload of %s: %w", key, err)
	}
	if req.Method != http.MethodPut {
		return "", nil, time.Time{}, fmt.Errorf("media: presign upload of %s: got method %s", key, req.Method)
	}
	headers = make(map[string]string, len(req.SignedHeader))
	for name, values := range req.SignedHeader {
		// Host is set by every HTTP client from the URL.
		if strings.EqualFold(name, "Host") || len(values) == 0 {
			continue
		}
		headers[http.CanonicalHeaderKey(name)] = values[0]
	}
	// The signer keeps Content-Length out of SignedHeader; the client must
	// still send exactly this length.
	headers["Content-Length"] = strconv.FormatInt(size, 10)
	headers["Content-Type"] = contentType
	return req.URL, headers, signedAt.Add(ttl).UTC().Truncate(time.Second), nil
}

// URL is where the object under key is served from.
func (s *Store) URL(key string) string { return s.baseURL + "/" + key }

// Ping checks that the bucket is reachable, for /readyz.
func (s *Store) Ping(ctx context.Context) error {
	if _, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.bucket)}); err != nil {
		return fmt.Errorf("media: head bucket %s: %w", s.bucket, err)
	}
	return nil
}

// EnsureBucket creates the bucket unless it exists.
func (s *Store) EnsureBucket(ctx context.Context) error {
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.bucket)})
	if err == nil {
		return nil
	}
	var notFound *types.NotFound
	if !errors.As(err, &notFound) {
		return fmt.Errorf("media: head bucket %s: %w", s.bucket, err)
	}
	_, err = s.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(s.bucket)})
	var owned *types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		return fmt.Errorf("media: create bucket %s: %w", s.bucket, err)
	}
	return nil
}
