package testenv

import (
	"context"
	"net"
	"os/exec"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisServer is a redis-server process of one test's own, for tests that
// kill and restart Redis: never the shared one, which others' tests use. It
// keeps nothing on disk, so it always comes back empty.
type RedisServer struct {
	// Addr is host:port; it stays the same across restarts.
	Addr string
	t    testing.TB
	cmd  *exec.Cmd
}

// PrivateRedis starts a redis-server (the binary `make services` installs)
// on a free port; it is killed when the test ends.
func PrivateRedis(t testing.TB) *RedisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("testenv: redis-server is not installed (make services installs it): %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: find a free port: %v", err)
	}
	addr := l.Addr().String()
	l.Close()
	r := &RedisServer{Addr: addr, t: t}
	r.Start()
	t.Cleanup(r.Kill)
	return r
}

// Start starts the server (again, empty) and waits until it answers PING.
func (r *RedisServer) Start() {
	r.t.Helper()
	_, port, _ := net.SplitHostPort(r.Addr)
	r.cmd = exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.t.TempDir())
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("testenv: start redis-server on %s: %v", r.Addr, err)
	}
	client := redis.NewClient(&redis.Options{Addr: r.Addr, MaxRetries: -1})
	defer client.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), reachTimeout)
		err := client.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			r.Kill()
			r.t.Fatalf("testenv: redis-server on %s did not answer: %v", r.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill kills the server at once (SIGKILL), as a crash would, and waits for
// it to exit; killing a stopped server does nothing.
func (r *RedisServer) Kill() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	r.cmd.Process.Kill()
	r.cmd.Wait()
	r.cmd = nil
}

// URL is the server's redis:// URL.
func (r *RedisServer) URL() string { return "redis://" + r.Addr + "/0" }
