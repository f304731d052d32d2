// Package serverproc runs the built Live Drops server as a process of its
// own, the way it runs in production, and stops it gracefully.
package serverproc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Server is a running server process.
type Server struct {
	// URL is the server's base URL, http://host:port.
	URL     string
	LogPath string
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
}

// FreeAddr returns a loopback address with a port nothing listens on now.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("serverproc: find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Start runs bin listening on addr with the process environment plus env
// (env wins), its output appended to logPath, and waits until /readyz
// answers 200. A server that exits or is not ready within timeout is an
// error carrying the end of its log.
func Start(ctx context.Context, bin, addr string, env []string, logPath string, timeout time.Duration) (*Server, error) {
	return start(ctx, exec.Command(bin), addr, env, logPath, timeout, "/readyz", func(status int) bool { return status == http.StatusOK })
}

// StartProgram is Start for another program than ours, run with args: it is
// ready once it answers anything over HTTP at addr.
func StartProgram(ctx context.Context, bin string, args []string, addr string, env []string, logPath string, timeout time.Duration) (*Server, error) {
	return start(ctx, exec.Command(bin, args...), addr, env, logPath, timeout, "/", func(int) bool { return true })
}

func start(ctx context.Context, cmd *exec.Cmd, addr string, env []string, logPath string, timeout time.Duration,
	readyPath string, ready func(status int) bool) (*Server, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("serverproc: open log %s: %w", logPath, err)
	}
	defer logFile.Close() // the child keeps its own descriptor
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group, so a Ctrl-C meant for the benchmark reaches the
	// server only through Stop, in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("serverproc: start %s: %w", cmd.Path, err)
	}
	s := &Server{URL: "http://" + addr, LogPath: logPath, cmd: cmd, exited: make(chan struct{})}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitReady(ctx, timeout, readyPath, ready); err != nil {
		_ = s.Stop(5 * time.Second)
		return nil, fmt.Errorf("%w\n--- end of %s ---\n%s", err, logPath, tail(logPath, 30))
	}
	return s, nil
}

func (s *Server) waitReady(ctx context.Context, timeout time.Duration, path string, ready func(status int) bool) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case <-s.exited:
			return fmt.Errorf("serverproc: server exited before it was ready: %v", s.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("serverproc: wait for readiness: %w", ctx.Err())
		default:
		}
		resp, err := client.Get(s.URL + path)
		if err == nil {
			resp.Body.Close()
			if ready(resp.StatusCode) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("serverproc: %s%s not ready within %s (last: %v)", s.URL, path, timeout, describe(resp, err))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func describe(resp *http.Response, err error) string {
	if err != nil {
		return err.Error()
	}
	return resp.Status
}

// Exited reports whether the process has ended.
func (s *Server) Exited() bool {
	select {
	case <-s.exited:
		return true
	default:
		return false
	}
}

// Stop asks the server to shut down (SIGTERM) and waits up to grace before
// killing it. A server that already died is reported with how it ended.
func (s *Server) Stop(grace time.Duration) error {
	if s.Exited() {
		return fmt.Errorf("serverproc: server had already exited: %v", s.waitErr)
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("serverproc: signal server: %w", err)
	}
	select {
	case <-s.exited:
		if s.waitErr != nil {
			return fmt.Errorf("serverproc: server ended badly after SIGTERM: %w", s.waitErr)
		}
		return nil
	case <-time.After(grace):
		_ = s.cmd.Process.Kill()
		<-s.exited
		return fmt.Errorf("serverproc: server did not stop within %s; killed", grace)
	}
}

// Kill ends the process at once and waits for it; a process that already
// ended is left as it is. It is for cleanups after a test or run that failed
// before it could Stop the server.
func (s *Server) Kill() {
	if s.Exited() {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(log unreadable: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Tail returns the last n lines of the server's log.
func (s *Server) Tail(n int) string { return tail(s.LogPath, n) }

// PID is the server's process id.
func (s *Server) PID() int { return s.cmd.Process.Pid }
