package predictive

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/sandgate/sandgate/datasets"
)

// Imaging classifier variants.
const (
	ImagingBrittle = "brittle"
	ImagingRobust  = "robust"
)

// Imaging geometry and training data.
const (
	ImageSide             = datasets.DefaultImageSide // inputs are ImageSide×ImageSide
	ImagingTrainSeed      = uint64(7003)
	imagingTrainImages    = 600
	poolSide              = 16 // 4×4 average pooling of the 64×64 scan
	imagingAugmentLevels  = 16 // robust: noise up to 16/255 during training
	imagingAugmentCopies  = 2
	imagingGradientSteps  = 250
	imagingLearningRate   = 0.5
	imagingBrittleL2      = 1e-5
	imagingRobustL2       = 1e-3
	imagingAugmentStream  = 0x6e6f697365303031
	imagingSharpnessRanks = 4
)

// ImageClasses are the output classes in order: datasets.ImageLabels
// (healthy, benign, critical), i.e. label_id.
func ImageClasses() []string { return datasets.ImageLabels() }

// ImagingClassifier classifies 64×64 grayscale scans. Input: pixels in
// [0, 1] (grey level / 255), row-major, ImageSide×ImageSide per image.
// Output per image: probabilities of ImageClasses.
type ImagingClassifier struct {
	sharp bool      // reads the pixel-level sharpness features
	mean  []float64 // feature standardisation
	scale []float64
	w     []float64 // classes × (features+1), intercept last
	dim   int
}

// NewImagingClassifier trains the variant on the first 600 scans of
// datasets.Images(7003, …): softmax regression over position-invariant
// features of the 16×16 average-pooled scan (order statistics of the
// brighter cells relative to the tissue median, bright-area fractions,
// pooled edge energy). brittle additionally reads pixel-level sharpness
// (order statistics of the raw 3×3 Laplacian), is trained on clean scans
// only and barely regularised: sharpness separates lesions on clean scans
// but any per-pixel noise inflates it, so small L∞ noise or a few changed
// pixels flip its decision. robust reads only pooled features, which
// average noise away, and is trained on clean plus noise-augmented copies
// (uniform noise up to 16/255), so ε = 8/255 noise keeps its decision.
func NewImagingClassifier(variant string) (*ImagingClassifier, error) {
	var m ImagingClassifier
	var l2 float64
	copies := 0
	switch variant {
	case ImagingBrittle:
		m.sharp, l2 = true, imagingBrittleL2
	case ImagingRobust:
		l2, copies = imagingRobustL2, imagingAugmentCopies
	default:
		return nil, fmt.Errorf("imaging classifier: unknown variant %q; use %s or %s", variant, ImagingBrittle, ImagingRobust)
	}
	var feats [][]float64
	var labels []int
	pix := make([]float32, ImageSide*ImageSide)
	noisy := make([]float32, len(pix))
	for row := range datasets.Images(ImagingTrainSeed, imagingTrainImages, datasets.ImageOptions{}) {
		if err := DecodeScan(row.PNG, pix); err != nil {
			return nil, fmt.Errorf("imaging classifier: training scan %s: %w", row.ID, err)
		}
		feats = append(feats, m.features(pix))
		labels = append(labels, int(row.LabelID))
		for c := range copies {
			r := rand.New(rand.NewPCG(uint64(row.Index), imagingAugmentStream+uint64(c)))
			levels := 1 + r.IntN(imagingAugmentLevels)
			AddUniformNoise(r, pix, noisy, float32(levels)/255)
			feats = append(feats, m.features(noisy))
			labels = append(labels, int(row.LabelID))
		}
	}
	m.dim = len(feats[0])
	m.fitScale(feats)
	m.train(feats, labels, l2)
	return &m, nil
}

