// Package mediatest checks presigned S3 requests the way S3 does, for tests
// whose S3 server (the gofakes3 stand-in) accepts any signature.
package mediatest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// ErrSignatureMismatch is what S3 answers SignatureDoesNotMatch for.
var ErrSignatureMismatch = errors.New("mediatest: signature does not match the request")

// VerifyPresigned checks the SigV4 query signature of r, a request a client
// built from a presigned URL: it signs the request again with the headers it
// actually carries (and its ContentLength), at the URL's signing time, and
// compares. Expiry is not checked.
func VerifyPresigned(r *http.Request, accessKey, secretKey, region string) error {
	q := r.URL.Query()
	want := q.Get("X-Amz-Signature")
	if want == "" {
		return fmt.Errorf("mediatest: %s carries no X-Amz-Signature", r.URL.Path)
	}
	signedAt, err := time.Parse("20060102T150405Z", q.Get("X-Amz-Date"))
	if err != nil {
		return fmt.Errorf("mediatest: bad X-Amz-Date: %w", err)
	}
	signedHeaders := strings.Split(q.Get("X-Amz-SignedHeaders"), ";")
	for _, name := range []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Signature"} {
		q.Del(name)
	}
	u := *r.URL
	u.RawQuery = q.Encode()
	again, err := http.NewRequest(r.Method, u.String(), nil)
	if err != nil {
		return fmt.Errorf("mediatest: rebuild request: %w", err)
	}
	for _, name := range signedHeaders {
		switch name {
		case "host":
		case "content-length":
			// The signer reads the length from the request, not a header.
			again.ContentLength = r.ContentLength
		default:
			again.Header.Set(name, r.Header.Get(name))
		}
	}
	signed, _, err := v4.NewSigner().PresignHTTP(context.Background(),
		aws.Credentials{AccessKeyID: accessKey, SecretAccessKey: secretKey},
		again, "UNSIGNED-PAYLOAD", "s3", region, signedAt)
	if err != nil {
		return fmt.Errorf("mediatest: sign again: %w", err)
	}
	got, err := url.Parse(signed)
	if err != nil {
		return fmt.Errorf("mediatest: parse signed URL: %w", err)
	}
	if got.Query().Get("X-Amz-Signature") != want {
		return ErrSignatureMismatch
	}
	return nil
}
