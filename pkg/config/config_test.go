package config

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

type common struct {
	DataDir string `env:"OWNYOU_DATA_DIR" envDefault:".data" help:"state directory"`
}

type svcConfig struct {
	common
	Common  common
	Workers int           `env:"OWNYOU_TEST_WORKERS" envDefault:"4" help:"workers"`
	Wait    time.Duration `env:"OWNYOU_TEST_WAIT" envDefault:"2s" help:"wait"`
	DBURL   string        `env:"OWNYOU_TEST_DB" secret:"true" help:"database"`
	Key     string        `env:"OWNYOU_TEST_KEY" secret:"true" help:"key"`
}

// clearEnv unsets the variables the tests read, restoring them afterwards.
func clearEnv(t *testing.T) {
	for _, v := range Vars(svcConfig{}) {
		t.Setenv(v.Name, "")
		os.Unsetenv(v.Name)
	}
}

func TestLoad(t *testing.T) {
	clearEnv(t)
	t.Run("defaults apply when the environment is empty", func(t *testing.T) {
		var c svcConfig
		if err := Load(&c, "svc", nil, &bytes.Buffer{}); err != nil {
			t.Fatal(err)
		}
		if c.Workers != 4 || c.Wait != 2*time.Second || c.Common.DataDir != ".data" {
			t.Fatalf("defaults not applied: %+v", c)
		}
	})
	t.Run("environment overrides defaults", func(t *testing.T) {
		t.Setenv("OWNYOU_TEST_WORKERS", "9")
		var c svcConfig
		if err := Load(&c, "svc", nil, &bytes.Buffer{}); err != nil {
			t.Fatal(err)
		}
		if c.Workers != 9 {
			t.Fatalf("Workers = %d, want 9", c.Workers)
		}
	})
	t.Run("a malformed value is an error naming the variable", func(t *testing.T) {
		t.Setenv("OWNYOU_TEST_WAIT", "soon")
		var c svcConfig
		err := Load(&c, "svc", nil, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), "OWNYOU_TEST_WAIT") {
			t.Fatalf("err = %v, want one naming OWNYOU_TEST_WAIT", err)
		}
	})
	t.Run("help lists every variable and returns ErrHelp", func(t *testing.T) {
		var out bytes.Buffer
		var c svcConfig
		err := Load(&c, "svc", []string{"--help"}, &out)
		if !errors.Is(err, ErrHelp) {
			t.Fatalf("err = %v, want ErrHelp", err)
		}
		for _, name := range []string{"OWNYOU_DATA_DIR", "OWNYOU_TEST_WORKERS", "OWNYOU_TEST_WAIT", "OWNYOU_TEST_DB", "OWNYOU_TEST_KEY"} {
			if !strings.Contains(out.String(), name) {
				t.Errorf("help does not list %s:\n%s", name, out.String())
			}
		}
	})
	t.Run("an unknown argument is an error", func(t *testing.T) {
		var c svcConfig
		if err := Load(&c, "svc", []string{"--port=1"}, &bytes.Buffer{}); err == nil {
			t.Fatal("want an error")
		}
	})
}

func TestLogAttrsMasksSecrets(t *testing.T) {
	c := svcConfig{DBURL: "postgres://user:hunter2@db:5432/ownyou", Key: "sk-verysecret"}
	line := ""
	for _, a := range LogAttrs(c) {
		line += a.(interface{ String() string }).String() + " "
	}
	for _, leak := range []string{"hunter2", "sk-verysecret"} {
		if strings.Contains(line, leak) {
			t.Fatalf("secret %q printed: %s", leak, line)
		}
	}
	if !strings.Contains(line, "db:5432/ownyou") {
		t.Fatalf("masked URL lost its host: %s", line)
	}
}
