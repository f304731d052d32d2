package rig

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"livedrops/bench/internal/sandbox"
)

// The test binary doubles as the server: run with RIG_CHILD set, it prints
// the settings it was given and serves /readyz on HTTP_ADDR until SIGTERM,
// then exits with RIG_CHILD's code.
func TestMain(m *testing.M) {
	if code := os.Getenv("RIG_CHILD"); code != "" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer stop()
		srv := &http.Server{Addr: os.Getenv("HTTP_ADDR"), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})}
		go srv.ListenAndServe()
		for _, k := range []string{"ORDER_RATE_PER_MINUTE", "LOG_LEVEL", "DATA_DIR", "KAFKA_TOPIC"} {
			fmt.Printf("%s=%s\n", k, os.Getenv(k))
		}
		<-ctx.Done()
		srv.Shutdown(context.Background())
		if code == "fail" {
			fmt.Println("shutdown: lost the outbox")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestFlags(t *testing.T) {
	var s Server
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	s.Flags(fs)
	if s != (Server{Bin: ".data/bin/livedrops", LogDir: ".data/bench", OrderRate: 1_000_000, LogLevel: "warn"}) {
		t.Errorf("defaults = %+v", s)
	}
	if err := fs.Parse([]string{"-server", "/x/livedrops", "-logs", "/tmp/l", "-order-rate", "60", "-log-level", "debug"}); err != nil {
		t.Fatal(err)
	}
	if s != (Server{Bin: "/x/livedrops", LogDir: "/tmp/l", OrderRate: 60, LogLevel: "debug"}) {
		t.Errorf("parsed = %+v", s)
	}
	if err := (Server{Bin: filepath.Join(t.TempDir(), "none")}).CheckBin(); err == nil || !strings.Contains(err.Error(), "go build -o") {
		t.Errorf("CheckBin of a missing binary: %v", err)
	}
	if err := (Server{Bin: os.Args[0]}).CheckBin(); err != nil {
		t.Errorf("CheckBin of this binary: %v", err)
	}
}

func TestStartAndStop(t *testing.T) {
	box := &sandbox.Sandbox{Name: "bench_rigtest", KafkaTopic: "bench.rigtest"}
	logDir := filepath.Join(t.TempDir(), "logs") // Start makes it
	s := Server{Bin: os.Args[0], LogDir: logDir, OrderRate: 60, LogLevel: "debug"}
	t.Setenv("RIG_CHILD", "ok")
	srv, err := s.Start(context.Background(), box)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if want := filepath.Join(logDir, "bench_rigtest.server.log"); srv.LogPath != want {
		t.Errorf("log at %s, want %s", srv.LogPath, want)
	}
	if err := Stop(srv); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	log := srv.Tail(10)
	for _, want := range []string{"ORDER_RATE_PER_MINUTE=60", "LOG_LEVEL=debug", "DATA_DIR=" + filepath.Join(logDir, "bench_rigtest"), "KAFKA_TOPIC=bench.rigtest"} {
		if !strings.Contains(log, want) {
			t.Errorf("server was not given %s; its log:\n%s", want, log)
		}
	}
	if err := Stop(nil); err != nil {
		t.Errorf("Stop(nil) = %v", err)
	}

	// A server that exits badly is an error carrying the end of its log.
	t.Setenv("RIG_CHILD", "fail")
	srv, err = s.Start(context.Background(), box)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := Stop(srv); err == nil || !strings.Contains(err.Error(), "--- end of "+srv.LogPath) || !strings.Contains(err.Error(), "lost the outbox") {
		t.Errorf("Stop of a server exiting 1: %v", err)
	}
}

func TestExit(t *testing.T) {
	broke := errors.New("drop not sold out")
	tests := []struct {
		name       string
		run        error
		cleanup    error
		verdict    int
		code       int
		stderrHas  string
		stderrNone bool
	}{
		{"clean pass", nil, nil, 0, 0, "", true},
		{"verdict fails", nil, nil, 1, 1, "", true},
		{"run broke", broke, nil, 0, 1, "bench-x: the run broke: drop not sold out", false},
		{"cleanup failed", nil, errors.New("drop database"), 0, 0, "bench-x: cleanup: drop database", false},
	}
	for _, tt := range tests {
		var stderr bytes.Buffer
		cleaned := false
		code := Exit(context.Background(), "bench-x", &stderr,
			func(context.Context) error { return tt.run },
			func() error { cleaned = true; return tt.cleanup },
			func() int { return tt.verdict })
		if code != tt.code || !cleaned {
			t.Errorf("%s: code %d, cleaned %v; want %d, true", tt.name, code, cleaned, tt.code)
		}
		if tt.stderrNone && stderr.Len() > 0 || !strings.Contains(stderr.String(), tt.stderrHas) {
			t.Errorf("%s: stderr %q", tt.name, stderr.String())
		}
	}
}

func TestLoadAverage(t *testing.T) {
	if got := LoadAverage(); !regexp.MustCompile(`^[\d.]+ [\d.]+ [\d.]+$`).MatchString(got) {
		t.Errorf("LoadAverage = %q, want three figures", got)
	}
}
