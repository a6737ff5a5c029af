package models_test

import (
	"testing"

	manifests "github.com/ownyou/home/models"
	"github.com/ownyou/home/pkg/models"
)

// TestONNXRuntimeManifestCoversEveryNASPlatform checks that the pinned
// onnxruntime manifest extracts exactly one library for linux/amd64 and one
// for linux/arm64 (most NAS boxes and the Raspberry Pi), where ORTLibPath
// says the embedder finds it, and none for a platform without one.
func TestONNXRuntimeManifestCoversEveryNASPlatform(t *testing.T) {
	all, err := models.Load(manifests.Manifests)
	if err != nil {
		t.Fatal(err)
	}
	ort, err := models.Select(all, "onnxruntime")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ goos, goarch, member string }{
		{"linux", "amd64", "package/bin/napi-v6/linux/x64/libonnxruntime.so.1"},
		{"linux", "arm64", "package/bin/napi-v6/linux/arm64/libonnxruntime.so.1"},
		{"linux", "riscv64", ""},
	} {
		t.Run(tc.goos+"/"+tc.goarch, func(t *testing.T) {
			var got []models.Extract
			for _, f := range ort[0].Files {
				got = append(got, f.ExtractsFor(tc.goos, tc.goarch)...)
			}
			want := models.ORTLibPath(tc.goos, tc.goarch)
			if tc.member == "" {
				if len(got) != 0 || want != "" {
					t.Fatalf("extracts %+v, path %q: want none", got, want)
				}
				return
			}
			if len(got) != 1 || got[0].Member != tc.member || got[0].To != want || got[0].Size == 0 {
				t.Fatalf("extracts %+v, want one of %s to %s", got, tc.member, want)
			}
		})
	}
}
