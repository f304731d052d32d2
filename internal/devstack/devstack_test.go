package devstack

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/redis/go-redis/v9"

	"livedrops/config"
	"livedrops/internal/testenv"
)

// dataDir is a DATA_DIR the postgres user can reach when the tests run as root
// (t.TempDir is private to the user running the test).
func dataDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "devstack-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func devConfig(t *testing.T, dir string) *config.Config {
	t.Helper()
	cfg, err := config.Parse(map[string]string{"APP_ENV": "dev", "DATA_DIR": dir})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// logBuffer collects JSON log lines; safe for the broker's goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) messages(t *testing.T) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var msgs []string
	for _, line := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var rec struct{ Msg string }
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		msgs = append(msgs, rec.Msg)
	}
	return msgs
}

func start(t *testing.T, cfg *config.Config) (*Stack, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stack, err := Start(ctx, cfg, slog.New(slog.NewJSONHandler(logs, nil)))
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	return stack, logs
}

func answers(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

func hostOf(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

func TestStartServesEveryServiceAndKeepsDataAcrossRestarts(t *testing.T) {
	dir := dataDir(t)
	cfg := devConfig(t, dir)
	stack, logs := start(t, cfg)
	defer stack.Close()

	msgs := logs.messages(t)
	for _, variable := range []string{"DATABASE_URL", "REDIS_URL", "KAFKA_BROKERS", "S3_ENDPOINT"} {
		n := 0
		for _, m := range msgs {
			if strings.Contains(m, "set "+variable+" to use your own") {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d log lines name %s, want exactly 1; logs: %q", n, variable, msgs)
		}
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config after Start: %v", err)
	}

	// PostgreSQL: the app's database, on loopback.
	db, err := sql.Open("postgres", cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	var current string
	if err := db.QueryRow("SELECT current_database()").Scan(&current); err != nil {
		t.Fatalf("query embedded PostgreSQL at %s: %v", cfg.DatabaseURL, err)
	}
	if current != Database {
		t.Fatalf("connected to database %q, want %q", current, Database)
	}
	if _, err := db.Exec("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if !strings.HasPrefix(hostOf(t, cfg.DatabaseURL), "127.0.0.1:") {
		t.Fatalf("PostgreSQL URL %s is not on loopback", cfg.DatabaseURL)
	}

	checkRedis(t, cfg.RedisURL)
	checkKafkaWithConfluent(t, cfg.KafkaBrokers, cfg.KafkaTopic)

	// S3: an upload through the SDK is readable by a plain GET of MEDIA_BASE_URL/key.
	if cfg.MediaBaseURL != cfg.S3Endpoint+"/"+cfg.S3Bucket {
		t.Fatalf("MediaBaseURL = %q, want %q", cfg.MediaBaseURL, cfg.S3Endpoint+"/"+cfg.S3Bucket)
	}
	if _, err := testenv.S3Client(cfg.S3Endpoint).PutObject(context.Background(), &s3.PutObjectInput{
		Bucket:      aws.String(cfg.S3Bucket),
		Key:         aws.String("products/1/photo.jpg"),
		Body:        strings.NewReader("jpeg bytes"),
		ContentType: aws.String("image/jpeg"),
	}); err != nil {
		t.Fatalf("upload to embedded S3: %v", err)
	}
	assertObject(t, cfg.MediaBaseURL+"/products/1/photo.jpg", "jpeg bytes")

	addrs := []string{hostOf(t, cfg.DatabaseURL), hostOf(t, cfg.RedisURL), cfg.KafkaBrokers, hostOf(t, cfg.S3Endpoint)}
	if err := stack.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, addr := range addrs {
		if answers(addr) {
			t.Errorf("%s still answers after Close", addr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "postgres", "data", "postmaster.pid")); err == nil {
		t.Errorf("postmaster.pid left after Close: the server is still running")
	}

	// A second run finds the database and the objects of the first.
	cfg2 := devConfig(t, dir)
	stack2, _ := start(t, cfg2)
	defer stack2.Close()
	db2, err := sql.Open("postgres", cfg2.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	var v string
	if err := db2.QueryRow("SELECT v FROM kept").Scan(&v); err != nil || v != "still here" {
		t.Fatalf("row from the first run: %q, %v", v, err)
	}
	assertObject(t, cfg2.MediaBaseURL+"/products/1/photo.jpg", "jpeg bytes")
	if err := stack2.Close(); err != nil {
		t.Fatalf("Close after restart: %v", err)
	}
}

func checkRedis(t *testing.T, redisURL string) {
	t.Helper()
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	client := redis.NewClient(opts)
	defer client.Close()
	ctx := context.Background()
	if err := client.Set(ctx, "stock:{drop:1}", 5, 0).Err(); err != nil {
		t.Fatalf("embedded Redis at %s: %v", redisURL, err)
	}
	// The admission gate is a Lua script: the stand-in must run scripts.
	take := redis.NewScript(`local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n < tonumber(ARGV[1]) then return -1 end
return redis.call('DECRBY', KEYS[1], ARGV[1])`)
	left, err := take.Run(ctx, client, []string{"stock:{drop:1}"}, 2).Int()
	if err != nil || left != 3 {
		t.Fatalf("Lua take: %d, %v; want 3", left, err)
	}
	// TTLs must run on the wall clock, or caches and rate limits never expire.
	if err := client.Set(ctx, "short", "x", 300*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(600 * time.Millisecond)
	if n, err := client.Exists(ctx, "short").Result(); err != nil || n != 0 {
		t.Fatalf("key with a 300ms TTL still exists after 600ms (n=%d, err=%v)", n, err)
	}
}

// checkKafkaWithConfluent drives the embedded broker with the client the app
// uses, confluent-kafka-go, through a consumer group like the app's consumers.
func checkKafkaWithConfluent(t *testing.T, brokers, topic string) {
	t.Helper()
	producer, err := kafka.NewProducer(&kafka.ConfigMap{"bootstrap.servers": brokers, "enable.idempotence": true})
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	meta, err := producer.GetMetadata(&topic, false, 10_000)
	if err != nil {
		t.Fatalf("metadata from embedded Kafka at %s: %v", brokers, err)
	}
	if got := len(meta.Topics[topic].Partitions); got != KafkaPartitions {
		t.Fatalf("topic %s has %d partitions, want %d", topic, got, KafkaPartitions)
	}

	delivered := make(chan kafka.Event, 1)
	if err := producer.Produce(&kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
		Key:            []byte("drop:42"),
		Value:          []byte(`{"type":"StockChanged"}`),
	}, delivered); err != nil {
		t.Fatalf("produce: %v", err)
	}
	select {
	case ev := <-delivered:
		if m := ev.(*kafka.Message); m.TopicPartition.Error != nil {
			t.Fatalf("delivery: %v", m.TopicPartition.Error)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no delivery report within 20s")
	}

	consumer, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers": brokers,
		"group.id":          "devstack-test",
		"auto.offset.reset": "earliest",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	if err := consumer.Subscribe(topic, nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		msg, err := consumer.ReadMessage(time.Second)
		if err != nil {
			if kerr, ok := err.(kafka.Error); ok && kerr.IsTimeout() {
				continue
			}
			t.Fatalf("consume: %v", err)
		}
		if string(msg.Key) != "drop:42" || string(msg.Value) != `{"type":"StockChanged"}` {
			t.Fatalf("consumed key %q value %q, want the produced message", msg.Key, msg.Value)
		}
		return
	}
	t.Fatal("produced message not consumed within 30s")
}

func assertObject(t *testing.T, objectURL, want string) {
	t.Helper()
	resp, err := http.Get(objectURL)
	if err != nil {
		t.Fatalf("GET %s: %v", objectURL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(body) != want {
		t.Fatalf("GET %s: %s %q, want 200 %q", objectURL, resp.Status, body, want)
	}
}

func TestStaleServerIsReusedOrCleared(t *testing.T) {
	dir := dataDir(t)
	first := devConfig(t, dir)
	first.RedisURL, first.KafkaBrokers, first.S3Endpoint = "redis://127.0.0.1:1", "127.0.0.1:1", "http://127.0.0.1:1"
	crashed, _ := start(t, first)
	defer crashed.Close()

	// The first run "crashed": its server still runs. The next run adopts it.
	second := devConfig(t, dir)
	second.RedisURL, second.KafkaBrokers, second.S3Endpoint = first.RedisURL, first.KafkaBrokers, first.S3Endpoint
	adopter, _ := start(t, second)
	if second.DatabaseURL != first.DatabaseURL {
		t.Fatalf("second run uses %s, want the running server at %s", second.DatabaseURL, first.DatabaseURL)
	}
	if err := adopter.Close(); err != nil {
		t.Fatalf("Close of the adopting stack: %v", err)
	}
	if answers(hostOf(t, first.DatabaseURL)) {
		t.Fatalf("adopted server still answers after Close")
	}
	if err := crashed.Close(); err != nil {
		t.Fatalf("Close of a stack whose server is already stopped: %v", err)
	}

	// A lock file naming a live process that is not PostgreSQL (a reused pid) is stale.
	sleeper := exec.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sleeper.Process.Kill(); sleeper.Wait() }()
	lock := filepath.Join(dir, "postgres", "data", "postmaster.pid")
	stale := fmt.Sprintf("%d\n%s\n1700000000\n54329\n\n127.0.0.1\n  1234  5678\nready   \n", sleeper.Process.Pid, filepath.Dir(lock))
	if err := os.WriteFile(lock, []byte(stale), 0o600); err != nil {
		t.Fatal(err)
	}
	third := devConfig(t, dir)
	third.RedisURL, third.KafkaBrokers, third.S3Endpoint = first.RedisURL, first.KafkaBrokers, first.S3Endpoint
	stack, _ := start(t, third)
	if !answers(hostOf(t, third.DatabaseURL)) {
		t.Fatalf("server not started over a stale lock file")
	}
	if err := stack.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestStartFailureStopsWhatStarted(t *testing.T) {
	dir := dataDir(t)
	// A file where the S3 directory should be makes the last stand-in fail.
	if err := os.WriteFile(filepath.Join(dir, "s3"), []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := devConfig(t, dir)
	stack, err := Start(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil {
		stack.Close()
		t.Fatal("Start succeeded with an unusable S3 directory")
	}
	if !strings.Contains(err.Error(), "s3") {
		t.Fatalf("error %q does not say S3 failed", err)
	}
	if _, statErr := os.Stat(filepath.Join(dir, "postgres", "data", "postmaster.pid")); statErr == nil {
		t.Fatalf("PostgreSQL left running after Start failed: %v", err)
	}
	if answers(hostOf(t, cfg.RedisURL)) || answers(cfg.KafkaBrokers) {
		t.Fatalf("Redis or Kafka stand-in left running after Start failed")
	}
}

func TestStartLeavesConfiguredServicesAlone(t *testing.T) {
	cfg := devConfig(t, dataDir(t))
	cfg.DatabaseURL = "postgres://u@db.example:5432/x"
	cfg.RedisURL = "redis://cache.example:6379"
	cfg.KafkaBrokers = "k1.example:9092"
	cfg.S3Endpoint = "https://s3.example"
	stack, logs := start(t, cfg)
	defer stack.Close()
	if msgs := logs.messages(t); len(msgs) != 0 {
		t.Fatalf("nothing to start, yet logged %q", msgs)
	}
	if cfg.MediaBaseURL != "" || cfg.DatabaseURL != "postgres://u@db.example:5432/x" {
		t.Fatalf("configured values changed: %+v", cfg)
	}
}

func TestStartRefusesProduction(t *testing.T) {
	cfg := devConfig(t, dataDir(t))
	cfg.AppEnv = "prod"
	if stack, err := Start(context.Background(), cfg, nil); err == nil {
		stack.Close()
		t.Fatal("Start ran with APP_ENV=prod")
	}
}

func TestMissingPostgresBinariesSayWhatToDo(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := findPostgresBinaries(t.TempDir(), "")
	if err == nil {
		t.Fatal("found PostgreSQL binaries in an empty directory")
	}
	if !strings.Contains(err.Error(), "make run") || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Fatalf("error %q should point to `make run` and DATABASE_URL", err)
	}
}

func TestPostgresBinariesPreferTheClusterVersion(t *testing.T) {
	root := t.TempDir()
	for _, v := range []string{"9.6", "14", "16"} {
		bin := filepath.Join(root, v, "bin")
		if err := os.MkdirAll(bin, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"initdb", "pg_ctl", "postgres"} {
			if err := os.WriteFile(filepath.Join(bin, name), nil, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	for want, cluster := range map[string]string{"16": "", "14": "14", "9.6": "9.6"} {
		got, err := findPostgresBinaries(root, cluster)
		if err != nil || got != filepath.Join(root, want, "bin") {
			t.Errorf("cluster version %q: got %s, %v; want version %s", cluster, got, err, want)
		}
	}
}
