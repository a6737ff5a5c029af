// Package dovecottest starts a real Dovecot IMAP server for tests: its own
// process (dovecot -F), its own configuration and maildirs in a temporary
// directory, a passwd-file user database, listening on a free unprivileged
// port on 127.0.0.1. XOAUTH2 logins are checked against a local tokeninfo
// endpoint. It needs Debian's dovecot-imapd package; tests skip when the
// dovecot binary is missing, except in CI (CI=true) or with
// OWNYOU_REQUIRE_DOVECOT=1, where that is a failure.
package dovecottest

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Server is a running Dovecot instance.
type Server struct {
	Addr     string // host:port of the plain IMAP listener
	User     string
	Password string
	Dir      string

	cmd       *exec.Cmd
	tokMu     sync.Mutex
	tokens    map[string]string // access token → user
	authorize func(token string) bool
}

// AuthorizeTokens makes every token for which valid returns true a valid
// XOAUTH2 bearer token for the test user (e.g. oauthfake's ValidAccess, so
// tokens issued and refreshed by a fake token endpoint log in).
func (s *Server) AuthorizeTokens(valid func(token string) bool) {
	s.tokMu.Lock()
	defer s.tokMu.Unlock()
	s.authorize = valid
}

// AddToken makes token a valid XOAUTH2 bearer token for the test user.
func (s *Server) AddToken(token string) {
	s.tokMu.Lock()
	defer s.tokMu.Unlock()
	s.tokens[token] = s.User
}

func binary() string {
	for _, p := range []string{"/usr/sbin/dovecot", "/usr/local/sbin/dovecot"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("dovecot"); err == nil {
		return p
	}
	return ""
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Start runs Dovecot for the test and stops it at cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := binary()
	if bin == "" {
		if os.Getenv("OWNYOU_REQUIRE_DOVECOT") == "1" || os.Getenv("CI") == "true" {
			t.Fatal("dovecot not installed (apt-get install dovecot-imapd)")
		}
		t.Skip("dovecot not installed (apt-get install dovecot-imapd)")
	}
	// Not t.TempDir: its parent is 0700 and Dovecot's unprivileged
	// processes must reach the mail directory.
	dir, err := os.MkdirTemp("", "dovecottest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := &Server{User: "alice", Password: "s3cret-app-password", Dir: dir, tokens: map[string]string{}}

	tokeninfo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := r.URL.Query().Get("access_token")
		if tok == "" {
			tok = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		}
		s.tokMu.Lock()
		u, ok := s.tokens[tok]
		if !ok && s.authorize != nil && tok != "" && s.authorize(tok) {
			u, ok = s.User, true
		}
		s.tokMu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(map[string]string{"error": "invalid_token"})
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"email": u, "active": true})
	}))
	t.Cleanup(tokeninfo.Close)

	// Mail and internal users: as root, Dovecot's own system users; as
	// anyone else, the current user for everything.
	mailUID, mailGID := os.Getuid(), os.Getgid()
	loginUser, internalUser := "", ""
	if os.Getuid() == 0 {
		du, err := user.Lookup("dovecot")
		if err != nil {
			t.Fatalf("dovecot system user missing: %v", err)
		}
		mailUID, _ = strconv.Atoi(du.Uid)
		mailGID, _ = strconv.Atoi(du.Gid)
		loginUser, internalUser = "dovenull", "dovecot"
		if _, err := user.Lookup("dovenull"); err != nil {
			loginUser = "dovecot"
		}
	} else {
		cu, err := user.Current()
		if err != nil {
			t.Fatal(err)
		}
		loginUser, internalUser = cu.Username, cu.Username
	}
	mailDir := filepath.Join(dir, "mail")
	for _, d := range []string{filepath.Join(dir, "run"), filepath.Join(dir, "state"), filepath.Join(mailDir, s.User)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(dir, 0o755)
	if os.Getuid() == 0 {
		filepath.Walk(mailDir, func(p string, _ os.FileInfo, _ error) error { return os.Chown(p, mailUID, mailGID) })
	}
	passwd := fmt.Sprintf("%s:{PLAIN}%s:%d:%d::%s::\n", s.User, s.Password, mailUID, mailGID, filepath.Join(mailDir, s.User))
	if err := os.WriteFile(filepath.Join(dir, "passwd"), []byte(passwd), 0o644); err != nil {
		t.Fatal(err)
	}
	oauthConf := fmt.Sprintf("tokeninfo_url = %[1]s/tokeninfo?access_token=\nintrospection_mode = get\nintrospection_url = %[1]s/tokeninfo?access_token=\nusername_attribute = email\nactive_attribute = active\nactive_value = true\n", tokeninfo.URL)
	if err := os.WriteFile(filepath.Join(dir, "oauth2.conf.ext"), []byte(oauthConf), 0o644); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	conf := fmt.Sprintf(`base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login xoauth2 oauthbearer
auth_failure_delay = 0
default_login_user = %[3]s
default_internal_user = %[4]s
default_internal_group = %[4]s
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:~/Maildir
service imap-login {
  chroot =
  inet_listener imap {
    address = 127.0.0.1
    port = %[2]d
  }
  inet_listener imaps {
    port = 0
  }
}
service anvil {
  chroot =
}
passdb {
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN username_format=%%u %[1]s/passwd
}
passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = %[1]s/oauth2.conf.ext
}
userdb {
  driver = passwd-file
  args = username_format=%%u %[1]s/passwd
}
`, dir, port, loginUser, internalUser)
	confPath := filepath.Join(dir, "dovecot.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(filepath.Join(dir, "stdout.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-F", "-c", confPath)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dovecot: %v", err)
	}
	s.cmd = cmd
	s.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	t.Cleanup(func() {
		// SIGTERM the master; it stops its children.
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		out.Close()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return s
		}
		if time.Now().After(deadline) {
			logs, _ := os.ReadFile(filepath.Join(dir, "stdout.log"))
			dlog, _ := os.ReadFile(filepath.Join(dir, "dovecot.log"))
			t.Fatalf("dovecot did not start listening on %s: %v\n%s\n%s", s.Addr, err, logs, dlog)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Logs returns Dovecot's log, for failure messages.
func (s *Server) Logs() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "dovecot.log"))
	return string(b)
}