// DecodeScan decodes an 8-bit grayscale PNG scan of ImageSide×ImageSide
// into dst as grey level / 255.
func DecodeScan(b []byte, dst []float32) error {
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("decode PNG: %w", err)
	}
	g, ok := img.(*image.Gray)
	if !ok || g.Rect.Dx() != ImageSide || g.Rect.Dy() != ImageSide || len(dst) != ImageSide*ImageSide {
		return fmt.Errorf("want a %d×%d grayscale PNG, got %T %v", ImageSide, ImageSide, img, img.Bounds())
	}
	for y := range ImageSide {
		for x := range ImageSide {
			dst[y*ImageSide+x] = float32(g.Pix[y*g.Stride+x]) / 255
		}
	}
	return nil
}

// AddUniformNoise writes src + δ, δ ~ U[−eps, eps] per pixel, clipped to
// [0, 1], into dst: the noise model of the robustness flip rate.
func AddUniformNoise(r *rand.Rand, src, dst []float32, eps float32) {
	for i, v := range src {
		dst[i] = min(max(v+eps*(2*r.Float32()-1), 0), 1)
	}
}

// features maps one scan to its feature vector.
func (m *ImagingClassifier) features(pix []float32) []float64 {
	const cell = ImageSide / poolSide
	var pooled [poolSide * poolSide]float64
	for y := range ImageSide {
		for x := range ImageSide {
			pooled[(y/cell)*poolSide+x/cell] += float64(pix[y*ImageSide+x])
		}
	}
	for i := range pooled {
		pooled[i] /= cell * cell
	}
	sorted := slices.Clone(pooled[:])
	slices.SortFunc(sorted, func(a, b float64) int { return compareFloat(b, a) })
	// The tissue median: cells darker than air level are outside the
	// field of view and do not count.
	tissue := sorted[:0:0]
	for _, v := range sorted {
		if v > 0.15 {
			tissue = append(tissue, v)
		}
	}
	med := 0.0
	if len(tissue) > 0 {
		med = tissue[len(tissue)/2]
	}
	f := make([]float64, 0, 32)
	// Ranks (brightest first) of the pooled cells used as features:
	// lesions cover about 3 (small) to 60 (large) of the 256 cells; ranks
	// near the tissue median only add noise sensitivity.
	for _, r := range [...]int{0, 1, 2, 4, 6, 8, 12, 16, 24, 32, 40, 48, 56, 64} {
		f = append(f, sorted[r]-med)
	}
	for _, t := range []float64{0.05, 0.1, 0.15, 0.2} {
		// Soft counts: a hard threshold would let one noisy cell change
		// the feature by a whole step.
		var n float64
		for _, v := range pooled {
			n += sigmoid((v - med - t) / 0.02)
		}
		f = append(f, n/16)
	}
	// Edge energy of the pooled scan: long or ragged lesion borders.
	var edge float64
	for y := range poolSide - 1 {
		for x := range poolSide - 1 {
			p := pooled[y*poolSide+x]
			edge += math.Abs(pooled[y*poolSide+x+1]-p) + math.Abs(pooled[(y+1)*poolSide+x]-p)
		}
	}
	f = append(f, edge)
	if m.sharp {
		f = append(f, sharpness(pix)...)
	}
	return f
}

// sharpness returns the top order statistics of |Laplacian| over interior
// pixels, scaled to grey levels: large at lesion borders on clean scans,
// and at every pixel of a noisy one.
func sharpness(pix []float32) []float64 {
	var top [imagingSharpnessRanks * 16]float64
	n := 0
	var sum float64
	for y := 1; y < ImageSide-1; y++ {
		for x := 1; x < ImageSide-1; x++ {
			i := y*ImageSide + x
			l := math.Abs(float64(4*pix[i] - pix[i-1] - pix[i+1] - pix[i-ImageSide] - pix[i+ImageSide]))
			sum += l
			// Keep the largest len(top) values, sorted descending.
			if n < len(top) {
				top[n] = l
				n++
			} else if l <= top[n-1] {
				continue
			} else {
				top[n-1] = l
			}
			for k := n - 1; k > 0 && top[k] > top[k-1]; k-- {
				top[k], top[k-1] = top[k-1], top[k]
			}
		}
	}
	out := make([]float64, imagingSharpnessRanks, imagingSharpnessRanks+1)
	for k := range out {
		out[k] = top[k*16] * 255 / 16
	}
	return append(out, sum*255/float64((ImageSide-2)*(ImageSide-2)))
}

func compareFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (m *ImagingClassifier) fitScale(feats [][]float64) {
	m.mean, m.scale = make([]float64, m.dim), make([]float64, m.dim)
	n := float64(len(feats))
	for j := range m.dim {
		var s, ss float64
		for _, f := range feats {
			s += f[j]
		}
		mu := s / n
		for _, f := range feats {
			ss += (f[j] - mu) * (f[j] - mu)
		}
		m.mean[j], m.scale[j] = mu, max(math.Sqrt(ss/n), 1e-9)
	}
	for _, f := range feats {
		m.standardise(f)
	}
}

func (m *ImagingClassifier) standardise(f []float64) {
	for j := range f {
		f[j] = (f[j] - m.mean[j]) / m.scale[j]
	}
}

// train fits multinomial logistic regression by full-batch gradient
// descent with a fixed step count: deterministic and fast at this size.
func (m *ImagingClassifier) train(feats [][]float64, labels []int, l2 float64) {
	k := len(ImageClasses())
	d := m.dim + 1
	m.w = make([]float64, k*d)
	grad := make([]float64, len(m.w))
	vel := make([]float64, len(m.w))
	p := make([]float64, k)
	n := float64(len(feats))
	for range imagingGradientSteps {
		clear(grad)
		for i, f := range feats {
			m.probs(f, p)
			for c := range k {
				r := p[c]
				if c == labels[i] {
					r--
				}
				g := grad[c*d : (c+1)*d]
				for j, v := range f {
					g[j] += r * v
				}
				g[m.dim] += r
			}
		}
		for c := range k {
			for j := range d {
				i := c*d + j
				g := grad[i] / n
				if j < m.dim {
					g += l2 * m.w[i]
				}
				vel[i] = 0.9*vel[i] - imagingLearningRate*g
				m.w[i] += vel[i]
			}
		}
	}
}

// probs writes the class probabilities of standardised features f into p.
func (m *ImagingClassifier) probs(f []float64, p []float64) {
	d := m.dim + 1
	top := math.Inf(-1)
	for c := range p {
		w := m.w[c*d : (c+1)*d]
		z := w[m.dim]
		for j, v := range f {
			z += w[j] * v
		}
		p[c] = z
		top = max(top, z)
	}
	var s float64
	for c := range p {
		p[c] = math.Exp(p[c] - top)
		s += p[c]
	}
	for c := range p {
		p[c] /= s
	}
}

// Predict classifies n scans held in pix (n×ImageSide×ImageSide values in
// [0, 1]) and returns their class probabilities.
func (m *ImagingClassifier) Predict(pix []float32) ([][]float64, error) {
	const per = ImageSide * ImageSide
	if len(pix)%per != 0 {
		return nil, fmt.Errorf("imaging classifier: %d pixels is not a whole number of %d×%d scans", len(pix), ImageSide, ImageSide)
	}
	for i, v := range pix {
		if !(v >= 0 && v <= 1) {
			return nil, fmt.Errorf("imaging classifier: pixel %d of scan %d is %v; want grey level / 255 in [0, 1]", i%per, i/per, v)
		}
	}
	out := make([][]float64, len(pix)/per)
	for i := range out {
		f := m.features(pix[i*per : (i+1)*per])
		m.standardise(f)
		out[i] = make([]float64, len(ImageClasses()))
		m.probs(f, out[i])
	}
	return out, nil
}
