// Package rig is what both benchmarks do around their load: the flags that
// name the server binary and how to run it, starting it on a sandbox as a
// process of its own, stopping it, and turning a run into an exit code.
package rig

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"livedrops/bench/internal/sandbox"
	"livedrops/internal/serverproc"
)

const (
	// readyWithin bounds a server's start: migrations on a fresh database
	// and the Kafka topic's creation come first.
	readyWithin = 90 * time.Second
	// stopWithin bounds a server's graceful shutdown after SIGTERM.
	stopWithin = 20 * time.Second
)

// Server is how the benchmark runs the server.
type Server struct {
	// Bin is the built server binary.
	Bin string
	// LogDir holds the server's log and data directory.
	LogDir    string
	OrderRate int
	LogLevel  string
}

// Flags registers -server, -logs, -order-rate and -log-level on fs, with
// the defaults both benchmarks use.
func (s *Server) Flags(fs *flag.FlagSet) {
	fs.StringVar(&s.Bin, "server", ".data/bin/livedrops", "the built server binary")
	fs.StringVar(&s.LogDir, "logs", ".data/bench", "directory for the server's log")
	fs.IntVar(&s.OrderRate, "order-rate", 1_000_000, "ORDER_RATE_PER_MINUTE given to the server, high enough not to interfere")
	fs.StringVar(&s.LogLevel, "log-level", "warn", "LOG_LEVEL given to the server")
}

// CheckBin fails, saying how to build it, when the server binary is missing.
func (s Server) CheckBin() error {
	if _, err := os.Stat(s.Bin); err != nil {
		return fmt.Errorf("server binary %s: %w (build it with `go build -o %s .`)", s.Bin, err, s.Bin)
	}
	return nil
}

// Start runs the server on a free loopback port with box's services and
// extra variables (NAME=value), its log in LogDir/<sandbox>.server.log and its
// data under LogDir/<sandbox>, and returns once it is ready.
func (s Server) Start(ctx context.Context, box *sandbox.Sandbox, extra ...string) (*serverproc.Server, error) {
	if err := os.MkdirAll(s.LogDir, 0o755); err != nil {
		return nil, fmt.Errorf("create log directory: %w", err)
	}
	addr, err := serverproc.FreeAddr()
	if err != nil {
		return nil, err
	}
	env := append(box.ServerEnv(addr),
		fmt.Sprintf("ORDER_RATE_PER_MINUTE=%d", s.OrderRate),
		"LOG_LEVEL="+s.LogLevel,
		"DATA_DIR="+filepath.Join(s.LogDir, box.Name),
	)
	env = append(env, extra...)
	logPath := filepath.Join(s.LogDir, box.Name+".server.log")
	return serverproc.Start(ctx, s.Bin, addr, env, logPath, readyWithin)
}

// Stop stops a started server gracefully; an error carries the end of its
// log. A nil server is no error.
func Stop(srv *serverproc.Server) error {
	if srv == nil {
		return nil
	}
	if err := srv.Stop(stopWithin); err != nil {
		return fmt.Errorf("%w\n--- end of %s ---\n%s", err, srv.LogPath, srv.Tail(20))
	}
	return nil
}

// Main runs a benchmark until it ends or the process is told to stop
// (Ctrl-C, SIGTERM: the run's context ends and cleanup still runs), and
// exits with the code Exit gives.
func Main(name string, run func(context.Context) error, cleanup func() error, verdict func() int) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Exit(ctx, name, os.Stderr, run, cleanup, verdict)
	stop()
	os.Exit(code)
}

// Exit runs a benchmark and returns its exit code: 1 when run broke, else
// what verdict says. cleanup runs either way; its failure is reported on
// stderr under name without changing the code.
func Exit(ctx context.Context, name string, stderr io.Writer, run func(context.Context) error, cleanup func() error, verdict func() int) int {
	err := run(ctx)
	if cerr := cleanup(); cerr != nil {
		fmt.Fprintln(stderr, name+": cleanup:", cerr)
	}
	if err != nil {
		fmt.Fprintln(stderr, name+": the run broke:", err)
		return 1
	}
	return verdict()
}

// LoadAverage is the machine's load average over 1, 5 and 15 minutes as
// /proc/loadavg gives it ("0.52 0.41 0.30"), "" when it cannot be read.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
