// Package testenv hands tests their own slice of the real services started by
// `make services`: a fresh PostgreSQL database, a Redis key prefix, a Kafka
// topic and an S3 bucket, each removed when the test ends. A service that
// cannot be reached fails the test; it never skips, so a green run means the
// code really talked to PostgreSQL, Redis, Kafka and S3.
//
// Addresses come from TEST_DATABASE_URL, TEST_REDIS_URL, TEST_KAFKA_BROKERS and
// TEST_S3_ENDPOINT, defaulting to the ports `make services` uses.
package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/lib/pq"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"livedrops/config"
)

// Defaults match the ports and URLs that `make services` prints.
const (
	DefaultDatabaseURL  = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	DefaultRedisURL     = "redis://127.0.0.1:6379/0"
	DefaultKafkaBrokers = "127.0.0.1:9092"
	DefaultS3Endpoint   = "http://127.0.0.1:9000"

	// KafkaPartitions is the partition count of every topic Kafka creates.
	KafkaPartitions = 6
	// S3AccessKey and S3SecretKey are what test clients sign with; the test
	// S3 server accepts any credentials.
	S3AccessKey = "livedrops"
	S3SecretKey = "livedrops-secret"
	S3Region    = "us-east-1"
)

// reachTimeout bounds every "is it there" check so a missing service fails fast.
const reachTimeout = 5 * time.Second

// DatabaseURL is the maintenance connection tests' databases are created from.
func DatabaseURL() string { return envOr("TEST_DATABASE_URL", DefaultDatabaseURL) }

// RedisURL is the Redis server tests use.
func RedisURL() string { return envOr("TEST_REDIS_URL", DefaultRedisURL) }

// KafkaBrokers is the comma-separated broker list tests use.
func KafkaBrokers() string { return envOr("TEST_KAFKA_BROKERS", DefaultKafkaBrokers) }

// S3Endpoint is the S3 API tests use.
func S3Endpoint() string { return envOr("TEST_S3_ENDPOINT", DefaultS3Endpoint) }

// Database creates an empty database with a unique name, returns its URL and
// drops it (closing any connection still open) when the test ends.
func Database(t testing.TB) string {
	t.Helper()
	adminURL := DatabaseURL()
	admin, err := sql.Open("postgres", adminURL)
	if err != nil {
		t.Fatalf("testenv: bad TEST_DATABASE_URL %q: %v", adminURL, err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), reachTimeout)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		unreachable(t, "PostgreSQL", "TEST_DATABASE_URL", redact(adminURL), err)
	}

	name := "t_" + randomHex(8)
	if err := createDatabase(admin, name); err != nil {
		t.Fatalf("testenv: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		admin, err := sql.Open("postgres", adminURL)
		if err != nil {
			t.Errorf("testenv: drop database %s: %v", name, err)
			return
		}
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// FORCE: a pool the test forgot to close must not leave the database behind.
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+pq.QuoteIdentifier(name)+" WITH (FORCE)"); err != nil {
			t.Errorf("testenv: drop database %s: %v", name, err)
		}
	})

	u, err := url.Parse(adminURL)
	if err != nil {
		t.Fatalf("testenv: parse TEST_DATABASE_URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// createDatabase retries the one failure parallel tests provoke: CREATE
// DATABASE refuses while another session is briefly connected to its template.
func createDatabase(admin *sql.DB, name string) error {
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err = admin.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(name))
		cancel()
		var pqErr *pq.Error
		if err == nil || !errors.As(err, &pqErr) || pqErr.Code != "55006" { // object_in_use
			return err
		}
		time.Sleep(time.Duration(50+attempt*25) * time.Millisecond)
	}
	return err
}

// Redis returns the Redis URL and a key prefix no other test uses; every key
// under that prefix is deleted when the test ends.
func Redis(t testing.TB) (redisURL, prefix string) {
	t.Helper()
	redisURL = RedisURL()
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatalf("testenv: bad TEST_REDIS_URL %q: %v", redisURL, err)
	}
	if err := dial(opts.Addr); err != nil {
		unreachable(t, "Redis", "TEST_REDIS_URL", redact(redisURL), err)
	}
	client := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(context.Background(), reachTimeout)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		client.Close()
		unreachable(t, "Redis", "TEST_REDIS_URL", redact(redisURL), err)
	}
	client.Close()

	prefix = "t" + randomHex(8) + ":"
	t.Cleanup(func() {
		client := redis.NewClient(opts)
		defer client.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := DeleteKeys(ctx, client, prefix); err != nil {
			t.Errorf("testenv: delete Redis keys %s*: %v", prefix, err)
		}
	})
	return redisURL, prefix
}

// DeleteKeys unlinks every key under prefix, in SCAN batches.
func DeleteKeys(ctx context.Context, client *redis.Client, prefix string) error {
	iter := client.Scan(ctx, 0, prefix+"*", 500).Iterator()
	var batch []string
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 500 {
			if err := client.Unlink(ctx, batch...).Err(); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if len(batch) > 0 {
		return client.Unlink(ctx, batch...).Err()
	}
	return nil
}

// Kafka returns the broker list and a topic of KafkaPartitions partitions that
// exists before Kafka returns and is deleted when the test ends.
func Kafka(t testing.TB) (brokers, topic string) {
	t.Helper()
	brokers = KafkaBrokers()
	seeds := splitBrokers(brokers)
	if len(seeds) == 0 {
		t.Fatalf("testenv: TEST_KAFKA_BROKERS is empty")
	}
	if err := dial(seeds[0]); err != nil {
		unreachable(t, "Kafka", "TEST_KAFKA_BROKERS", brokers, err)
	}
	client, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatalf("testenv: Kafka client for %s: %v", brokers, err)
	}
	defer client.Close()

	topic = "test." + randomHex(8)
	if err := createTopic(client, topic); err != nil {
		t.Fatalf("testenv: create Kafka topic %s on %s: %v", topic, brokers, err)
	}
	t.Cleanup(func() {
		// Deleting frees the broker's memory: the test broker keeps every record.
		if err := DeleteTopic(context.Background(), brokers, topic); err != nil {
			t.Errorf("testenv: delete Kafka topic %s: %v", topic, err)
		}
	})
	return brokers, topic
}

