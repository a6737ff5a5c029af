package wordvec

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"
)

const tiny = `{"precision":8,"l2NormIndex":3,"wordIndex":4,"size":4,"dimensions":3,
"words":["the","cat","dog","car"],
"vectors":{"the":[1,1,1,1.7,0],"cat":[1,0,0,1,1],"dog":[0.9,0.1,0,1,2],"car":[0,0,1,1,3]},
"unkVector":[0,0,0,0,-1]}`

func dot(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

func tinyModel(t *testing.T, maxWords int) *Model {
	t.Helper()
	var buf bytes.Buffer
	if err := Convert(strings.NewReader(tiny), &buf, maxWords); err != nil {
		t.Fatal(err)
	}
	m, err := Load(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestConvertThenLoadKeepsUnitVectorsInFrequencyOrder(t *testing.T) {
	m := tinyModel(t, 0)
	if m.Dim() != 3 || m.Words() != 4 {
		t.Fatalf("dim %d words %d", m.Dim(), m.Words())
	}
	v, ok := m.Vector("Cat")
	if !ok || math.Abs(dot(v, v)-1) > 0.02 || v[0] < 0.99 {
		t.Fatalf("cat = %v", v)
	}
	if m.Weight("the") >= m.Weight("car") {
		t.Errorf("frequent word weighs %v ≥ rare word %v", m.Weight("the"), m.Weight("car"))
	}
	if m.Weight("zebra") != 0 {
		t.Error("unknown word has weight")
	}
}

func TestMaxWordsDropsRareWords(t *testing.T) {
	m := tinyModel(t, 2)
	if _, ok := m.Vector("dog"); ok {
		t.Error("dog kept beyond MaxWords=2")
	}
	if _, ok := m.Vector("cat"); !ok {
		t.Error("cat dropped")
	}
}

func TestEmbedIsSimilarForSimilarTexts(t *testing.T) {
	m := tinyModel(t, 0)
	e, err := m.Embed(context.Background(), []string{"the cat", "a dog!", "the car", "zzz qqq"})
	if err != nil {
		t.Fatal(err)
	}
	if dot(e[0], e[1]) <= dot(e[0], e[2]) {
		t.Errorf("cat~dog %.3f ≤ cat~car %.3f", dot(e[0], e[1]), dot(e[0], e[2]))
	}
	if dot(e[3], e[3]) != 0 {
		t.Error("text without known words is not the zero vector")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Embed(ctx, []string{"cat"}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Embed err = %v", err)
	}
}

func TestTokenizeKeepsCompoundsAndDropsPunctuation(t *testing.T) {
	got := Tokenize("Don’t miss: CROSS-COUNTRY skiing -- 50% off!")
	want := []string{"don't", "miss", "cross-country", "skiing", "50", "off"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Tokenize = %q, want %q", got, want)
	}
}

func TestLoadRejectsGarbage(t *testing.T) {
	for name, in := range map[string]string{"empty": "", "bad magic": "XXXXXXXX\x01\x00\x00\x00\x01\x00\x00\x00", "truncated": magic + "\x03\x00\x00\x00\x02\x00\x00\x00\x01\x00a"} {
		if _, err := Load(strings.NewReader(in)); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	if err := Convert(strings.NewReader(`{"vectors":{}}`), &bytes.Buffer{}, 0); !errors.Is(err, ErrFormat) {
		t.Errorf("vectors before words: err = %v", err)
	}
}

// realPath returns OWNYOU_WORDVEC_PATH; in CI a missing file fails the test.
func realPath(t *testing.T) string {
	t.Helper()
	p := os.Getenv("OWNYOU_WORDVEC_PATH")
	if p == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("OWNYOU_WORDVEC_PATH unset in CI: the wink vectors are required")
		}
		t.Skip("OWNYOU_WORDVEC_PATH unset: skipping the test on the real wink vectors")
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("OWNYOU_WORDVEC_PATH: %v", err)
	}
	return p
}

func TestRealVectorsRankRelatedSentencesHigher(t *testing.T) {
	src := realPath(t)
	dir := t.TempDir()
	m, err := Open(src, dir, Options{MaxWords: LiteWords})
	if err != nil {
		t.Fatal(err)
	}
	if m.Dim() != 100 || m.Words() != LiteWords {
		t.Fatalf("dim %d words %d", m.Dim(), m.Words())
	}
	e, _ := m.Embed(context.Background(), []string{
		"Your flight to Paris and hotel booking are confirmed",
		"Travel: cheap airfare and vacation deals in Europe",
		"Refinance your mortgage at a lower interest rate",
	})
	if dot(e[0], e[1]) <= dot(e[0], e[2]) {
		t.Errorf("travel~travel %.3f ≤ travel~mortgage %.3f", dot(e[0], e[1]), dot(e[0], e[2]))
	}
	// The second open reads the cache.
	m2, err := Open("/nonexistent", dir, Options{MaxWords: LiteWords})
	if err != nil || m2.Words() != LiteWords {
		t.Fatalf("reopen from cache: %v", err)
	}
}
