package devstack

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lib/pq"
)

// Database is the database the embedded cluster creates for the app.
const Database = "livedrops"

// postgresPort is tried first so the URL stays the same across restarts;
// any free port is used when it is taken.
const postgresPort = 54329

// postgres is a private PostgreSQL cluster run from the machine's binaries:
// data in <dir>/data, server log in <dir>/server.log.
type postgres struct {
	dir    string // <DATA_DIR>/postgres
	bin    string // directory holding initdb, pg_ctl and postgres
	cred   *syscall.Credential
	port   int
	url    string
	logOut string
}

func (p *postgres) dataDir() string { return filepath.Join(p.dir, "data") }

// startPostgres brings the cluster under dir up: initdb on first use, reuse of
// a server left running by a run that crashed, otherwise pg_ctl start. It
// returns once the app's database exists.
func startPostgres(ctx context.Context, dir string) (*postgres, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("postgres: resolve %s: %w", dir, err)
	}
	p := &postgres{dir: abs, logOut: filepath.Join(abs, "server.log")}
	version, _ := os.ReadFile(filepath.Join(p.dataDir(), "PG_VERSION"))
	p.bin, err = findPostgresBinaries("/usr/lib/postgresql", strings.TrimSpace(string(version)))
	if err != nil {
		return nil, err
	}
	if err := p.prepareDir(); err != nil {
		return nil, err
	}
	if len(version) == 0 {
		if err := p.initdb(ctx); err != nil {
			return nil, err
		}
	}

	reused, err := p.reuseRunning(ctx)
	if err != nil {
		return nil, err
	}
	if !reused {
		if err := p.start(ctx); err != nil {
			return nil, err
		}
	}
	if err := p.createDatabase(ctx); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// findPostgresBinaries picks the directory holding initdb and pg_ctl: the
// version matching an existing cluster, else the newest under root
// (/usr/lib/postgresql/<version>/bin), else pg_config --bindir, else PATH.
func findPostgresBinaries(root, wantVersion string) (string, error) {
	complete := func(dir string) bool {
		for _, name := range []string{"initdb", "pg_ctl", "postgres"} {
			if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
				return false
			}
		}
		return true
	}
	if wantVersion != "" {
		if dir := filepath.Join(root, wantVersion, "bin"); complete(dir) {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob(filepath.Join(root, "*", "bin"))
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, dir := range dirs {
		if complete(dir) {
			return dir, nil
		}
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if dir := strings.TrimSpace(string(out)); complete(dir) {
			return dir, nil
		}
	}
	if initdb, err := exec.LookPath("initdb"); err == nil {
		if dir := filepath.Dir(initdb); complete(dir) {
			return dir, nil
		}
	}
	return "", errors.New("postgres: no PostgreSQL binaries (initdb, pg_ctl, postgres) found in " +
		root + "/*/bin, pg_config --bindir or PATH: run `make run`, which installs them, or set DATABASE_URL to use your own database")
}

// versionOf reads the major version out of /usr/lib/postgresql/<version>/bin.
func versionOf(binDir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	return v
}

// prepareDir creates the cluster directory. PostgreSQL refuses to run as
// root, so as root the cluster belongs to, and runs as, the postgres user.
func (p *postgres) prepareDir() error {
	parent := filepath.Dir(p.dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("postgres: create %s: %w", parent, err)
	}
	if err := os.Mkdir(p.dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("postgres: create %s: %w", p.dir, err)
	}
	if os.Geteuid() != 0 {
		return nil
	}
	// The postgres user must be able to pass through DATA_DIR to reach its cluster.
	if info, err := os.Stat(parent); err == nil && info.Mode().Perm()&0o001 == 0 {
		if err := os.Chmod(parent, info.Mode().Perm()|0o001); err != nil {
			return fmt.Errorf("postgres: let the postgres user through %s: %w", parent, err)
		}
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return fmt.Errorf("postgres: running as root needs a postgres user to own the cluster (PostgreSQL refuses root): %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	err = filepath.WalkDir(p.dir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, gid)
	})
	if err != nil {
		return fmt.Errorf("postgres: hand %s to the postgres user: %w", p.dir, err)
	}
	return nil
}

func (p *postgres) initdb(ctx context.Context) error {
	// A directory without PG_VERSION is a half-made cluster from an interrupted initdb.
	if err := os.RemoveAll(p.dataDir()); err != nil {
		return fmt.Errorf("postgres: clear %s: %w", p.dataDir(), err)
	}
	out, err := p.run(ctx, "initdb", "-D", p.dataDir(), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C")
	if err != nil {
		return fmt.Errorf("postgres: initdb in %s: %w\n%s%s", p.dataDir(), err, out, p.rootHint())
	}
	return nil
}

// reuseRunning deals with a postmaster.pid left by a run that did not stop
// its server: a server that answers is adopted (and stopped by Close), one
// that does not is stopped, and a lock file naming someone else's process is
// removed.
func (p *postgres) reuseRunning(ctx context.Context) (bool, error) {
	lockFile := filepath.Join(p.dataDir(), "postmaster.pid")
	data, err := os.ReadFile(lockFile)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("postgres: read %s: %w", lockFile, err)
	}
	lines := strings.Split(string(data), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(lines[0]))
	if pid <= 0 || !isPostgresProcess(pid) {
		// Dead, or the pid now belongs to another program: the lock is stale.
		if err := os.Remove(lockFile); err != nil {
			return false, fmt.Errorf("postgres: remove stale %s: %w", lockFile, err)
		}
		return false, nil
	}
	if len(lines) > 3 {
		if port, err := strconv.Atoi(strings.TrimSpace(lines[3])); err == nil {
			p.setPort(port)
			if p.ping(ctx, "postgres", 3*time.Second) == nil {
				return true, nil
			}
		}
	}
	if out, err := p.run(ctx, "pg_ctl", "stop", "-D", p.dataDir(), "-m", "immediate", "-w", "-t", "30"); err != nil {
		return false, fmt.Errorf("postgres: stop the unresponsive server (pid %d) in %s: %w\n%s", pid, p.dataDir(), err, out)
	}
	return false, nil
}

func isPostgresProcess(pid int) bool {
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		// No /proc: all we can tell is whether the pid is alive.
		return syscall.Kill(pid, 0) == nil
	}
	name := strings.TrimSpace(string(comm))
	return name == "postgres" || name == "postmaster"
}

