package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigReferenceIsCurrent(t *testing.T) {
	got, err := os.ReadFile(filepath.Join("..", "..", "docs", "config.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, Render()) {
		t.Fatal("docs/config.md is stale: run `go run ./tools/configdoc` and commit the result")
	}
}

func TestReferenceListsEveryVariableAndMarksSecrets(t *testing.T) {
	doc := string(Render())
	for _, want := range []string{"| `DATABASE_URL` |", "| `OWNYOU_HTTP_ADDR` |", "| `OWNYOU_BACKUP_DIR` |", "| `OWNYOU_NATS_LISTEN` |"} {
		if !strings.Contains(doc, want) {
			t.Errorf("reference lacks %s", want)
		}
	}
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, "| `DATABASE_URL`") && !strings.Contains(line, "(secret)") {
			t.Errorf("DATABASE_URL not marked secret: %s", line)
		}
	}
}
