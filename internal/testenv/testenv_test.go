package testenv

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestDatabaseIsFreshAndDropped(t *testing.T) {
	var name string
	t.Run("use", func(t *testing.T) {
		dbURL := Database(t)
		u, err := url.Parse(dbURL)
		if err != nil {
			t.Fatal(err)
		}
		name = strings.TrimPrefix(u.Path, "/")
		db, err := sql.Open("postgres", dbURL)
		if err != nil {
			t.Fatal(err)
		}
		// Left open on purpose: cleanup must drop the database anyway.
		var current string
		if err := db.QueryRow("select current_database()").Scan(&current); err != nil {
			t.Fatalf("connect to the fresh database: %v", err)
		}
		if current != name {
			t.Fatalf("connected to %q, want %q", current, name)
		}
		var tables int
		if err := db.QueryRow("select count(*) from pg_tables where schemaname = 'public'").Scan(&tables); err != nil {
			t.Fatal(err)
		}
		if tables != 0 {
			t.Fatalf("fresh database has %d tables", tables)
		}
		if _, err := db.Exec("create table t (id int)"); err != nil {
			t.Fatal(err)
		}
	})
	admin, err := sql.Open("postgres", DatabaseURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var exists bool
	if err := admin.QueryRow("select exists (select 1 from pg_database where datname = $1)", name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Fatalf("database %s still exists after its test ended", name)
	}
}

func TestDatabaseInParallel(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]bool{}
	for i := range 6 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			dbURL := Database(t)
			mu.Lock()
			defer mu.Unlock()
			if seen[dbURL] {
				t.Errorf("database URL %s handed out twice", dbURL)
			}
			seen[dbURL] = true
		})
	}
}

func TestRedisPrefixIsCleaned(t *testing.T) {
	ctx := context.Background()
	opts, err := redis.ParseURL(RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	client := redis.NewClient(opts)
	defer client.Close()
	outside := "testenv-outside:" + randomHex(4)
	defer client.Del(ctx, outside)
	if err := client.Set(ctx, outside, "keep", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}

	var prefix string
	t.Run("use", func(t *testing.T) {
		var other string
		_, prefix = Redis(t)
		_, other = Redis(t)
		if prefix == other || !strings.HasSuffix(prefix, ":") {
			t.Fatalf("prefixes %q and %q: want distinct, ending in ':'", prefix, other)
		}
		for i := range 1200 { // more than one SCAN batch
			if err := client.Set(ctx, fmt.Sprintf("%sstock:{drop:%d}", prefix, i), i, 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
	})
	keys, err := client.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Fatalf("%d keys under %s left after the test", len(keys), prefix)
	}
	if v, err := client.Get(ctx, outside).Result(); err != nil || v != "keep" {
		t.Fatalf("key outside the prefix: %q, %v; want it untouched", v, err)
	}
}

func TestKafkaTopic(t *testing.T) {
	var brokers, topic string
	t.Run("use", func(t *testing.T) {
		brokers, topic = Kafka(t)
		if got := partitionCount(t, brokers, topic); got != KafkaPartitions {
			t.Fatalf("topic %s has %d partitions, want %d", topic, got, KafkaPartitions)
		}

		client, err := kgo.NewClient(
			kgo.SeedBrokers(splitBrokers(brokers)...),
			kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		)
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := client.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte("drop:1"), Value: []byte("hello")}).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
		fetches := client.PollFetches(ctx)
		if err := fetches.Err(); err != nil {
			t.Fatalf("consume: %v", err)
		}
		records := fetches.Records()
		if len(records) != 1 || string(records[0].Value) != "hello" {
			t.Fatalf("consumed %d records, want the one produced", len(records))
		}
	})
	if got := partitionCount(t, brokers, topic); got != 0 {
		t.Fatalf("topic %s still has %d partitions after its test ended", topic, got)
	}
}

// partitionCount asks the broker's metadata without creating the topic.
func partitionCount(t *testing.T, brokers, topic string) int {
	t.Helper()
	client, err := kgo.NewClient(kgo.SeedBrokers(splitBrokers(brokers)...))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	req.AllowAutoTopicCreation = false
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, client)
	if err != nil {
		t.Fatalf("metadata: %v", err)
	}
	for _, mt := range resp.Topics {
		if mt.Topic != nil && *mt.Topic == topic && mt.ErrorCode == 0 {
			return len(mt.Partitions)
		}
	}
	return 0
}

