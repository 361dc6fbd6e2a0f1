package datasets

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"iter"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
)

// Image generator identity, recorded in manifests. Bump the version on any
// change that alters generated pixels, PNG bytes or row values: the seed
// only reproduces a dataset together with the version that produced it.
const (
	ImagesGenerator        = "sandgate/datasets.Images"
	ImagesGeneratorVersion = "1.0.0"
)

// Labels of synthetic scans, with their label_id. A classifier under test
// predicts label_id; the ids are stable because notebooks group by them.
const (
	LabelHealthy  = "healthy"  // label_id 0: no lesion
	LabelBenign   = "benign"   // label_id 1: small, regular lesion
	LabelCritical = "critical" // label_id 2: large or irregular lesion
)

// ImageLabels lists the labels in label_id order.
func ImageLabels() []string { return []string{LabelHealthy, LabelBenign, LabelCritical} }

// The label rule. It reads only the lesion parameters recorded in the row,
// so anyone can re-derive a label from the metadata (and a test does):
// no lesion is healthy; a lesion whose radius is at least
// CriticalRadiusFrac of the image's shorter side, or whose border
// irregularity is at least CriticalIrregularity, is critical (the
// "asymmetry, border, diameter" intuition of clinical triage); any other
// lesion is benign.
const (
	CriticalRadiusFrac   = 0.22
	CriticalIrregularity = 0.40
)

// Ranges the generator draws lesion parameters from. They are chosen so the
// three labels come out roughly balanced (~30/34/36%).
const (
	lesionRate         = 0.7
	minRadiusFrac      = 0.06
	maxRadiusFrac      = 0.28
	maxIrregularity    = 0.6
	minContrast        = 0.10
	maxContrast        = 0.50
	tissueSemiAxisX    = 0.46 // field of view ellipse, as a fraction of width
	tissueSemiAxisY    = 0.44
	boundaryHarmonics  = 6 // sinusoids 2..7 around the border
	boundaryTableSize  = 256
	lesionEdgePixels   = 1.5 // width of the soft lesion border
	noiseOctaves       = 4
	minImageSide       = 16
	maxImageSide       = 1024
	perturbationsNoise = "noise"
	perturbationsPix   = "pixels"
)

// ImageLabelFor applies the label rule to a lesion's radius (pixels),
// irregularity and the image size.
func ImageLabelFor(radius, irregularity float64, width, height int) string {
	if radius <= 0 {
		return LabelHealthy
	}
	if irregularity >= CriticalIrregularity || radius >= CriticalRadiusFrac*float64(min(width, height)) {
		return LabelCritical
	}
	return LabelBenign
}

func labelID(label string) int32 {
	return int32(slices.Index(ImageLabels(), label))
}

// ImageRow is one synthetic scan. Its Parquet schema is documented in the
// package doc; notebooks depend on the column names.
type ImageRow struct {
	ID      string `parquet:"id"`
	Index   int64  `parquet:"index"`
	Label   string `parquet:"label,dict"`
	LabelID int32  `parquet:"label_id"`
	Width   int32  `parquet:"width"`
	Height  int32  `parquet:"height"`
	// PNG is an 8-bit grayscale PNG of Width×Height pixels.
	PNG []byte `parquet:"png"`
	// Lesion parameters in pixels (x, y: centre; radius: mean radius) and
	// unitless (irregularity: relative border deviation in [0, 0.6);
	// contrast: intensity added inside the lesion, fraction of full scale).
	// All zero for healthy scans.
	LesionX            float64 `parquet:"lesion_x"`
	LesionY            float64 `parquet:"lesion_y"`
	LesionRadius       float64 `parquet:"lesion_radius"`
	LesionIrregularity float64 `parquet:"lesion_irregularity"`
	LesionContrast     float64 `parquet:"lesion_contrast"`
	Seed               int64   `parquet:"seed"`
}

