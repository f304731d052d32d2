// Package sandbox gives one benchmark run its own slice of the real services
// `make services` starts: a fresh PostgreSQL database, a Redis key prefix and
// a Kafka topic, all removed by Close, and the buyers it sends.
package sandbox

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/lib/pq"
	"github.com/redis/go-redis/v9"

	"livedrops/internal/testenv"
	"livedrops/store"
)

// Services are the addresses of the shared real services.
type Services struct {
	// AdminDatabaseURL is a maintenance connection databases are created from.
	AdminDatabaseURL string
	RedisURL         string
	KafkaBrokers     string
	S3Endpoint       string
	S3Bucket         string
}

// ServicesFromEnv reads the addresses `make services` exports (TEST_*), as
// the tests do, defaulting to the ports it uses.
func ServicesFromEnv() Services {
	bucket := os.Getenv("S3_BUCKET")
	if bucket == "" {
		bucket = "livedrops-media"
	}
	return Services{
		AdminDatabaseURL: testenv.DatabaseURL(),
		RedisURL:         testenv.RedisURL(),
		KafkaBrokers:     testenv.KafkaBrokers(),
		S3Endpoint:       strings.TrimRight(testenv.S3Endpoint(), "/"),
		S3Bucket:         bucket,
	}
}

// Sandbox is one run's private database, Redis prefix and Kafka topic.
type Sandbox struct {
	// Name is bench_<random>: the database's name, and the stem of the
	// prefix and topic.
	Name        string
	DatabaseURL string
	RedisPrefix string
	KafkaTopic  string
	// JWTSecret is the server's signing secret, so buyers' tokens can be
	// minted without the (deliberately slow) sign-up.
	JWTSecret string
	Services  Services
}

// New creates the sandbox's database after checking Redis answers; the
// server creates the topic itself.
func New(ctx context.Context, svc Services) (*Sandbox, error) {
	name := "bench_" + randomHex(6)
	s := &Sandbox{
		Name:        name,
		RedisPrefix: name + ":",
		KafkaTopic:  "bench." + strings.TrimPrefix(name, "bench_"),
		JWTSecret:   randomHex(24),
		Services:    svc,
	}
	if err := pingRedis(ctx, svc.RedisURL); err != nil {
		return nil, err
	}
	admin, err := openAdmin(ctx, svc.AdminDatabaseURL)
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(name)); err != nil {
		return nil, fmt.Errorf("sandbox: create database %s: %w", name, err)
	}
	u, err := url.Parse(svc.AdminDatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("sandbox: parse admin database URL: %w", err)
	}
	u.Path = "/" + name
	s.DatabaseURL = u.String()
	return s, nil
}

// OpenMigrated opens a pool of at most conns connections to the sandbox's
// database and applies the migrations, for a benchmark that writes its
// fixtures before any server starts.
func (s *Sandbox) OpenMigrated(ctx context.Context, conns int) (*store.DB, error) {
	db, err := store.Open(ctx, s.DatabaseURL)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(conns)
	if err := db.Migrate(); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// ServerEnv is the environment a server needs to run on the sandbox: the real
// services, this run's database, prefix and topic, no demo data.
func (s *Sandbox) ServerEnv(httpAddr string) []string {
	return []string{
		"APP_ENV=dev",
		"HTTP_ADDR=" + httpAddr,
		"DATABASE_URL=" + s.DatabaseURL,
		"REDIS_URL=" + s.Services.RedisURL,
		"REDIS_PREFIX=" + s.RedisPrefix,
		"KAFKA_BROKERS=" + s.Services.KafkaBrokers,
		"KAFKA_TOPIC=" + s.KafkaTopic,
		"S3_ENDPOINT=" + s.Services.S3Endpoint,
		"S3_BUCKET=" + s.Services.S3Bucket,
		"MEDIA_BASE_URL=" + s.Services.S3Endpoint + "/" + s.Services.S3Bucket,
		"JWT_SECRET=" + s.JWTSecret,
		"SEED=false",
		// The load process stands in for clients on many addresses.
		"ORDER_RATE_PER_ADDRESS_PER_MINUTE=100000000",
		"WEBSOCKETS_PER_ADDRESS=1000000",
		"MAX_CONNECTIONS=1000000",
	}
}

// Close drops the database (closing whatever is still connected), deletes
// the Redis keys under the prefix and the Kafka topic. It tries all three and
// reports every failure.
func (s *Sandbox) Close(ctx context.Context) error {
	var errs []error
	if admin, err := openAdmin(ctx, s.Services.AdminDatabaseURL); err != nil {
		errs = append(errs, err)
	} else {
		// FORCE: a server that died holding connections must not leave the database behind.
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+pq.QuoteIdentifier(s.Name)+" WITH (FORCE)"); err != nil {
			errs = append(errs, fmt.Errorf("sandbox: drop database %s: %w", s.Name, err))
		}
		admin.Close()
	}
	if err := deleteKeys(ctx, s.Services.RedisURL, s.RedisPrefix); err != nil {
		errs = append(errs, err)
	}
	if err := testenv.DeleteTopic(ctx, s.Services.KafkaBrokers, s.KafkaTopic); err != nil {
		errs = append(errs, fmt.Errorf("sandbox: delete Kafka topic %s: %w", s.KafkaTopic, err))
	}
	return errors.Join(errs...)
}

// Release closes db (when open) and then the sandbox (when made), each
// benchmark's last step; a nil sandbox releases nothing. Close gets a minute.
func (s *Sandbox) Release(db *store.DB) error {
	if db != nil {
		db.Close()
	}
	if s == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return s.Close(ctx)
}

func openAdmin(ctx context.Context, adminURL string) (*sql.DB, error) {
	admin, err := sql.Open("postgres", adminURL)
	if err != nil {
		return nil, fmt.Errorf("sandbox: open PostgreSQL %s: %w", redact(adminURL), err)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := admin.PingContext(pctx); err != nil {
		admin.Close()
		return nil, fmt.Errorf("sandbox: PostgreSQL is not reachable at %s (run `make services`): %w", redact(adminURL), err)
	}
	return admin, nil
}

func pingRedis(ctx context.Context, redisURL string) error {
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		return fmt.Errorf("sandbox: parse Redis URL %s: %w", redact(redisURL), err)
	}
	client := redis.NewClient(opts)
	defer client.Close()
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := client.Ping(pctx).Err(); err != nil {
		return fmt.Errorf("sandbox: Redis is not reachable at %s (run `make services`): %w", redact(redisURL), err)
	}
	return nil
}

// deleteKeys unlinks every key under prefix.
func deleteKeys(ctx context.Context, redisURL, prefix string) error {
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		return fmt.Errorf("sandbox: parse Redis URL: %w", err)
	}
	client := redis.NewClient(opts)
	defer client.Close()
	if err := testenv.DeleteKeys(ctx, client, prefix); err != nil {
		return fmt.Errorf("sandbox: delete Redis keys %s*: %w", prefix, err)
	}
	return nil
}

// redact hides a password in a URL before it is printed.
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
		panic(fmt.Sprintf("sandbox: read random bytes: %v", err))
	}
	return hex.EncodeToString(b)
}