func TestS3Bucket(t *testing.T) {
	var endpoint, bucket string
	t.Run("use", func(t *testing.T) {
		endpoint, bucket = S3(t)
		client := S3Client(endpoint)
		ctx := context.Background()
		// The SDK's default request checksums must be accepted.
		if _, err := client.PutObject(ctx, &s3.PutObjectInput{
			Bucket:      aws.String(bucket),
			Key:         aws.String("media/a.txt"),
			Body:        bytes.NewReader([]byte("sdk upload")),
			ContentType: aws.String("text/plain"),
		}); err != nil {
			t.Fatalf("put object: %v", err)
		}
		assertGet(t, endpoint+"/"+bucket+"/media/a.txt", "sdk upload", "text/plain")

		// A browser uploads with a presigned PUT and no SDK at all.
		presigned, err := s3.NewPresignClient(client).PresignPutObject(ctx, &s3.PutObjectInput{
			Bucket:      aws.String(bucket),
			Key:         aws.String("media/b.png"),
			ContentType: aws.String("image/png"),
		}, s3.WithPresignExpires(5*time.Minute))
		if err != nil {
			t.Fatalf("presign: %v", err)
		}
		req, err := http.NewRequest(http.MethodPut, presigned.URL, strings.NewReader("png bytes"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "image/png")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("presigned put: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("presigned put: %s: %s", resp.Status, body)
		}
		assertGet(t, endpoint+"/"+bucket+"/media/b.png", "png bytes", "image/png")
	})
	_, err := S3Client(endpoint).HeadBucket(context.Background(), &s3.HeadBucketInput{Bucket: aws.String(bucket)})
	if err == nil {
		t.Fatalf("bucket %s still exists after its test ended", bucket)
	}
}

func assertGet(t *testing.T, objectURL, wantBody, wantType string) {
	t.Helper()
	resp, err := http.Get(objectURL)
	if err != nil {
		t.Fatalf("GET %s: %v", objectURL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(body) != wantBody {
		t.Fatalf("GET %s: %s %q, want 200 %q", objectURL, resp.Status, body, wantBody)
	}
	if got := resp.Header.Get("Content-Type"); got != wantType {
		t.Fatalf("GET %s: Content-Type %q, want %q", objectURL, got, wantType)
	}
}

func TestConfig(t *testing.T) {
	cfg := Config(t)
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config does not validate: %v", err)
	}
	if cfg.Prod() || cfg.SeedEnabled() {
		t.Fatalf("want dev without seed, got AppEnv=%q seed=%v", cfg.AppEnv, cfg.SeedEnabled())
	}
	if cfg.HTTPAddr != "127.0.0.1:0" {
		t.Fatalf("HTTPAddr = %q", cfg.HTTPAddr)
	}
	if cfg.MediaBaseURL != cfg.S3Endpoint+"/"+cfg.S3Bucket {
		t.Fatalf("MediaBaseURL = %q, want endpoint/bucket", cfg.MediaBaseURL)
	}
	for name, v := range map[string]string{
		"DatabaseURL": cfg.DatabaseURL, "RedisURL": cfg.RedisURL, "RedisPrefix": cfg.RedisPrefix,
		"KafkaBrokers": cfg.KafkaBrokers, "KafkaTopic": cfg.KafkaTopic, "S3Endpoint": cfg.S3Endpoint,
		"S3Bucket": cfg.S3Bucket, "DataDir": cfg.DataDir,
	} {
		if v == "" {
			t.Errorf("%s is empty", name)
		}
	}
	if cfg.RedisPrefix == "ld:" || cfg.KafkaTopic == "livedrops.events" || cfg.S3Bucket == "livedrops-media" {
		t.Fatalf("config shares a default prefix, topic or bucket with other tests: %+v", cfg)
	}
}

// fatalRecorder stands in for a test so that a Fatalf can be observed
// instead of failing the real one.
type fatalRecorder struct {
	testing.TB
	mu  sync.Mutex
	msg string
}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.mu.Lock()
	r.msg = fmt.Sprintf(format, args...)
	r.mu.Unlock()
	runtime.Goexit()
}

func (r *fatalRecorder) Cleanup(func()) {}

func TestUnreachableServiceFailsTheTest(t *testing.T) {
	cases := []struct {
		name, variable, value string
		call                  func(testing.TB)
	}{
		{"postgres", "TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:1/postgres?sslmode=disable", func(tb testing.TB) { Database(tb) }},
		{"redis", "TEST_REDIS_URL", "redis://127.0.0.1:1/0", func(tb testing.TB) { Redis(tb) }},
		{"kafka", "TEST_KAFKA_BROKERS", "127.0.0.1:1", func(tb testing.TB) { Kafka(tb) }},
		{"s3", "TEST_S3_ENDPOINT", "http://127.0.0.1:1", func(tb testing.TB) { S3(tb) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv(c.variable, c.value)
			rec := &fatalRecorder{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				c.call(rec)
			}()
			<-done
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if !strings.Contains(rec.msg, "make services") || !strings.Contains(rec.msg, c.variable) {
				t.Fatalf("got failure %q, want one naming `make services` and %s", rec.msg, c.variable)
			}
		})
	}
}