// PerturbationRow is one perturbed copy of a base scan, linked to it by
// base_id. The label is the base image's: a robust classifier keeps it.
type PerturbationRow struct {
	ID        string `parquet:"id"`
	BaseID    string `parquet:"base_id"`
	BaseIndex int64  `parquet:"base_index"`
	// Variant numbers the perturbations of one base image (0-based), in
	// the order: noise at each epsilon, then pixels at each k.
	Variant      int32   `parquet:"variant"`
	Perturbation string  `parquet:"perturbation,dict"` // "noise" | "pixels"
	Epsilon      float64 `parquet:"epsilon"`           // noise: L∞ budget as a fraction of full scale (2/255, ...); 0 for pixels
	K            int32   `parquet:"k"`                 // pixels: number of pixels changed; 0 for noise
	// Measured distance to the base image, in grey levels (0..255) and
	// changed pixels, so users need not decode both PNGs to check a budget.
	MaxAbsDiff    int32  `parquet:"max_abs_diff"`
	ChangedPixels int32  `parquet:"changed_pixels"`
	Label         string `parquet:"label,dict"`
	LabelID       int32  `parquet:"label_id"`
	Width         int32  `parquet:"width"`
	Height        int32  `parquet:"height"`
	PNG           []byte `parquet:"png"`
	Seed          int64  `parquet:"seed"`
}

// Defaults for zero ImageOptions fields.
const (
	DefaultImageSide = 64
)

// DefaultEpsilons and DefaultPixelCounts are the perturbation sets zero
// options mean. Functions, not variables, so no caller can mutate them.
func DefaultEpsilons() []float64 { return []float64{2.0 / 255, 4.0 / 255, 8.0 / 255, 16.0 / 255} }

// DefaultPixelCounts: the few-pixel changes (k) made to each base image.
func DefaultPixelCounts() []int { return []int{1, 3, 5} }

// ImageOptions selects what Images and Perturbations generate. The zero
// value means 64×64 scans, noise at ε = 2, 4, 8, 16 /255 and k = 1, 3, 5
// changed pixels.
type ImageOptions struct {
	Width, Height int // 0 means DefaultImageSide
	// Epsilons are the L∞ budgets of the uniform-noise perturbations, as
	// fractions of full scale; each must be a whole number of grey levels
	// ≥ 1/255, because pixels are 8-bit. Nil means DefaultEpsilons; an
	// empty non-nil slice means no noise variants.
	Epsilons []float64
	// PixelCounts are the k of the k-pixel perturbations. Nil means
	// DefaultPixelCounts; an empty non-nil slice means none.
	PixelCounts []int
}

// Validate names the first bad field and how to fix it.
func (o ImageOptions) Validate() error {
	for _, s := range []struct {
		name string
		v    int
	}{{"Width", o.Width}, {"Height", o.Height}} {
		if s.v != 0 && (s.v < minImageSide || s.v > maxImageSide) {
			return fmt.Errorf("datasets: ImageOptions.%s %d out of range %d..%d (0 means %d)", s.name, s.v, minImageSide, maxImageSide, DefaultImageSide)
		}
	}
	n := o.normalize()
	for _, e := range n.epsilons {
		levels := e * 255
		if math.IsNaN(e) || levels < 1-1e-9 || levels > 255+1e-9 || math.Abs(levels-math.Round(levels)) > 1e-6 {
			return fmt.Errorf("datasets: ImageOptions.Epsilons: %g is not a whole number of grey levels in 1/255..1 (use e.g. 4.0/255)", e)
		}
	}
	pixels := n.width * n.height
	for _, k := range n.pixelCounts {
		if k < 1 || k > pixels {
			return fmt.Errorf("datasets: ImageOptions.PixelCounts: %d out of range 1..%d (width×height)", k, pixels)
		}
	}
	return nil
}

// Params renders the options for Manifest.Params, so a manifest records
// everything needed to regenerate the data.
func (o ImageOptions) Params() map[string]string {
	n := o.normalize()
	eps := make([]string, len(n.epsilons))
	for i, e := range n.epsilons {
		eps[i] = strconv.Itoa(int(math.Round(e*255))) + "/255"
	}
	ks := make([]string, len(n.pixelCounts))
	for i, k := range n.pixelCounts {
		ks[i] = strconv.Itoa(k)
	}
	return map[string]string{
		"width":        strconv.Itoa(n.width),
		"height":       strconv.Itoa(n.height),
		"epsilons":     strings.Join(eps, ","),
		"pixel_counts": strings.Join(ks, ","),
	}
}

// Variants is how many perturbation rows each base image gets.
func (o ImageOptions) Variants() int {
	n := o.normalize()
	return len(n.epsilons) + len(n.pixelCounts)
}

type imageNorm struct {
	width, height int
	epsilons      []float64
	levels        []int // epsilons in grey levels
	pixelCounts   []int
}

