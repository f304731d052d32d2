package devstack

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3afero"
)

// NewS3Handler returns an S3 API (gofakes3) that keeps every bucket and object
// as plain files under dir, so data survives restarts, and makes sure the
// named buckets exist. Addressing is path-style: /<bucket>/<key>. Objects are
// readable by a plain unsigned GET, which is what MEDIA_BASE_URL relies on.
func NewS3Handler(dir string, buckets ...string) (http.Handler, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("s3: resolve storage directory %s: %w", dir, err)
	}
	fs, err := s3afero.FsPath(abs, s3afero.FsPathCreateAll)
	if err != nil {
		return nil, fmt.Errorf("s3: open storage directory %s: %w", abs, err)
	}
	inner, err := s3afero.MultiBucket(fs)
	if err != nil {
		return nil, fmt.Errorf("s3: open file backend in %s: %w", abs, err)
	}
	backend := &s3Files{MultiBucketBackend: inner, buckets: filepath.Join(abs, "buckets")}
	for _, bucket := range buckets {
		if err := backend.CreateBucket(bucket); err != nil && !gofakes3.HasErrorCode(err, gofakes3.ErrBucketAlreadyExists) {
			return nil, fmt.Errorf("s3: create bucket %q: %w", bucket, err)
		}
	}
	// gofakes3 accepts any credentials and does not verify signatures, so
	// presigned URLs made with the dev keys work unchanged.
	return gofakes3.New(backend).Server(), nil
}

// s3Files removes the directories that deleting "a/b/c" leaves behind: the
// file backend maps key slashes to directories, and a leftover empty one
// would make its bucket impossible to delete.
type s3Files struct {
	*s3afero.MultiBucketBackend
	buckets string // absolute path of the directory holding one directory per bucket

	// Serializes writes with pruning, so a put never finds the directory it
	// just created removed under it.
	mu sync.Mutex
}

func (b *s3Files) PutObject(bucket, key string, meta map[string]string, input io.Reader, size int64, conditions *gofakes3.PutConditions) (gofakes3.PutObjectResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.MultiBucketBackend.PutObject(bucket, key, meta, input, size, conditions)
}

func (b *s3Files) CopyObject(srcBucket, srcKey, dstBucket, dstKey string, meta map[string]string) (gofakes3.CopyObjectResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.MultiBucketBackend.CopyObject(srcBucket, srcKey, dstBucket, dstKey, meta)
}

func (b *s3Files) DeleteObject(bucket, key string) (gofakes3.ObjectDeleteResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	result, err := b.MultiBucketBackend.DeleteObject(bucket, key)
	if err == nil {
		b.prune(bucket, key)
	}
	return result, err
}

func (b *s3Files) DeleteMulti(bucket string, keys ...string) (gofakes3.MultiDeleteResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	result, err := b.MultiBucketBackend.DeleteMulti(bucket, keys...)
	for _, key := range keys {
		b.prune(bucket, key)
	}
	return result, err
}

// prune removes the key's parent directories up to the bucket, stopping at
// the first one that still holds something.
func (b *s3Files) prune(bucket, key string) {
	bucketDir := filepath.Join(b.buckets, bucket)
	dir := filepath.Dir(filepath.Join(bucketDir, filepath.FromSlash(key)))
	for dir != bucketDir && strings.HasPrefix(dir, bucketDir+string(filepath.Separator)) {
		if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			return
		}
		dir = filepath.Dir(dir)
	}
}
