package datasets_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/sandgate/sandgate/datasets"
	"github.com/sandgate/sandgate/datasets/arrowcheck"
)

func equalImageRows(a, b []datasets.ImageRow) bool {
	return reflect.DeepEqual(a, b)
}

func decodeGray(t *testing.T, b []byte) *image.Gray {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("png column does not decode: %v", err)
	}
	g, ok := img.(*image.Gray)
	if !ok {
		t.Fatalf("png decodes as %T, want 8-bit grayscale", img)
	}
	return g
}

func TestImagesDeterministicAndShardable(t *testing.T) {
	opt := datasets.ImageOptions{}
	a := slices.Collect(datasets.Images(99, 60, opt))
	b := slices.Collect(datasets.Images(99, 60, opt))
	if !equalImageRows(a, b) {
		t.Fatal("same seed produced different rows")
	}
	if got := slices.Collect(datasets.ImagesRange(99, 20, 10, opt)); !equalImageRows(got, a[20:30]) {
		t.Fatal("ImagesRange(20, 10) differs from rows 20..29")
	}
	if got := datasets.ImageAt(99, 42, opt); !equalImageRows([]datasets.ImageRow{got}, a[42:43]) {
		t.Fatal("ImageAt differs from the sequence")
	}
	c := slices.Collect(datasets.Images(100, 60, opt))
	for i := range a {
		if bytes.Equal(a[i].PNG, c[i].PNG) {
			t.Fatalf("row %d has the same PNG for seeds 99 and 100", i)
		}
	}
	pa := slices.Collect(datasets.Perturbations(99, 5, opt))
	pb := slices.Collect(datasets.PerturbationsRange(99, 3, 2, opt))
	if len(pa) != 5*opt.Variants() || opt.Variants() != 7 {
		t.Fatalf("%d perturbation rows for 5 bases, Variants()=%d; want 7 each", len(pa), opt.Variants())
	}
	for j, r := range pb {
		q := pa[3*7+j]
		if r.ID != q.ID || !bytes.Equal(r.PNG, q.PNG) {
			t.Fatalf("PerturbationsRange row %d differs from the full sequence", j)
		}
	}
}

// TestImagePNGGolden pins the bytes of one image. If it fails after a Go
// upgrade, image/png changed its output: bump ImagesGeneratorVersion
// (old seeds no longer reproduce old hashes) and update the hash.
func TestImagePNGGolden(t *testing.T) {
	r := datasets.ImageAt(1, 0, datasets.ImageOptions{})
	again := datasets.ImageAt(1, 0, datasets.ImageOptions{})
	if !bytes.Equal(r.PNG, again.PNG) {
		t.Fatal("encoding the same image twice gave different PNG bytes")
	}
	// Re-encoding the decoded pixels with a fresh encoder gives the same
	// bytes: the reused encoder state leaks nothing between rows.
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.NoCompression}
	if err := enc.Encode(&buf, decodeGray(t, r.PNG)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), r.PNG) {
		t.Fatal("a fresh png.Encoder produced different bytes for the same pixels")
	}
	sum := sha256.Sum256(r.PNG)
	const golden = "f4274a0ad94af621cdefa570fa93139ac0e58ebac7911649e54f84ae1b586706"
	if got := hex.EncodeToString(sum[:]); got != golden {
		t.Fatalf("sha256 of ImageAt(1, 0).PNG = %s, want %s", got, golden)
	}
}