func (o ImageOptions) normalize() imageNorm {
	n := imageNorm{width: o.Width, height: o.Height, epsilons: o.Epsilons, pixelCounts: o.PixelCounts}
	if n.width == 0 {
		n.width = DefaultImageSide
	}
	if n.height == 0 {
		n.height = DefaultImageSide
	}
	if n.epsilons == nil {
		n.epsilons = DefaultEpsilons()
	}
	if n.pixelCounts == nil {
		n.pixelCounts = DefaultPixelCounts()
	}
	n.levels = make([]int, len(n.epsilons))
	for i, e := range n.epsilons {
		// Round, then clamp: invalid options (rejected by Validate) still
		// generate something bounded instead of misbehaving.
		n.levels[i] = min(max(int(math.Round(e*255)), 0), 255)
	}
	return n
}

// ImageRowGroupRows is a row-group size for image rows of the given
// options: about 16 MiB of pixels per row group. PNG rows are thousands of
// bytes, and parquet-go buffers a whole row group before writing it, so the
// row-count default meant for prompts would buffer hundreds of MiB.
func ImageRowGroupRows(opt ImageOptions) int64 {
	n := opt.normalize()
	const target = 16 << 20
	return int64(min(max(target/(n.width*n.height+256), 64), DefaultRowGroupRows))
}

// Images yields n synthetic scans for seed. Row i depends only on
// (seed, i, opt), so ImagesRange regenerates any shard and the same seed
// gives bit-identical rows. Call opt.Validate first: invalid options are
// clamped, not reported.
func Images(seed uint64, n int, opt ImageOptions) iter.Seq[ImageRow] {
	return ImagesRange(seed, 0, int64(n), opt)
}

// ImagesRange yields rows offset .. offset+n-1 of the sequence Images(seed, ...)
// would produce, on the calling goroutine. WriteImages does the same work
// on several cores.
func ImagesRange(seed uint64, offset, n int64, opt ImageOptions) iter.Seq[ImageRow] {
	norm := opt.normalize()
	return func(yield func(ImageRow) bool) {
		s := newImageScratch(norm)
		for i := offset; i < offset+n; i++ {
			if !yield(s.image(seed, i)) {
				return
			}
		}
	}
}

// ImageAt returns row i alone.
func ImageAt(seed uint64, i int64, opt ImageOptions) ImageRow {
	return newImageScratch(opt.normalize()).image(seed, i)
}

// Perturbations yields opt.Variants() rows for each of the base images
// 0..nBase-1 of Images(seed, ...), base after base.
func Perturbations(seed uint64, nBase int, opt ImageOptions) iter.Seq[PerturbationRow] {
	return PerturbationsRange(seed, 0, int64(nBase), opt)
}

// PerturbationsRange yields the perturbations of base images
// offset .. offset+nBase-1.
func PerturbationsRange(seed uint64, offset, nBase int64, opt ImageOptions) iter.Seq[PerturbationRow] {
	norm := opt.normalize()
	return func(yield func(PerturbationRow) bool) {
		s := newImageScratch(norm)
		for i := offset; i < offset+nBase; i++ {
			for _, r := range s.perturbations(seed, i) {
				if !yield(r) {
					return
				}
			}
		}
	}
}

// ImageID is the id of base image i of seed; PerturbationRow.BaseID holds it.
func ImageID(seed uint64, i int64) string { return fmt.Sprintf("img-%016x-%09d", seed, i) }

// lesion is what the generator draws for one scan.
type lesion struct {
	present                       bool
	x, y, radius, irreg, contrast float64
	amp, phase                    [boundaryHarmonics]float64
}

// imageScratch holds one goroutine's reusable buffers: rendering a 64×64
// scan allocates nothing but its PNG bytes.
type imageScratch struct {
	o        imageNorm
	field    []float64 // intensity in [0,1] before quantisation
	lattice  []float64
	grids    []noiseGrid
	fov      []float64
	boundary [boundaryTableSize]float64
	img      *image.Gray // the base image
	work     *image.Gray // a perturbed copy
	perm     []int32     // k-pixel sampling
	buf      bytes.Buffer
	enc      png.Encoder
}

func newImageScratch(o imageNorm) *imageScratch {
	s := &imageScratch{
		o:     o,
		field: make([]float64, o.width*o.height),
		grids: newNoiseGrids(o.width, o.height),
		fov:   newFieldOfView(o.width, o.height),
		img:   image.NewGray(image.Rect(0, 0, o.width, o.height)),
		work:  image.NewGray(image.Rect(0, 0, o.width, o.height)),
	}
	// Stored (uncompressed) deflate blocks: the Parquet file's zstd
	// compresses the pixels anyway (3.2 KB per 64×64 row on disk, against
	// 2.2 KB with PNG's own deflate on top), encoding is ~10× cheaper than
	// BestSpeed, and the bytes depend on no compressor heuristics, so they
	// survive Go upgrades. A pool of one lets the encoder reuse its zlib
	// writer instead of allocating one per image.
	s.enc = png.Encoder{CompressionLevel: png.NoCompression, BufferPool: &onePool{}}
	return s
}

