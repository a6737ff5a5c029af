package deploy_test

import (
	"bufio"
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// goBuild matches the Dockerfile's `go build FLAGS -o /out/ ./pkg…` command
// (continuation lines joined).
var goBuild = regexp.MustCompile(`go build (.*?)-o /out/ ((?:\./\S+ *)+)`)

type buildLine struct {
	flags []string
	bin   string // binary name: the package's last path element
	pkg   string
}

func dockerfile(t *testing.T) (stages []string, builds []buildLine, user string) {
	t.Helper()
	f, err := os.Open("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var joined []string
	cont := ""
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if strings.HasSuffix(l, "\\") {
			cont += strings.TrimSuffix(l, "\\") + " "
			continue
		}
		joined = append(joined, strings.Join(strings.Fields(cont+l), " "))
		cont = ""
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for _, line := range joined {
		if fields := strings.Fields(line); len(fields) >= 4 && strings.EqualFold(fields[0], "FROM") && strings.EqualFold(fields[len(fields)-2], "AS") {
			stages = append(stages, fields[len(fields)-1])
		}
		if fields := strings.Fields(line); len(fields) == 2 && fields[0] == "USER" {
			user = fields[1]
		}
		if m := goBuild.FindStringSubmatch(line); m != nil {
			for _, pkg := range strings.Fields(m[2]) {
				builds = append(builds, buildLine{flags: shellWords(m[1]), bin: filepath.Base(pkg), pkg: pkg})
			}
		}
	}
	return stages, builds, user
}

// shellWords splits s like a POSIX shell for the subset the Dockerfile uses
// (spaces and double quotes).
func shellWords(s string) []string {
	var out []string
	var cur strings.Builder
	inQuote, have := false, false
	for _, r := range s {
		switch {
		case r == '"':
			inQuote, have = !inQuote, true
		case r == ' ' && !inQuote:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}

func TestDockerfileBuildsEveryBinaryComposeRuns(t *testing.T) {
	stages, builds, user := dockerfile(t)
	if !slices.Contains(stages, "runtime") || !slices.Contains(stages, "build") {
		t.Fatalf("Dockerfile stages %v, want build and runtime", stages)
	}
	if user == "" || strings.HasPrefix(user, "0") || user == "root" {
		t.Errorf("runtime USER = %q, want an unprivileged user", user)
	}
	built := map[string]buildLine{}
	for _, b := range builds {
		built[b.bin] = b
	}
	p := load(t, nil)
	for name, s := range p.Services {
		if s.Build == nil {
			continue
		}
		if s.Build.Target != "" && !slices.Contains(stages, s.Build.Target) {
			t.Errorf("%s: build target %q is not a Dockerfile stage %v", name, s.Build.Target, stages)
		}
		if len(s.Command) == 0 {
			t.Errorf("%s: no command", name)
		} else if _, ok := built[s.Command[0]]; !ok {
			t.Errorf("%s runs %q, which the Dockerfile does not build", name, s.Command[0])
		}
		if hc := s.HealthCheck; hc != nil && !hc.Disable && len(hc.Test) > 1 {
			if _, ok := built[hc.Test[1]]; !ok {
				t.Errorf("%s: healthcheck runs %q, which the Dockerfile does not build", name, hc.Test[1])
			}
		}
	}
	if testing.Short() {
		t.Skip("building the binaries (-short)")
	}
	// Run the Dockerfile's build command natively, output into a temp dir.
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	var pkgs []string
	for _, b := range builds {
		if _, err := os.Stat(filepath.Join(root, b.pkg)); os.IsNotExist(err) {
			t.Logf("not built here: %s is not in this tree yet (it arrives with another area's merge)", b.pkg)
			continue
		}
		pkgs = append(pkgs, b.pkg)
	}
	// Natively, and cross-compiled for arm64 (most NAS boxes and the
	// Raspberry Pi) as the Dockerfile does on an amd64 builder.
	for _, tc := range []struct {
		arch, cc string
		machine  elf.Machine
	}{{runtime.GOARCH, "", nativeMachine()}, {"arm64", crossCC(), elf.EM_AARCH64}} {
		if tc.arch == runtime.GOARCH && tc.cc != "" {
			continue
		}
		t.Run("linux/"+tc.arch, func(t *testing.T) {
			if tc.arch != runtime.GOARCH {
				if _, err := exec.LookPath(tc.cc); err != nil {
					t.Fatalf("%s not found: the arm64 cross-compiler comes with make deps (Debian's gcc-aarch64-linux-gnu and libc6-dev-arm64-cross)", tc.cc)
				}
			}
			out := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
			defer cancel()
			args := append(append([]string{"build"}, builds[0].flags...), "-o", out+string(filepath.Separator))
			args = append(args, pkgs...)
			cmd := exec.CommandContext(ctx, "go", args...)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "CGO_ENABLED=1", "GOOS=linux", "GOARCH="+tc.arch)
			if tc.arch != runtime.GOARCH {
				cmd.Env = append(cmd.Env, "CC="+tc.cc)
			}
			if msg, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("GOARCH=%s go %s: %v\n%s", tc.arch, strings.Join(args, " "), err, msg)
			}
			for _, p := range pkgs {
				bin := filepath.Join(out, filepath.Base(p))
				f, err := elf.Open(bin)
				if err != nil {
					t.Errorf("%s was not built as an ELF executable: %v", bin, err)
					continue
				}
				if f.Machine != tc.machine {
					t.Errorf("%s is for %v, want %v", bin, f.Machine, tc.machine)
				}
				f.Close()
			}
		})
	}
}

// crossCC is the C compiler that builds cgo code for linux/arm64 here.
func crossCC() string {
	if runtime.GOARCH == "arm64" {
		return ""
	}
	return "aarch64-linux-gnu-gcc"
}

func nativeMachine() elf.Machine {
	switch runtime.GOARCH {
	case "arm64":
		return elf.EM_AARCH64
	default:
		return elf.EM_X86_64
	}
}
