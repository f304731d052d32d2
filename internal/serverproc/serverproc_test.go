package serverproc

import (
	"context"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the server: run with SERVERPROC_CHILD set, it
// serves /readyz on HTTP_ADDR until SIGTERM, like the real one.
func TestMain(m *testing.M) {
	switch os.Getenv("SERVERPROC_CHILD") {
	case "serve":
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer stop()
		srv := &http.Server{Addr: os.Getenv("HTTP_ADDR"), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("ok"))
		})}
		go srv.ListenAndServe()
		os.Stdout.WriteString("child up on " + srv.Addr + "\n")
		<-ctx.Done()
		srv.Shutdown(context.Background())
		os.Exit(0)
	case "args":
		// Another program: its address in its arguments, no /readyz.
		srv := &http.Server{Addr: os.Args[len(os.Args)-1], Handler: http.NotFoundHandler()}
		go srv.ListenAndServe()
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer stop()
		<-ctx.Done()
		srv.Shutdown(context.Background())
		os.Exit(0)
	case "die":
		os.Stderr.WriteString("config: DATABASE_URL: not a URL\n")
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func TestStartWaitsForReadyAndStops(t *testing.T) {
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), "server.log")
	s, err := Start(context.Background(), os.Args[0], addr,
		[]string{"SERVERPROC_CHILD=serve", "HTTP_ADDR=" + addr}, logPath, 20*time.Second)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	resp, err := http.Get(s.URL + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("server not serving after Start: %v", err)
	}
	resp.Body.Close()
	if err := s.Stop(10 * time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if !s.Exited() {
		t.Error("process still running after Stop")
	}
	if !strings.Contains(s.Tail(5), "child up on "+addr) {
		t.Errorf("log does not hold the child's output: %q", s.Tail(5))
	}
}

func TestStartReportsAServerThatDies(t *testing.T) {
	addr, _ := FreeAddr()
	_, err := Start(context.Background(), os.Args[0], addr, []string{"SERVERPROC_CHILD=die"},
		filepath.Join(t.TempDir(), "server.log"), 20*time.Second)
	if err == nil || !strings.Contains(err.Error(), "exited before it was ready") || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Fatalf("Start of a dying server: %v", err)
	}
}

func TestKillEndsAServerAtOnce(t *testing.T) {
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	s, err := Start(context.Background(), os.Args[0], addr,
		[]string{"SERVERPROC_CHILD=serve", "HTTP_ADDR=" + addr}, filepath.Join(t.TempDir(), "server.log"), 20*time.Second)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	s.Kill()
	if !s.Exited() {
		t.Fatal("process still running after Kill")
	}
	s.Kill() // a second Kill finds it ended and returns
	if err := s.Stop(time.Second); err == nil || !strings.Contains(err.Error(), "already exited") {
		t.Fatalf("Stop after Kill: %v", err)
	}
}

// A program of another kind is ready once it answers at all, whatever the status.
func TestStartProgramTakesArgs(t *testing.T) {
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	s, err := StartProgram(context.Background(), os.Args[0], []string{"-test.run=^$", addr}, addr,
		[]string{"SERVERPROC_CHILD=args"}, filepath.Join(t.TempDir(), "program.log"), 20*time.Second)
	if err != nil {
		t.Fatalf("StartProgram: %v", err)
	}
	if err := s.Stop(10 * time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
}