type onePool struct{ b *png.EncoderBuffer }

func (p *onePool) Get() *png.EncoderBuffer  { return p.b }
func (p *onePool) Put(b *png.EncoderBuffer) { p.b = b }

// Independent PCG streams per purpose: changing how perturbations draw
// must never change the base images.
const (
	streamScene   = 0x5ca9e11e5ca9e11e
	streamPerturb = 0x9e7b0b5e9e7b0b5e
)

func imageRand(seed uint64, i int64, stream uint64, variant int) *rand.Rand {
	return rand.New(rand.NewPCG(mix64(seed^stream), mix64(uint64(i)+mix64(seed+uint64(variant)*0x632be59bd9b4e019))))
}

// image renders scan i and returns its row.
func (s *imageScratch) image(seed uint64, i int64) ImageRow {
	l := s.render(seed, i)
	return ImageRow{
		ID:                 ImageID(seed, i),
		Index:              i,
		Label:              l.label(s.o),
		LabelID:            labelID(l.label(s.o)),
		Width:              int32(s.o.width),
		Height:             int32(s.o.height),
		PNG:                s.encode(s.img),
		LesionX:            l.x,
		LesionY:            l.y,
		LesionRadius:       l.radius,
		LesionIrregularity: l.irreg,
		LesionContrast:     l.contrast,
		Seed:               int64(seed), // bit-for-bit, as in PromptRow
	}
}

func (l lesion) label(o imageNorm) string {
	return ImageLabelFor(l.radius, l.irreg, o.width, o.height)
}

// render draws scan i into s.img.
func (s *imageScratch) render(seed uint64, i int64) lesion {
	r := imageRand(seed, i, streamScene, 0)
	w, h := s.o.width, s.o.height
	side := float64(min(w, h))

	// Draw every parameter before rendering, in a fixed order, so the
	// label is a function of recorded numbers only.
	var l lesion
	if r.Float64() < lesionRate {
		l.present = true
		l.radius = side * lerp(minRadiusFrac, maxRadiusFrac, r.Float64())
		l.irreg = maxIrregularity * r.Float64()
		l.contrast = lerp(minContrast, maxContrast, r.Float64())
		var sum float64 // amplitudes and phases in one loop: a fixed draw order
		for k := range l.amp {
			l.amp[k] = 0.2 + r.Float64()
			l.phase[k] = 2 * math.Pi * r.Float64()
			sum += l.amp[k]
		}
		// Normalised so the border deviates at most irreg·radius from the
		// mean radius: the lesion never degenerates or leaves the tissue.
		for k := range l.amp {
			l.amp[k] /= sum
		}
		reach := l.radius * (1 + l.irreg)
		ax, ay := tissueSemiAxisX*float64(w), tissueSemiAxisY*float64(h)
		room := max(min(ax, ay)-reach-1, 0)
		ang := 2 * math.Pi * r.Float64()
		d := room * math.Sqrt(r.Float64())            // uniform over the disc
		l.x = float64(w)/2 + float64(d*math.Cos(ang)) // unfused, see lerp
		l.y = float64(h)/2 + float64(d*math.Sin(ang))
	}
	tissue := lerp(0.30, 0.45, r.Float64()) // mean grey of the tissue varies per scan

	s.texture(r)
	s.tissueMask(tissue)
	if l.present {
		s.drawLesion(&l)
	}
	pix := s.img.Pix
	for p, v := range s.field {
		pix[p] = uint8(min(max(float64(v*255)+0.5, 0), 255))
	}
	return l
}