func TestImageLabelsFollowParameters(t *testing.T) {
	const n = 1500
	opt := datasets.ImageOptions{Width: 80, Height: 64}
	counts := map[string]int{}
	brighter := 0
	lesions := 0
	for r := range datasets.Images(5, n, opt) {
		want := datasets.ImageLabelFor(r.LesionRadius, r.LesionIrregularity, 80, 64)
		if r.Label != want || datasets.ImageLabels()[r.LabelID] != r.Label {
			t.Fatalf("row %d: label %q (id %d), rule says %q", r.Index, r.Label, r.LabelID, want)
		}
		counts[r.Label]++
		side := 64.0
		switch r.Label {
		case datasets.LabelHealthy:
			if r.LesionRadius != 0 || r.LesionContrast != 0 || r.LesionIrregularity != 0 || r.LesionX != 0 || r.LesionY != 0 {
				t.Fatalf("healthy row %d has lesion parameters %+v", r.Index, r)
			}
		case datasets.LabelCritical:
			if r.LesionIrregularity < datasets.CriticalIrregularity && r.LesionRadius < datasets.CriticalRadiusFrac*side {
				t.Fatalf("critical row %d is small and regular", r.Index)
			}
		case datasets.LabelBenign:
			if r.LesionIrregularity >= datasets.CriticalIrregularity || r.LesionRadius >= datasets.CriticalRadiusFrac*side {
				t.Fatalf("benign row %d is large or irregular", r.Index)
			}
		}
		g := decodeGray(t, r.PNG)
		if g.Rect.Dx() != 80 || g.Rect.Dy() != 64 || r.Width != 80 || r.Height != 64 {
			t.Fatalf("row %d: image %v, columns %dx%d", r.Index, g.Rect, r.Width, r.Height)
		}
		if r.LesionRadius > 0 {
			// The lesion is drawn where the row says: its core is brighter
			// than a ring just outside its farthest border.
			lesions++
			reach := r.LesionRadius * (1 + r.LesionIrregularity)
			inner := meanIn(g, r.LesionX, r.LesionY, 0, 0.4*r.LesionRadius*(1-r.LesionIrregularity))
			ring := meanIn(g, r.LesionX, r.LesionY, reach+2, reach+5)
			if inner > ring+0.3*r.LesionContrast*255 {
				brighter++
			}
		}
	}
	for _, l := range datasets.ImageLabels() {
		if share := float64(counts[l]) / n; share < 0.2 || share > 0.45 {
			t.Errorf("label %s is %.0f%% of rows; the generator should keep labels roughly balanced (%v)", l, 100*share, counts)
		}
	}
	if float64(brighter) < 0.97*float64(lesions) {
		t.Errorf("only %d of %d lesions are visibly brighter than their surroundings", brighter, lesions)
	}
}

// meanIn averages pixels whose centre lies at distance [r0, r1] from (cx, cy).
func meanIn(g *image.Gray, cx, cy, r0, r1 float64) float64 {
	var sum, n float64
	for y := g.Rect.Min.Y; y < g.Rect.Max.Y; y++ {
		for x := g.Rect.Min.X; x < g.Rect.Max.X; x++ {
			d := math.Hypot(float64(x)+0.5-cx, float64(y)+0.5-cy)
			if d >= r0 && d <= r1 {
				sum += float64(g.GrayAt(x, y).Y)
				n++
			}
		}
	}
	if n == 0 {
		return 0
	}
	return sum / n
}

