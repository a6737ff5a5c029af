// Package pgserver runs a private PostgreSQL server from the machine's server
// binaries: initdb on first start, start and stop with pg_ctl, and databases
// created on demand. The native stack keeps one under the data dir; tests start
// one per test process. Postgres refuses to run as root, so when this process is
// root the server runs as an unprivileged user (default "postgres").
package pgserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Options configure a server.
type Options struct {
	// Dir holds the cluster (Dir/data) and its unix socket (Dir/run).
	Dir string
	// BinDir holds postgres, initdb and pg_ctl; default: $OWNYOU_PG_BIN or /usr/lib/postgresql/15/bin.
	BinDir string
	// Port is the port number in the socket's name (no TCP listener is opened
	// unless Listen is set); default 5432.
	Port int
	// Listen, when set, also listens on TCP at this address (e.g. "127.0.0.1").
	Listen string
	// RunAs is the user the server runs as when this process is root; default "postgres".
	RunAs string
	// Settings are postgresql.conf settings passed on the server's command
	// line at every start; they override Tuned's defaults.
	Settings map[string]string
}

// Tuned returns settings for a server on a machine with ram bytes of memory
// (0: this machine's, cgroup limit included) that keep search fast: a buffer
// cache that holds the HNSW and GIN indexes of a large mailbox (a quarter of
// memory, 128 MB to 1 GB), planner costs for SSD-class storage, enough sort
// memory for ranking, and no JIT (it costs more than short queries run).
func Tuned(ram int64) map[string]string {
	if ram <= 0 {
		ram = MemoryLimit()
	}
	const mb = 1 << 20
	shared := min(max(ram/4, 128*mb), 1024*mb)
	return map[string]string{
		"shared_buffers":       fmt.Sprintf("%dMB", shared/mb),
		"effective_cache_size": fmt.Sprintf("%dMB", max(ram/2, shared)/mb),
		"work_mem":             "16MB",
		"maintenance_work_mem": fmt.Sprintf("%dMB", min(max(ram/16, 64*mb), 512*mb)/mb),
		"random_page_cost":     "1.1",
		"jit":                  "off",
	}
}

// MemoryLimit is the memory this process may use: the machine's total, or
// the cgroup (container) limit when lower; 1 GB when neither can be read.
func MemoryLimit() int64 {
	var total int64
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
				if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil {
					total = kb << 10
				}
			}
		}
	}
	if b, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		if lim, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && lim > 0 && (total == 0 || lim < total) {
			total = lim
		}
	}
	if total <= 0 {
		return 1 << 30
	}
	return total
}

// Server is a running private PostgreSQL server.
type Server struct {
	opts   Options
	data   string
	socket string
	uid    int
	gid    int
	asUser string
}

// ErrBadSetting means a setting's name or value cannot be passed to the server safely.
var ErrBadSetting = errors.New("unsafe postgres setting")