// texture fills s.field with fractal value noise in [0,1]: octaves of
// bilinearly interpolated random lattices, the look of tissue on a scan.
// Interpolation positions depend only on the image size and come from
// s.grids; only the lattice values are drawn per scan.
func (s *imageScratch) texture(r *rand.Rand) {
	w := s.o.width
	clear(s.field)
	amp, total := 1.0, 0.0
	for _, g := range s.grids {
		s.lattice = slices.Grow(s.lattice[:0], g.gw*g.gh)[:g.gw*g.gh]
		for k := range s.lattice {
			s.lattice[k] = r.Float64()
		}
		for y, y0 := range g.y0 {
			ty := g.ty[y]
			row0, row1 := s.lattice[int(y0)*g.gw:], s.lattice[(int(y0)+1)*g.gw:]
			out := s.field[y*w : (y+1)*w]
			for x, x0 := range g.x0 {
				tx := g.tx[x]
				a := lerp(row0[x0], row0[x0+1], tx)
				b := lerp(row1[x0], row1[x0+1], tx)
				out[x] += float64(amp * lerp(a, b, ty))
			}
		}
		total += amp
		amp *= 0.6 // keep fine grain visible: scans are not smooth
	}
	for k := range s.field {
		s.field[k] /= total
	}
}

// lerp interpolates from a to b. The explicit conversion forbids the
// compiler from fusing the multiply-add (Go fuses on arm64, and on amd64
// with GOAMD64=v3), which would change the last bit of stored parameters
// and so the file hash on another architecture.
func lerp(a, b, t float64) float64 { return a + float64((b-a)*t) }

// noiseGrid is one octave's interpolation plan: for each column and row,
// the lattice cell and the smoothed offset within it.
type noiseGrid struct {
	gw, gh int
	x0, y0 []int32
	tx, ty []float64
}

func newNoiseGrids(w, h int) []noiseGrid {
	grids := make([]noiseGrid, noiseOctaves)
	cell := float64(max(w, h)) / 4 // coarsest lattice: 4 cells across
	for o := range grids {
		g := &grids[o]
		g.gw, g.gh = int(float64(w)/cell)+2, int(float64(h)/cell)+2
		g.x0, g.tx = gridAxis(w, cell)
		g.y0, g.ty = gridAxis(h, cell)
		cell /= 2
	}
	return grids
}

func gridAxis(n int, cell float64) ([]int32, []float64) {
	idx, t := make([]int32, n), make([]float64, n)
	for p := range n {
		f := float64(p) / cell
		i := math.Floor(f)
		u := f - i
		idx[p], t[p] = int32(i), float64(u*u)*float64(3-2*u) // smoothstep, unfused
	}
	return idx, t
}

// newFieldOfView is the weight of tissue (1) against air (0) per pixel:
// an ellipse with a soft rim about two pixels wide.
func newFieldOfView(w, h int) []float64 {
	fov := make([]float64, w*h)
	cx, cy := float64(w)/2, float64(h)/2
	ax, ay := tissueSemiAxisX*float64(w), tissueSemiAxisY*float64(h)
	for y := range h {
		dy := (float64(y) + 0.5 - cy) / ay
		for x := range w {
			dx := (float64(x) + 0.5 - cx) / ax
			d := math.Sqrt(float64(dx*dx) + float64(dy*dy))
			fov[y*w+x] = min(max((1-d)*min(ax, ay)/2, 0), 1)
		}
	}
	return fov
}

// tissueMask maps texture to tissue grey inside the field of view and to
// near-black air outside it.
func (s *imageScratch) tissueMask(mean float64) {
	for p, t := range s.field {
		tissue := mean + float64(0.45*(t-0.5))
		air := 0.03 + float64(0.06*t)
		s.field[p] = lerp(air, tissue, s.fov[p])
	}
}

// drawLesion adds a bright blob whose border radius varies with angle
// (a sum of sinusoids) and fades over lesionEdgePixels.
func (s *imageScratch) drawLesion(l *lesion) {
	w, h := s.o.width, s.o.height
	for a := range s.boundary {
		th := 2 * math.Pi * float64(a) / boundaryTableSize
		var dev float64
		for k := range l.amp {
			dev += float64(l.amp[k] * math.Sin(float64(float64(k+2)*th)+l.phase[k]))
		}
		s.boundary[a] = l.radius * (1 + float64(l.irreg*dev))
	}
	reach := float64(l.radius*(1+l.irreg)) + lesionEdgePixels + 1
	x0, x1 := max(int(l.x-reach), 0), min(int(l.x+reach)+1, w)
	y0, y1 := max(int(l.y-reach), 0), min(int(l.y+reach)+1, h)
	for y := y0; y < y1; y++ {
		dy := float64(y) + 0.5 - l.y
		for x := x0; x < x1; x++ {
			dx := float64(x) + 0.5 - l.x
			d := math.Sqrt(float64(dx*dx) + float64(dy*dy))
			th := math.Atan2(dy, dx)
			if th < 0 {
				th += 2 * math.Pi
			}
			a := int(th*boundaryTableSize/(2*math.Pi)) % boundaryTableSize
			m := min(max(float64((s.boundary[a]-d)/lesionEdgePixels)+0.5, 0), 1)
			if m == 0 {
				continue
			}
			// The lesion keeps some of the texture underneath, as real
			// lesions are not flat discs.
			p := y*w + x
			s.field[p] += float64(float64(m*l.contrast) * (0.8 + float64(0.4*s.field[p])))
		}
	}
}