// socketSafe is what we pass to unix_socket_directories unquoted.
var socketSafe = regexp.MustCompile(`^[A-Za-z0-9/._-]+$`)

func (p *postgres) start(ctx context.Context) error {
	port, err := freePort(postgresPort)
	if err != nil {
		return fmt.Errorf("postgres: find a port: %w", err)
	}
	p.setPort(port)
	// The socket lives next to the data so it never clashes with a system
	// cluster; a path too long or odd for a socket means TCP only.
	socketDir := p.dir
	if len(socketDir)+len("/.s.PGSQL.65535") > 100 || !socketSafe.MatchString(socketDir) {
		socketDir = "''"
	}
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -c unix_socket_directories=%s", port, socketDir)
	out, err := p.run(ctx, "pg_ctl", "start", "-D", p.dataDir(), "-l", p.logOut, "-w", "-t", "60", "-o", opts)
	if err != nil {
		return fmt.Errorf("postgres: start the server in %s on port %d: %w\n%s(server log: %s)", p.dataDir(), port, err, out, p.logOut)
	}
	return nil
}

func (p *postgres) setPort(port int) {
	p.port = port
	p.url = p.urlFor(Database)
}

func (p *postgres) urlFor(database string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User("postgres"),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// ping waits up to wait for the server to answer a query on database.
func (p *postgres) ping(ctx context.Context, database string, wait time.Duration) error {
	db, err := sql.Open("postgres", p.urlFor(database))
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		err = db.PingContext(ctx)
		if err == nil || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (p *postgres) createDatabase(ctx context.Context) error {
	db, err := sql.Open("postgres", p.urlFor("postgres"))
	if err != nil {
		return fmt.Errorf("postgres: connect: %w", err)
	}
	defer db.Close()
	if err := p.ping(ctx, "postgres", 30*time.Second); err != nil {
		return fmt.Errorf("postgres: connect to the server on port %d: %w", p.port, err)
	}
	var exists bool
	if err := db.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", Database).Scan(&exists); err != nil {
		return fmt.Errorf("postgres: look for database %s: %w", Database, err)
	}
	if exists {
		return nil
	}
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(Database)); err != nil {
		return fmt.Errorf("postgres: create database %s: %w", Database, err)
	}
	return nil
}

// stop shuts the server down (fast: open sessions are cut, data is safe).
func (p *postgres) stop() error {
	if _, err := os.Stat(filepath.Join(p.dataDir(), "postmaster.pid")); errors.Is(err, fs.ErrNotExist) {
		return nil // already stopped, e.g. by whoever adopted it
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if out, err := p.run(ctx, "pg_ctl", "stop", "-D", p.dataDir(), "-m", "fast", "-w", "-t", "60"); err != nil {
		if _, statErr := os.Stat(filepath.Join(p.dataDir(), "postmaster.pid")); errors.Is(statErr, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("postgres: stop the server in %s: %w\n%s", p.dataDir(), err, out)
	}
	return nil
}

// run executes one of the cluster's binaries, as the postgres user when we
// are root, in a process group of its own so that a Ctrl-C meant for the app
// does not reach the server before Close stops it in order.
func (p *postgres) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(p.bin, name), args...)
	cmd.Dir = p.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: p.cred}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	// pg_ctl start leaves the server behind; never wait on inherited pipes.
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	return out.Bytes(), err
}

func (p *postgres) rootHint() string {
	if p.cred == nil {
		return ""
	}
	return fmt.Sprintf("(as root the cluster runs as the postgres user, which must be able to reach %s)", p.dir)
}

// freePort returns preferred if nothing listens there, else any free port.
func freePort(preferred int) (int, error) {
	if ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(preferred))); err == nil {
		ln.Close()
		return preferred, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