func createTopic(client *kgo.Client, topic string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 10_000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic = topic
	rt.NumPartitions = KafkaPartitions
	rt.ReplicationFactor = 1
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, client)
	if err != nil {
		return err
	}
	for _, rt := range resp.Topics {
		if err := kerr.ErrorForCode(rt.ErrorCode); err != nil {
			return err
		}
	}
	return nil
}

// DeleteTopic deletes topic from brokers; a topic that never existed is fine.
func DeleteTopic(ctx context.Context, brokers, topic string) error {
	client, err := kgo.NewClient(kgo.SeedBrokers(splitBrokers(brokers)...))
	if err != nil {
		return fmt.Errorf("Kafka client for %s: %w", brokers, err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.TimeoutMillis = 10_000
	req.TopicNames = []string{topic} // requests before v6 name topics here
	rt := kmsg.NewDeleteTopicsRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, client)
	if err != nil {
		return err
	}
	for _, rt := range resp.Topics {
		if err := kerr.ErrorForCode(rt.ErrorCode); err != nil && !errors.Is(err, kerr.UnknownTopicOrPartition) {
			return err
		}
	}
	return nil
}

// S3 returns the S3 endpoint and a bucket of its own, emptied and deleted when
// the test ends. Clients must use path-style addressing.
func S3(t testing.TB) (endpoint, bucket string) {
	t.Helper()
	endpoint = strings.TrimRight(S3Endpoint(), "/")
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		t.Fatalf("testenv: bad TEST_S3_ENDPOINT %q", endpoint)
	}
	if err := dial(hostPort(u)); err != nil {
		unreachable(t, "S3", "TEST_S3_ENDPOINT", endpoint, err)
	}
	client := S3Client(endpoint)
	bucket = "t-" + randomHex(8)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("testenv: create S3 bucket %s at %s: %v", bucket, endpoint, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := deleteBucket(ctx, client, bucket); err != nil {
			t.Errorf("testenv: delete S3 bucket %s: %v", bucket, err)
		}
	})
	return endpoint, bucket
}

// S3Client is an S3 client for the test S3 server: path-style, static test
// credentials.
func S3Client(endpoint string) *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(endpoint),
		Region:       S3Region,
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(S3AccessKey, S3SecretKey, ""),
	})
}

func deleteBucket(ctx context.Context, client *s3.Client, bucket string) error {
	pages := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list objects: %w", err)
		}
		for _, obj := range page.Contents {
			if _, err := client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: obj.Key}); err != nil {
				return fmt.Errorf("delete object %s: %w", aws.ToString(obj.Key), err)
			}
		}
	}
	if _, err := client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)}); err != nil {
		return fmt.Errorf("delete bucket: %w", err)
	}
	return nil
}

// Config is a complete, validated server configuration for one test: its own
// database, Redis prefix, Kafka topic and S3 bucket, listening on a free
// loopback port, dev mode without demo data, data under a temp dir.
func Config(t testing.TB) *config.Config {
	t.Helper()
	databaseURL := Database(t)
	redisURL, prefix := Redis(t)
	brokers, topic := Kafka(t)
	endpoint, bucket := S3(t)
	cfg, err := config.Parse(map[string]string{
		"APP_ENV":       "dev",
		"HTTP_ADDR":     "127.0.0.1:0",
		"INTERNAL_ADDR": "127.0.0.1:0",
		"DATABASE_URL":  databaseURL,
		// Several apps and packages share one server's connection slots in a test run.
		"DB_MAX_CONNS":   "8",
		"REDIS_URL":      redisURL,
		"REDIS_PREFIX":   prefix,
		"KAFKA_BROKERS":  brokers,
		"KAFKA_TOPIC":    topic,
		"S3_ENDPOINT":    endpoint,
		"S3_BUCKET":      bucket,
		"S3_REGION":      S3Region,
		"S3_ACCESS_KEY":  S3AccessKey,
		"S3_SECRET_KEY":  S3SecretKey,
		"MEDIA_BASE_URL": endpoint + "/" + bucket,
		"SEED":           "false",
		"DATA_DIR":       t.TempDir(),
		"LOG_LEVEL":      "warn",
	})
	if err != nil {
		t.Fatalf("testenv: test configuration: %v", err)
	}
	return cfg
}

func unreachable(t testing.TB, service, variable, addr string, err error) {
	t.Helper()
	t.Fatalf("testenv: %s is not reachable at %s (%v): run `make services` to start it, or set %s", service, addr, err, variable)
}

func dial(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, reachTimeout)
	if err != nil {
		return err
	}
	return conn.Close()
}

func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "https" {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

func splitBrokers(brokers string) []string {
	var out []string
	for _, b := range strings.Split(brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

// redact hides a password in a URL before it reaches a test log.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return u.Redacted()
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("testenv: read random bytes: %v", err))
	}
	return hex.EncodeToString(b)
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}
