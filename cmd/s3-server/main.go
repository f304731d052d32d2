// Command s3-server runs an S3 API (gofakes3) on local files as its own
// process, for tests and CI. Addressing is path-style; any credentials are
// accepted; objects are readable by a plain GET of /<bucket>/<key>.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"livedrops/internal/devstack"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(log, os.Args[1:]); err != nil {
		log.Error("s3-server stopped", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger, args []string) error {
	flags := flag.NewFlagSet("s3-server", flag.ContinueOnError)
	addr := flags.String("addr", envOr("S3_SERVER_ADDR", "127.0.0.1:9000"), "listen address (env S3_SERVER_ADDR)")
	dir := flags.String("dir", envOr("S3_SERVER_DIR", ".data/services/s3"), "directory holding buckets and objects (env S3_SERVER_DIR)")
	bucket := flags.String("bucket", "livedrops-media", "bucket to create at start if missing (empty: none)")
	if err := flags.Parse(args); err != nil {
		return err
	}

	var buckets []string
	if *bucket != "" {
		buckets = append(buckets, *bucket)
	}
	handler, err := devstack.NewS3Handler(*dir, buckets...)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("s3-server listening", "endpoint", "http://"+ln.Addr().String(), "dir", *dir, "bucket", *bucket)

	select {
	case err := <-served:
		return fmt.Errorf("serve on %s: %w", *addr, err)
	case <-ctx.Done():
	}
	log.Info("s3-server shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shut down: %w", err)
	}
	return nil
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}