func TestPerturbationBounds(t *testing.T) {
	const nBase = 60
	opt := datasets.ImageOptions{Epsilons: []float64{1.0 / 255, 2.0 / 255, 8.0 / 255, 16.0 / 255}, PixelCounts: []int{1, 3, 5, 40}}
	base := slices.Collect(datasets.Images(3, nBase, opt))
	per := slices.Collect(datasets.Perturbations(3, nBase, opt))
	if len(per) != nBase*opt.Variants() {
		t.Fatalf("%d rows, want %d", len(per), nBase*opt.Variants())
	}
	for _, p := range per {
		b := base[p.BaseIndex]
		if p.BaseID != b.ID || p.Label != b.Label || p.LabelID != b.LabelID || p.Width != b.Width || p.Height != b.Height {
			t.Fatalf("%s does not match its base %s", p.ID, b.ID)
		}
		g0, g1 := decodeGray(t, b.PNG), decodeGray(t, p.PNG)
		maxDiff, changed := 0, 0
		for i := range g0.Pix {
			d := int(g0.Pix[i]) - int(g1.Pix[i])
			if d != 0 {
				changed++
				maxDiff = max(maxDiff, d, -d)
			}
		}
		if int(p.MaxAbsDiff) != maxDiff || int(p.ChangedPixels) != changed {
			t.Fatalf("%s: columns say L∞ %d / %d changed, pixels say %d / %d", p.ID, p.MaxAbsDiff, p.ChangedPixels, maxDiff, changed)
		}
		switch p.Perturbation {
		case "noise":
			if p.K != 0 || float64(maxDiff) > p.Epsilon*255+1e-9 {
				t.Fatalf("%s: ε=%g·255=%g but max abs diff %d (k=%d)", p.ID, p.Epsilon, p.Epsilon*255, maxDiff, p.K)
			}
			if changed < len(g0.Pix)/2 {
				t.Fatalf("%s: noise changed only %d of %d pixels", p.ID, changed, len(g0.Pix))
			}
		case "pixels":
			if p.Epsilon != 0 || changed != int(p.K) {
				t.Fatalf("%s: k=%d but %d pixels changed", p.ID, p.K, changed)
			}
		default:
			t.Fatalf("%s: perturbation %q", p.ID, p.Perturbation)
		}
	}
	// The noise draws differ from base to base (not one pattern reused).
	if bytes.Equal(per[0].PNG, per[opt.Variants()].PNG) {
		t.Fatal("first perturbations of two bases are identical")
	}
}

func TestImageOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		opt  datasets.ImageOptions
		want string
	}{
		{datasets.ImageOptions{Width: 8}, "Width 8"},
		{datasets.ImageOptions{Height: 5000}, "Height 5000"},
		{datasets.ImageOptions{Epsilons: []float64{0.5 / 255}}, "Epsilons"},
		{datasets.ImageOptions{Epsilons: []float64{0.01}}, "whole number of grey levels"},
		{datasets.ImageOptions{Epsilons: []float64{math.NaN()}}, "Epsilons"},
		{datasets.ImageOptions{PixelCounts: []int{0}}, "PixelCounts"},
		{datasets.ImageOptions{Width: 16, Height: 16, PixelCounts: []int{257}}, "1..256"},
	} {
		err := tc.opt.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want an error mentioning %q", tc.opt, err, tc.want)
		}
	}
	if err := (datasets.ImageOptions{Epsilons: []float64{}, PixelCounts: []int{}}).Validate(); err != nil {
		t.Errorf("no perturbations rejected: %v", err)
	}
	if v := (datasets.ImageOptions{Epsilons: []float64{}, PixelCounts: []int{}}).Variants(); v != 0 {
		t.Errorf("Variants() = %d with no perturbations", v)
	}
	p := datasets.ImageOptions{}.Params()
	if p["epsilons"] != "2/255,4/255,8/255,16/255" || p["pixel_counts"] != "1,3,5" || p["width"] != "64" {
		t.Errorf("Params() = %v", p)
	}
	if _, err := datasets.WriteImages(context.Background(), filepath.Join(t.TempDir(), "x.parquet"), 1, 0, 1, datasets.ImageOptions{Width: 3}, datasets.ImageWriteOptions{}); err == nil {
		t.Error("WriteImages accepted invalid options")
	}
}

