package dp

import (
	"fmt"
	"math"
)

// Conversion names the RDP → (ε, δ) conversion.
type Conversion string

const (
	// Balle2020 is ε = rdp + ln((α−1)/α) − (ln δ + ln α)/(α−1)
	// (Balle et al. 2020, Thm 21; also Canonne, Kamath, Steinke 2020),
	// the conversion of current Opacus and TensorFlow Privacy.
	Balle2020 Conversion = "balle2020"
	// Mironov2017 is ε = rdp + ln(1/δ)/(α−1) (Mironov 2017, Prop. 3),
	// the conversion behind figures published before 2020.
	Mironov2017 Conversion = "mironov2017"
)

// DefaultOrders returns the RDP orders 2..256.
func DefaultOrders() []int {
	o := make([]int, 0, 255)
	for a := 2; a <= 256; a++ {
		o = append(o, a)
	}
	return o
}

// RDP returns the Rényi DP of one step of the Poisson-subsampled Gaussian
// mechanism with sampling rate q and noise multiplier sigma, at each
// integer order α ≥ 2 (Mironov, Talwar, Zhang 2019, §3.3):
//
//	A_α = Σ_{k=0}^{α} C(α,k) (1−q)^{α−k} q^k exp((k²−k)/(2σ²))
//	RDP(α) = ln(A_α)/(α−1)
//
// summed in log space. For q = 1 this is α/(2σ²), the plain Gaussian
// mechanism. RDP composes additively, so T steps cost T·RDP(α).
func RDP(q, sigma float64, orders []int) ([]float64, error) {
	if !(q >= 0 && q <= 1) {
		return nil, fmt.Errorf("sample rate q = %g must be in [0, 1]", q)
	}
	if !(sigma > 0) || math.IsInf(sigma, 0) {
		return nil, fmt.Errorf("noise multiplier sigma = %g must be positive and finite", sigma)
	}
	if len(orders) == 0 {
		return nil, fmt.Errorf("no RDP orders: pass DefaultOrders()")
	}
	out := make([]float64, len(orders))
	for i, a := range orders {
		if a < 2 {
			return nil, fmt.Errorf("orders[%d] = %d: integer RDP orders must be ≥ 2", i, a)
		}
		switch q {
		case 0:
			out[i] = 0
		case 1:
			out[i] = float64(a) / (2 * sigma * sigma)
		default:
			out[i] = logAInt(q, sigma, a) / float64(a-1)
		}
	}
	return out, nil
}

// logAInt is ln A_α for integer α by log-sum-exp over the binomial terms.
func logAInt(q, sigma float64, a int) float64 {
	lq, l1q := math.Log(q), math.Log1p(-q)
	la, _ := math.Lgamma(float64(a) + 1)
	terms := make([]float64, a+1)
	m := math.Inf(-1)
	for k := 0; k <= a; k++ {
		lk, _ := math.Lgamma(float64(k) + 1)
		lak, _ := math.Lgamma(float64(a-k) + 1)
		fk := float64(k)
		terms[k] = la - lk - lak + float64(a-k)*l1q + fk*lq + (fk*fk-fk)/(2*sigma*sigma)
		m = math.Max(m, terms[k])
	}
	var s float64
	for _, t := range terms {
		s += math.Exp(t - m)
	}
	return m + math.Log(s)
}

// EpsilonFromRDP converts accumulated RDP values (one per order) to the
// smallest ε over the orders at the given δ, returning the order that
// achieved it.
func EpsilonFromRDP(orders []int, rdp []float64, delta float64, conv Conversion) (eps float64, order int, err error) {
	if len(orders) != len(rdp) || len(orders) == 0 {
		return 0, 0, fmt.Errorf("orders has %d entries, rdp %d: need one RDP value per order", len(orders), len(rdp))
	}
	if !(delta > 0 && delta < 1) {
		return 0, 0, fmt.Errorf("delta = %g must be in (0, 1), typically below 1/n", delta)
	}
	if conv != Balle2020 && conv != Mironov2017 {
		return 0, 0, fmt.Errorf("conversion %q: use %q or %q", conv, Balle2020, Mironov2017)
	}
	eps = math.Inf(1)
	for i, a := range orders {
		if a < 2 {
			return 0, 0, fmt.Errorf("orders[%d] = %d: integer RDP orders must be ≥ 2", i, a)
		}
		if rdp[i] < 0 || math.IsNaN(rdp[i]) {
			return 0, 0, fmt.Errorf("rdp[%d] = %g: RDP is never negative", i, rdp[i])
		}
		fa := float64(a)
		var e float64
		if conv == Mironov2017 {
			e = rdp[i] + math.Log(1/delta)/(fa-1)
		} else {
			e = rdp[i] + math.Log1p(-1/fa) - (math.Log(delta)+math.Log(fa))/(fa-1)
		}
		if e < eps {
			eps, order = e, a
		}
	}
	return math.Max(eps, 0), order, nil
}

// Epsilon is the (ε, δ) guarantee of steps steps of DP-SGD with Poisson
// sampling rate q and noise multiplier sigma, over DefaultOrders with the
// Balle2020 conversion. It returns the optimal order too, so callers can
// tell when the optimum sits at the edge of the order range (order 256:
// ε is still valid but could be tighter).
func Epsilon(q, sigma float64, steps int, delta float64) (eps float64, order int, err error) {
	return EpsilonWith(q, sigma, steps, delta, DefaultOrders(), Balle2020)
}

// EpsilonWith is Epsilon with explicit orders and conversion.
func EpsilonWith(q, sigma float64, steps int, delta float64, orders []int, conv Conversion) (eps float64, order int, err error) {
	if steps < 0 {
		return 0, 0, fmt.Errorf("steps = %d must be ≥ 0", steps)
	}
	r, err := RDP(q, sigma, orders)
	if err != nil {
		return 0, 0, err
	}
	for i := range r {
		r[i] *= float64(steps)
	}
	return EpsilonFromRDP(orders, r, delta, conv)
}
