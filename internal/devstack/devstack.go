package devstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	"github.com/alicebob/miniredis/v2"

	"livedrops/config"
)

// KafkaPartitions is the partition count of the embedded broker's topics.
const KafkaPartitions = 6

// s3Port is tried first for the embedded S3 so media URLs stay the same
// across restarts; any free port is used when it is taken.
const s3Port = 54330

// Stack is the set of embedded stand-ins one Start brought up.
type Stack struct {
	log     *slog.Logger
	closers []func() error // in start order; Close runs them backwards
}

// Start brings up an embedded stand-in for every service whose setting in cfg is empty,
// writes the stand-in's URL back into cfg, and logs one line per stand-in naming the
// environment variable that replaces it. Start refuses to run when cfg.Prod().
func Start(ctx context.Context, cfg *config.Config, log *slog.Logger) (_ *Stack, err error) {
	if cfg.Prod() {
		return nil, errors.New("devstack: embedded services are for development only; APP_ENV=prod needs DATABASE_URL, REDIS_URL, KAFKA_BROKERS and S3_ENDPOINT")
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Stack{log: log}
	defer func() {
		if err != nil {
			// Stop what came up before the failure: no half-started stack outlives Start.
			err = errors.Join(err, s.Close())
		}
	}()

	if cfg.DatabaseURL == "" {
		dir := filepath.Join(cfg.DataDir, "postgres")
		pg, err := startPostgres(ctx, dir)
		if err != nil {
			return nil, fmt.Errorf("devstack: %w", err)
		}
		s.closers = append(s.closers, pg.stop)
		cfg.DatabaseURL = pg.url
		log.Info("embedded PostgreSQL under "+dir+"; set DATABASE_URL to use your own", "url", pg.url)
	}

	if cfg.RedisURL == "" {
		m := miniredis.NewMiniRedis()
		// TTLs follow the wall clock, as on a real server (miniredis stops time by default).
		m.ClockTTL(true)
		if err := m.StartAddr("127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("devstack: start embedded Redis: %w", err)
		}
		s.closers = append(s.closers, func() error { m.Close(); return nil })
		cfg.RedisURL = "redis://" + m.Addr()
		log.Info("embedded Redis in memory; set REDIS_URL to use your own", "url", cfg.RedisURL)
	}

	if cfg.KafkaBrokers == "" {
		cluster, err := NewKafkaCluster("127.0.0.1:0", KafkaPartitions, log, cfg.KafkaTopic)
		if err != nil {
			return nil, fmt.Errorf("devstack: start embedded Kafka: %w", err)
		}
		s.closers = append(s.closers, func() error { cluster.Close(); return nil })
		cfg.KafkaBrokers = cluster.ListenAddrs()[0]
		log.Info("embedded Kafka broker in memory; set KAFKA_BROKERS to use your own", "brokers", cfg.KafkaBrokers, "topic", cfg.KafkaTopic)
	}

	if cfg.S3Endpoint == "" {
		dir := filepath.Join(cfg.DataDir, "s3")
		endpoint, stop, err := startS3(dir, cfg.S3Bucket)
		if err != nil {
			return nil, fmt.Errorf("devstack: start embedded S3: %w", err)
		}
		s.closers = append(s.closers, stop)
		cfg.S3Endpoint = endpoint
		if cfg.MediaBaseURL == "" {
			cfg.MediaBaseURL = endpoint + "/" + cfg.S3Bucket
		}
		log.Info("embedded S3 under "+dir+"; set S3_ENDPOINT to use your own", "endpoint", endpoint, "bucket", cfg.S3Bucket, "media", cfg.MediaBaseURL)
	}
	return s, nil
}

// Close stops everything Start started, leaving no process behind.
func (s *Stack) Close() error {
	if s == nil {
		return nil
	}
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i]())
	}
	s.closers = nil
	return errors.Join(errs...)
}

// startS3 serves NewS3Handler on a loopback port and returns its endpoint.
func startS3(dir, bucket string) (endpoint string, stop func() error, err error) {
	handler, err := NewS3Handler(dir, bucket)
	if err != nil {
		return "", nil, err
	}
	port, err := freePort(s3Port)
	if err != nil {
		return "", nil, fmt.Errorf("find a port: %w", err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		// Taken between the check and now: any port will do.
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return "", nil, fmt.Errorf("listen: %w", err)
		}
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	stop = func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			return fmt.Errorf("devstack: stop embedded S3: %w", err)
		}
		return nil
	}
	return "http://" + ln.Addr().String(), stop, nil
}