func imageFileSHA(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestWriteImagesFiles is the determinism acceptance test for images: the
// same seed gives the same sha256 per file whatever the worker count,
// another seed another file; and Arrow reads every row back.
func TestWriteImagesFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	opt := datasets.ImageOptions{Width: 48, Height: 40}
	const n = 300
	write := func(name string, seed uint64, workers int) (img, per string, st, sp datasets.FileStats) {
		t.Helper()
		wo := datasets.ImageWriteOptions{Workers: workers, RowGroupRows: 128}
		img = filepath.Join(dir, name, "images.parquet")
		per = filepath.Join(dir, name, "perturbations.parquet")
		var err error
		if st, err = datasets.WriteImages(ctx, img, seed, 0, n, opt, wo); err != nil {
			t.Fatal(err)
		}
		if sp, err = datasets.WritePerturbations(ctx, per, seed, 0, n, opt, wo); err != nil {
			t.Fatal(err)
		}
		if imageFileSHA(t, img) != st.SHA256 || imageFileSHA(t, per) != sp.SHA256 {
			t.Fatal("FileStats.SHA256 is not the file's hash")
		}
		return
	}
	img1, per1, st1, sp1 := write("a", 11, 1)
	_, _, st2, sp2 := write("b", 11, 3)
	_, _, st3, sp3 := write("c", 12, 2)
	if st1.SHA256 != st2.SHA256 || sp1.SHA256 != sp2.SHA256 {
		t.Fatalf("same seed, different files: %s/%s vs %s/%s", st1.SHA256, sp1.SHA256, st2.SHA256, sp2.SHA256)
	}
	if st1.SHA256 == st3.SHA256 || sp1.SHA256 == sp3.SHA256 {
		t.Fatal("another seed produced the same file")
	}
	if st1.Rows != n || sp1.Rows != n*7 {
		t.Fatalf("rows %d / %d", st1.Rows, sp1.Rows)
	}
	// The parallel writer yields exactly what the sequential generator does.
	got, err := datasets.ReadRows[datasets.ImageRow](img1, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !equalImageRows(got, slices.Collect(datasets.Images(11, n, opt))) {
		t.Fatal("file rows differ from Images(11, ...)")
	}

	for _, path := range []string{img1, per1} {
		rows, err := arrowcheck.CountRowsArrow(path)
		if err != nil {
			t.Fatal(err)
		}
		info, err := arrowcheck.Inspect(path)
		if err != nil {
			t.Fatal(err)
		}
		if info.Compression != "ZSTD" || slices.Max(info.RowGroupRows) > 128 || info.KeyValue["sandgate.generator"] != datasets.ImagesGenerator {
			t.Fatalf("%s: %+v", path, info)
		}
		pngs, err := arrowcheck.ReadColumnStrings(path, "png")
		if err != nil {
			t.Fatal(err)
		}
		ws, err := arrowcheck.ReadColumnInt64s(path, "width")
		if err != nil {
			t.Fatal(err)
		}
		hs, err := arrowcheck.ReadColumnInt64s(path, "height")
		if err != nil {
			t.Fatal(err)
		}
		labels, err := arrowcheck.ReadColumnStrings(path, "label")
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(pngs)) != rows || len(ws) != len(pngs) || len(hs) != len(pngs) || len(labels) != len(pngs) {
			t.Fatalf("%s: %d rows but %d png, %d width, %d height, %d label values", path, rows, len(pngs), len(ws), len(hs), len(labels))
		}
		for i, b := range pngs {
			g := decodeGray(t, []byte(b))
			if int64(g.Rect.Dx()) != ws[i] || int64(g.Rect.Dy()) != hs[i] || ws[i] != 48 || hs[i] != 40 {
				t.Fatalf("%s row %d: PNG %v, columns %dx%d", path, i, g.Rect, ws[i], hs[i])
			}
			if !slices.Contains(datasets.ImageLabels(), labels[i]) {
				t.Fatalf("%s row %d: label %q", path, i, labels[i])
			}
		}
	}
	if _, err := os.Stat(img1 + ".incomplete"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary file left behind: %v", err)
	}
}

func TestWriteImagesCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	path := filepath.Join(t.TempDir(), "images.parquet")
	_, err := datasets.WriteImages(ctx, path, 1, 0, 500, datasets.ImageOptions{}, datasets.ImageWriteOptions{Workers: 2})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 0 {
		t.Fatalf("cancelled write left %v", entries)
	}
}