func safeSetting(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		if !(r == '_' || r == '.' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// ErrNoBinaries means the PostgreSQL server binaries are not installed.
var ErrNoBinaries = errors.New("postgresql server binaries not found (run 'make deps')")

// Start initializes the cluster if Dir has none and starts the server; a cluster
// left running by an earlier crash is stopped and started again.
func Start(ctx context.Context, o Options) (*Server, error) {
	if o.BinDir == "" {
		o.BinDir = os.Getenv("OWNYOU_PG_BIN")
	}
	if o.BinDir == "" {
		o.BinDir = "/usr/lib/postgresql/15/bin"
	}
	if o.Port == 0 {
		o.Port = 5432
	}
	if o.RunAs == "" {
		o.RunAs = "postgres"
	}
	if _, err := os.Stat(filepath.Join(o.BinDir, "postgres")); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrNoBinaries, o.BinDir)
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("pg dir: %w", err)
	}
	s := &Server{opts: o, data: filepath.Join(dir, "data"), socket: filepath.Join(dir, "run"), uid: -1, gid: -1}
	if len(s.socket)+len(".s.PGSQL.")+6 > 100 {
		return nil, fmt.Errorf("pg dir %s: path too long for a unix socket; choose a shorter data dir", dir)
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup(o.RunAs)
		if err != nil {
			return nil, fmt.Errorf("running as root, postgres must run as an unprivileged user: %w (create it or set OWNYOU_PG_USER)", err)
		}
		s.uid, _ = strconv.Atoi(u.Uid)
		s.gid, _ = strconv.Atoi(u.Gid)
		s.asUser = o.RunAs
	}
	for _, d := range []string{dir, s.socket} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("pg dir: %w", err)
		}
		if err := s.own(d); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(filepath.Join(s.data, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		if err := s.initdb(ctx); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(filepath.Join(s.data, "postmaster.pid")); err == nil {
		// A crash left a pid file: pg_ctl start copes with a stale one, and stop
		// handles a server that is somehow still running.
		_ = s.pgctl(ctx, "stop", "-m", "fast", "-w", "-t", "30")
	}
	settings := Tuned(0)
	maps.Copy(settings, o.Settings)
	settings["listen_addresses"] = o.Listen
	serverOpts := fmt.Sprintf("-p %d -k %s", o.Port, s.socket)
	for _, k := range slices.Sorted(maps.Keys(settings)) {
		v := settings[k]
		// pg_ctl hands -o to a shell: keep names and values to safe characters.
		if !safeSetting(k) || strings.ContainsAny(v, "'\\\n") {
			return nil, fmt.Errorf("%w: %s = %q", ErrBadSetting, k, v)
		}
		serverOpts += fmt.Sprintf(" -c %s='%s'", k, v)
	}
	args := []string{"start", "-w", "-t", "60", "-l", filepath.Join(dir, "postgres.log"), "-o", serverOpts}
	if err := s.pgctl(ctx, args...); err != nil {
		logTail, _ := os.ReadFile(filepath.Join(dir, "postgres.log"))
		return nil, fmt.Errorf("start postgres: %w\n%s", err, tail(logTail, 2000))
	}
	return s, nil
}

func (s *Server) initdb(ctx context.Context) error {
	if err := os.MkdirAll(s.data, 0o700); err != nil {
		return fmt.Errorf("initdb: %w", err)
	}
	if err := s.own(s.data); err != nil {
		return err
	}
	if err := s.run(ctx, filepath.Join(s.opts.BinDir, "initdb"), "-D", s.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-instructions"); err != nil {
		return fmt.Errorf("initdb: %w", err)
	}
	// Tuning (Tuned, Options.Settings) goes on the command line at each start,
	// so a changed setting reaches clusters created by earlier versions.
	conf := "\n# OwnYou Home private server\nunix_socket_permissions = 0700\nfsync = on\nmax_connections = 200\n"
	f, err := os.OpenFile(filepath.Join(s.data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("initdb: conf: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteString(conf); err != nil {
		return fmt.Errorf("initdb: conf: %w", err)
	}
	return nil
}

// URL returns a connection URL for database db over the server's unix socket
// (and TCP when Listen is set, preferring the socket).
func (s *Server) URL(db string) string {
	q := url.Values{}
	q.Set("host", s.socket)
	q.Set("port", strconv.Itoa(s.opts.Port))
	q.Set("sslmode", "disable")
	return (&url.URL{Scheme: "postgres", User: url.User("postgres"), Path: "/" + db, RawQuery: q.Encode()}).String()
}

// CreateDatabase creates db (from template when set) unless it exists.
func (s *Server) CreateDatabase(ctx context.Context, db, template string) error {
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return fmt.Errorf("create database %s: %w", db, err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", db).Scan(&exists); err != nil {
		return fmt.Errorf("create database %s: %w", db, err)
	}
	if exists {
		return nil
	}
	sql := "CREATE DATABASE " + pgx.Identifier{db}.Sanitize()
	if template != "" {
		sql += " TEMPLATE " + pgx.Identifier{template}.Sanitize()
	}
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("create database %s: %w", db, err)
	}
	return nil
}

// Stop shuts the server down (fast mode: open transactions are rolled back).
func (s *Server) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := s.pgctl(ctx, "stop", "-m", "fast", "-w", "-t", "55"); err != nil {
		return fmt.Errorf("stop postgres: %w", err)
	}
	return nil
}

func (s *Server) pgctl(ctx context.Context, args ...string) error {
	return s.run(ctx, filepath.Join(s.opts.BinDir, "pg_ctl"), append([]string{"-D", s.data}, args...)...)
}

// run executes a server binary, as the unprivileged user when we are root.
func (s *Server) run(ctx context.Context, bin string, args ...string) error {
	var cmd *exec.Cmd
	if s.asUser != "" {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", s.asUser, "--", bin}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, bin, args...)
	}
	cmd.Dir = "/"
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", filepath.Base(bin), strings.Join(args, " "), err, tail(out.Bytes(), 2000))
	}
	return nil
}

// own hands a directory to the server's user when we are root, and checks that
// user can reach it.
func (s *Server) own(dir string) error {
	if s.uid < 0 {
		return nil
	}
	if err := os.Chown(dir, s.uid, s.gid); err != nil {
		return fmt.Errorf("chown %s to %s: %w", dir, s.asUser, err)
	}
	for p := filepath.Dir(dir); p != "/"; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("pg dir: %w", err)
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) == s.uid && fi.Mode().Perm()&0o100 != 0 {
			continue // the server's own directory
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("pg dir: %s is not reachable by user %s (mode %v): choose a data dir outside it", p, s.asUser, fi.Mode().Perm())
		}
	}
	return nil
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}
