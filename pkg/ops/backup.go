package ops

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// backupPrefix and backupExt name backup files: ownyou-20060102T150405Z.dump.
const (
	backupPrefix = "ownyou-"
	backupExt    = ".dump"
)

// ErrNoBackup is returned by Latest when the directory holds no backup.
var ErrNoBackup = errors.New("no backup found")

// Backups writes pg_dump backups (custom format, compressed) of the database at
// URL into Dir, keeps the newest Keep of them, and restores one with
// pg_restore. Backup and Restore may run concurrently with the services;
// Restore replaces the database's contents and should run with the services
// stopped.
type Backups struct {
	URL   string // database to dump and restore into
	Dir   string // where backups are kept
	Keep  int    // newest backups kept; <= 0 keeps all
	PGBin string // directory of pg_dump and pg_restore; default /usr/lib/postgresql/15/bin
	Log   *slog.Logger
	Now   func() time.Time
}

func (b *Backups) bin(name string) string {
	dir := b.PGBin
	if dir == "" {
		dir = "/usr/lib/postgresql/15/bin"
	}
	return filepath.Join(dir, name)
}

func (b *Backups) logger() *slog.Logger {
	if b.Log == nil {
		return slog.Default()
	}
	return b.Log
}

// Backup dumps the database into a new file in Dir (written under a temporary
// name and renamed when complete, so a crash never leaves a truncated backup
// that looks whole), prunes old backups, and returns the new file's path.
func (b *Backups) Backup(ctx context.Context) (string, error) {
	if b.URL == "" || b.Dir == "" {
		return "", errors.New("backup: database URL and backup dir are required")
	}
	if err := os.MkdirAll(b.Dir, 0o700); err != nil {
		return "", fmt.Errorf("backup: %w", err)
	}
	now := time.Now
	if b.Now != nil {
		now = b.Now
	}
	name := backupPrefix + now().UTC().Format("20060102T150405Z") + backupExt
	final := filepath.Join(b.Dir, name)
	tmp := final + ".partial"
	start := time.Now()
	b.logger().InfoContext(ctx, "backup started", "file", final)
	dsn, env := splitPassword(b.URL)
	if err := run(ctx, env, b.bin("pg_dump"), "--format=custom", "--compress=6", "--no-owner", "--no-privileges", "--file="+tmp, "--dbname="+dsn); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("backup: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("backup: %w", err)
	}
	fi, _ := os.Stat(final)
	var size int64
	if fi != nil {
		size = fi.Size()
	}
	b.logger().InfoContext(ctx, "backup written", "file", final, "bytes", size, "took", time.Since(start).Round(time.Millisecond))
	if err := b.prune(); err != nil {
		b.logger().WarnContext(ctx, "backup retention", "err", err)
	}
	return final, nil
}

// List returns the complete backups in Dir, oldest first.
func (b *Backups) List() ([]string, error) {
	ents, err := os.ReadDir(b.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list backups: %w", err)
	}
	var out []string
	for _, e := range ents {
		n := e.Name()
		if e.Type().IsRegular() && strings.HasPrefix(n, backupPrefix) && strings.HasSuffix(n, backupExt) {
			out = append(out, filepath.Join(b.Dir, n))
		}
	}
	sort.Strings(out) // the UTC timestamp in the name sorts chronologically
	return out, nil
}

// Latest returns the newest complete backup, or ErrNoBackup.
func (b *Backups) Latest() (string, error) {
	all, err := b.List()
	if err != nil {
		return "", err
	}
	if len(all) == 0 {
		return "", fmt.Errorf("%w in %s", ErrNoBackup, b.Dir)
	}
	return all[len(all)-1], nil
}

func (b *Backups) prune() error {
	if b.Keep <= 0 {
		return nil
	}
	all, err := b.List()
	if err != nil {
		return err
	}
	var errs []error
	for len(all) > b.Keep {
		if err := os.Remove(all[0]); err != nil {
			errs = append(errs, err)
		}
		all = all[1:]
	}
	return errors.Join(errs...)
}

// Restore replaces the database's contents with the backup in file, in one
// transaction: on failure the database is left as it was.
func (b *Backups) Restore(ctx context.Context, file string) error {
	if _, err := os.Stat(file); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	start := time.Now()
	b.logger().InfoContext(ctx, "restore started", "file", file)
	dsn, env := splitPassword(b.URL)
	if err := run(ctx, env, b.bin("pg_restore"), "--clean", "--if-exists", "--no-owner", "--no-privileges", "--single-transaction", "--exit-on-error", "--dbname="+dsn, file); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	b.logger().InfoContext(ctx, "restore finished", "file", file, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// RunEvery makes a backup every interval (the first one interval after start)
// until ctx is cancelled; a failure is logged and tried again at the next tick.
func (b *Backups) RunEvery(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := b.Backup(ctx); err != nil && ctx.Err() == nil {
			b.logger().ErrorContext(ctx, "scheduled backup failed", "err", err)
		}
	}
}

// splitPassword moves the password of a URL-form DSN into PGPASSWORD, so it
// does not show in the process list; other DSNs are returned unchanged.
func splitPassword(dsn string) (string, []string) {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return dsn, nil
	}
	pw, ok := u.User.Password()
	if !ok {
		return dsn, nil
	}
	u.User = url.User(u.User.Username())
	return u.String(), []string{"PGPASSWORD=" + pw}
}

func run(ctx context.Context, env []string, bin string, args ...string) error {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(out.String())
		if len(msg) > 2000 {
			msg = msg[len(msg)-2000:]
		}
		return fmt.Errorf("%s: %w: %s", filepath.Base(bin), err, redact(msg))
	}
	return nil
}

// redact hides a password that a tool might echo from a connection URL.
func redact(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		if at := strings.Index(s[i:], "@"); at > 0 {
			return s[:i+3] + "****" + s[i+at:]
		}
	}
	return s
}
