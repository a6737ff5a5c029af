package embedder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/ownyou/home/pkg/embed"
	"github.com/ownyou/home/pkg/models"
	"github.com/ownyou/home/pkg/vec"
)

// TestModelSettingSelectsTheInt8Variant puts generated stand-ins for the two
// all-MiniLM-L6-v2 variants in a model cache, under a manifest naming their
// hashes (the real weights cannot be downloaded here), and checks that
// OWNYOU_EMBED_MODEL picks the file, that the int8 one loads and runs, and
// that its vectors stay close to the fp32 ones.
func TestModelSettingSelectsTheInt8Variant(t *testing.T) {
	base := testConfig(t)
	dir := t.TempDir()
	files := map[string][]byte{}
	for file, int8 := range map[string]bool{"model.onnx": false, "model_quint8_avx2.onnx": true} {
		cfg := embed.TinyGraph()
		cfg.Int8 = int8
		g, err := embed.GenerateGraph(cfg)
		if err != nil {
			t.Fatal(err)
		}
		files["all-MiniLM-L6-v2/"+file] = g
	}
	vocab, err := os.ReadFile(base.Vocab)
	if err != nil {
		t.Fatal(err)
	}
	files["all-MiniLM-L6-v2/vocab.txt"] = vocab
	m := models.Manifest{Name: "all-minilm-l6-v2", Version: "test", License: "Apache-2.0"}
	for p, b := range files {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), b, 0o644); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		m.Files = append(m.Files, models.File{Path: p, URL: "https://example.invalid/" + p, Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:])})
	}
	js, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{"all-minilm-l6-v2.json": {Data: js}}

	vecs := map[string][]float32{}
	for _, tc := range []struct{ setting, file, name string }{
		{"fp32", "model.onnx", "all-minilm-l6-v2-fp32"},
		{"int8", "model_quint8_avx2.onnx", "all-minilm-l6-v2-int8"},
	} {
		t.Run(tc.setting, func(t *testing.T) {
			cfg := base
			cfg.Model, cfg.ModelDir, cfg.Vocab = tc.setting, dir, ""
			model, vocab, lib, name, err := modelFiles(cfg, cfg.DataDir, fsys)
			if err != nil {
				t.Fatal(err)
			}
			if filepath.Base(model) != tc.file || name != tc.name || !strings.HasPrefix(vocab, dir) {
				t.Fatalf("model %s (%s), vocab %s: want %s, %s from the cache", model, name, vocab, tc.file, tc.name)
			}
			e, err := embed.New(embed.Config{ModelPath: model, ModelName: name, VocabPath: vocab, Session: embed.SessionConfig{Library: lib, IntraOpThreads: 2}})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			if !strings.HasPrefix(e.ModelID(), tc.name+"@") {
				t.Errorf("ModelID %q, want %s@…", e.ModelID(), tc.name)
			}
			v, err := e.Embed(context.Background(), []string{"your flight to Lisbon is confirmed"})
			if err != nil {
				t.Fatal(err)
			}
			vecs[tc.setting] = v[0]
		})
	}
	if c := vec.Cosine(vecs["fp32"], vecs["int8"]); c < 0.99 {
		t.Fatalf("cosine(int8, fp32) = %.4f, want > 0.99", c)
	}
}
