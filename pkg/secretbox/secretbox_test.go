package secretbox

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestSealOpenRoundTrip(t *testing.T) {
	b, err := Load("", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := b.Seal([]byte("refresh-token"), []byte("source-1"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("refresh-token")) {
		t.Fatal("plaintext visible in sealed value")
	}
	pt, err := b.Open(sealed, []byte("source-1"))
	if err != nil || string(pt) != "refresh-token" {
		t.Fatalf("Open = %q, %v", pt, err)
	}
	s, _ := b.SealString("pw", "x")
	if got, err := b.OpenString(s, "x"); err != nil || got != "pw" {
		t.Fatalf("OpenString = %q, %v", got, err)
	}
}

func TestOpenRejects(t *testing.T) {
	b, _ := New(bytes.Repeat([]byte{1}, 32))
	other, _ := New(bytes.Repeat([]byte{2}, 32))
	sealed, _ := b.Seal([]byte("secret"), []byte("ad"))
	flipped := append([]byte(nil), sealed...)
	flipped[len(flipped)-1] ^= 1
	tests := []struct {
		name string
		box  *Box
		in   []byte
		ad   string
	}{
		{"wrong associated data fails", b, sealed, "other"},
		{"wrong key fails", other, sealed, "ad"},
		{"flipped bit fails", b, flipped, "ad"},
		{"truncated value fails", b, sealed[:10], "ad"},
		{"empty value fails", b, nil, "ad"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.box.Open(tc.in, []byte(tc.ad)); !errors.Is(err, ErrDecrypt) {
				t.Fatalf("err = %v, want ErrDecrypt", err)
			}
		})
	}
}

func TestKeySources(t *testing.T) {
	raw := bytes.Repeat([]byte{7}, 32)
	tests := []struct {
		name    string
		env     string
		wantErr error
	}{
		{"base64 env key is accepted", base64.StdEncoding.EncodeToString(raw), nil},
		{"hex env key is accepted", hex.EncodeToString(raw), nil},
		{"short env key is rejected", "c2hvcnQ=", ErrBadKey},
		{"garbage env key is rejected", "not a key!", ErrBadKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			b, err := Load(tc.env, dir)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			want, _ := New(raw)
			s, _ := want.Seal([]byte("x"), nil)
			if _, err := b.Open(s, nil); err != nil {
				t.Fatal("env key not used")
			}
			if _, err := os.Stat(filepath.Join(dir, KeyFileName)); err == nil {
				t.Fatal("key file written although env key was set")
			}
		})
	}
}

func TestGeneratedKeyFileIsPrivateAndStable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	var wg sync.WaitGroup
	boxes := make([]*Box, 8)
	for i := range boxes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := Load("", dir)
			if err != nil {
				t.Error(err)
			}
			boxes[i] = b
		}()
	}
	wg.Wait()
	st, err := os.Stat(filepath.Join(dir, KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", st.Mode().Perm())
	}
	sealed, _ := boxes[0].Seal([]byte("v"), nil)
	for i, b := range boxes {
		if _, err := b.Open(sealed, nil); err != nil {
			t.Fatalf("box %d has a different key", i)
		}
	}
	again, _ := Load("", dir)
	if _, err := again.Open(sealed, nil); err != nil {
		t.Fatal("reloaded key differs")
	}
	os.Chmod(filepath.Join(dir, KeyFileName), 0o644)
	if _, err := Load("", dir); err != nil {
		t.Fatal(err)
	}
	st, _ = os.Stat(filepath.Join(dir, KeyFileName))
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("loose key file not tightened: %v", st.Mode().Perm())
	}
}
