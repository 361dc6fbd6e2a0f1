package sandbox

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTarSnapshotRoundTrip(t *testing.T) {
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "criu"), 0o700)
	os.WriteFile(filepath.Join(src, "manifest.json"), []byte(`{"version":1}`), 0o600)
	os.WriteFile(filepath.Join(src, "criu", "dump.log"), []byte("log"), 0o600)
	var buf bytes.Buffer
	if err := TarSnapshot(src, &buf); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	if err := UntarSnapshot(bytes.NewReader(buf.Bytes()), dst, 1<<20); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"manifest.json": `{"version":1}`, "criu/dump.log": "log"} {
		if b, err := os.ReadFile(filepath.Join(dst, name)); err != nil || string(b) != want {
			t.Errorf("%s = %q, %v", name, b, err)
		}
	}
	if err := UntarSnapshot(bytes.NewReader(buf.Bytes()), t.TempDir(), 5); err == nil || !strings.Contains(err.Error(), "more than 5 bytes") {
		t.Errorf("size cap: %v", err)
	}
}

func tarOf(t testing.TB, hdrs ...*tar.Header) []byte {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, h := range hdrs {
		tw.WriteHeader(h)
		if h.Typeflag == tar.TypeReg {
			tw.Write(bytes.Repeat([]byte("x"), int(h.Size)))
		}
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

func TestUntarSnapshotRefusesEscapes(t *testing.T) {
	for _, h := range []*tar.Header{
		{Name: "../evil", Typeflag: tar.TypeReg, Size: 1, Mode: 0o600},
		{Name: "/etc/evil", Typeflag: tar.TypeReg, Size: 1, Mode: 0o600},
		{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"},
	} {
		dir := t.TempDir()
		if err := UntarSnapshot(bytes.NewReader(tarOf(t, h)), dir, 1<<20); err == nil {
			t.Errorf("%q accepted", h.Name)
		}
	}
}

func FuzzUntarSnapshot(f *testing.F) {
	f.Add(tarOf(f, &tar.Header{Name: "a/b", Typeflag: tar.TypeReg, Size: 3, Mode: 0o600}))
	f.Add([]byte("not a tar"))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		_ = UntarSnapshot(bytes.NewReader(b), dir, 1<<16)
		// Whatever happened, nothing may land outside dir.
		parent := filepath.Dir(dir)
		ents, _ := os.ReadDir(parent)
		for _, e := range ents {
			if e.Name() != filepath.Base(dir) && !strings.HasPrefix(e.Name(), "0") {
				t.Fatalf("entry %q outside the target dir", e.Name())
			}
		}
	})
}

func TestUntarSnapshotBoundsDecompression(t *testing.T) {
	// A directory entry claiming data would make tar skip it all.
	err := UntarSnapshot(bytes.NewReader(tarOf(t, &tar.Header{Name: "d/", Typeflag: tar.TypeDir, Size: 1 << 40, Mode: 0o700})), t.TempDir(), 1<<10)
	if err == nil || !strings.Contains(err.Error(), "carries") {
		t.Fatalf("dir with data: %v", err)
	}
	// 40,000 empty entries are 20 MiB of headers from a small archive:
	// the decompression budget (limit + 16 MiB) stops them.
	var hdrs []*tar.Header
	for range 40000 {
		hdrs = append(hdrs, &tar.Header{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o700})
	}
	bomb := tarOf(t, hdrs...)
	if len(bomb) > 1<<20 {
		t.Fatalf("bomb is %d bytes compressed", len(bomb))
	}
	err = UntarSnapshot(bytes.NewReader(bomb), t.TempDir(), 1<<10)
	if err == nil || !strings.Contains(err.Error(), "size limit") {
		t.Fatalf("bomb: %v", err)
	}
}