// encode returns img as PNG bytes. With NoCompression image/png writes no
// filters and stored deflate blocks, a pure function of the pixels; a
// golden-hash test would catch a Go release that changed even that.
func (s *imageScratch) encode(img *image.Gray) []byte {
	s.buf.Reset()
	if err := s.enc.Encode(&s.buf, img); err != nil {
		// Encoding into a bytes.Buffer fails only for an empty image, which
		// normalize rules out; reaching this is a bug in this file.
		panic(fmt.Sprintf("datasets: encode %dx%d PNG: %v", img.Rect.Dx(), img.Rect.Dy(), err))
	}
	return bytes.Clone(s.buf.Bytes())
}

// perturbations renders base image i and returns its perturbed variants.
func (s *imageScratch) perturbations(seed uint64, i int64) []PerturbationRow {
	l := s.render(seed, i)
	label := l.label(s.o)
	out := make([]PerturbationRow, 0, len(s.o.levels)+len(s.o.pixelCounts))
	add := func(kind string, eps float64, k int) {
		v := len(out)
		r := imageRand(seed, i, streamPerturb, v+1)
		copy(s.work.Pix, s.img.Pix)
		if kind == perturbationsNoise {
			addNoise(r, s.work.Pix, s.o.levels[v])
		} else {
			s.changePixels(r, s.work.Pix, k)
		}
		maxDiff, changed := diff(s.img.Pix, s.work.Pix)
		out = append(out, PerturbationRow{
			ID:            fmt.Sprintf("imgp-%016x-%09d-%02d", seed, i, v),
			BaseID:        ImageID(seed, i),
			BaseIndex:     i,
			Variant:       int32(v),
			Perturbation:  kind,
			Epsilon:       eps,
			K:             int32(k),
			MaxAbsDiff:    int32(maxDiff),
			ChangedPixels: int32(changed),
			Label:         label,
			LabelID:       labelID(label),
			Width:         int32(s.o.width),
			Height:        int32(s.o.height),
			PNG:           s.encode(s.work),
			Seed:          int64(seed),
		})
	}
	for _, e := range s.o.epsilons {
		add(perturbationsNoise, e, 0)
	}
	for _, k := range s.o.pixelCounts {
		add(perturbationsPix, 0, k)
	}
	return out
}

// addNoise adds independent uniform integer noise in [-levels, levels] to
// every pixel, clamped to 0..255, so the L∞ distance never exceeds the
// budget (clamping only shrinks it).
func addNoise(r *rand.Rand, pix []uint8, levels int) {
	if levels <= 0 {
		return
	}
	span := 2*levels + 1
	for p, v := range pix {
		pix[p] = uint8(min(max(int(v)+r.IntN(span)-levels, 0), 255))
	}
}

// changePixels sets exactly k distinct pixels to the opposite extreme
// (dark → 255, bright → 0): the salt-and-pepper form of few-pixel attacks,
// and a change that can never be a no-op.
func (s *imageScratch) changePixels(r *rand.Rand, pix []uint8, k int) {
	n := len(pix)
	k = min(k, n)
	if cap(s.perm) < n {
		s.perm = make([]int32, n)
	}
	s.perm = s.perm[:n]
	for p := range s.perm {
		s.perm[p] = int32(p)
	}
	for j := range k { // partial Fisher–Yates: k distinct positions
		m := j + r.IntN(n-j)
		s.perm[j], s.perm[m] = s.perm[m], s.perm[j]
		p := s.perm[j]
		if pix[p] < 128 {
			pix[p] = 255
		} else {
			pix[p] = 0
		}
	}
}

func diff(a, b []uint8) (maxAbs, changed int) {
	for p := range a {
		d := int(a[p]) - int(b[p])
		if d != 0 {
			changed++
			maxAbs = max(maxAbs, d, -d)
		}
	}
	return maxAbs, changed
}
