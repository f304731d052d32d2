package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"livedrops/internal/serverproc"
)

// The ceiling is a bare net/http server answering each shape's recorded
// bytes, as a process of its own (this binary, started again with these
// variables): what HTTP alone costs on this machine, measured by the same
// load.
const (
	bareDirEnv  = "BENCH_READS_BARE_DIR"
	bareAddrEnv = "BENCH_READS_BARE_ADDR"
)

// bareHandler answers POST /<shape> with answers[shape] after reading the
// request's body, as a GraphQL server must; /readyz says it is up.
func bareHandler(answers map[string][]byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			return
		}
		b, ok := answers[strings.TrimPrefix(r.URL.Path, "/")]
		if !ok || r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	})
}

// writeBareAnswers stores each shape's answer in dir as <shape>.json.
func writeBareAnswers(dir string, answers map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("bare ceiling: %w", err)
	}
	for name, b := range answers {
		if err := os.WriteFile(filepath.Join(dir, name+".json"), b, 0o644); err != nil {
			return fmt.Errorf("bare ceiling: %w", err)
		}
	}
	return nil
}

// readBareAnswers reads what writeBareAnswers stored.
func readBareAnswers(dir string) (map[string][]byte, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("bare ceiling: no answers in %s", dir)
	}
	answers := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("bare ceiling: %w", err)
		}
		answers[strings.TrimSuffix(filepath.Base(f), ".json")] = b
	}
	return answers, nil
}

// serveBare is the ceiling process's main: it serves the answers in dir on
// addr until SIGTERM.
func serveBare(dir, addr string) error {
	answers, err := readBareAnswers(dir)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("bare ceiling: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv := &http.Server{Handler: bareHandler(answers), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("bare ceiling: %w", err)
	}
	return nil
}

// startBare stores the answers under dir and starts the ceiling process.
func startBare(ctx context.Context, dir string, answers map[string][]byte) (*serverproc.Server, error) {
	if err := writeBareAnswers(dir, answers); err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("bare ceiling: find this binary: %w", err)
	}
	addr, err := serverproc.FreeAddr()
	if err != nil {
		return nil, err
	}
	env := []string{bareDirEnv + "=" + dir, bareAddrEnv + "=" + addr}
	return serverproc.Start(ctx, self, addr, env, filepath.Join(dir, "bare.log"), 30*time.Second)
}
