package privacy

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// AuditFindings are the membership-inference results Explain puts into words.
type AuditFindings struct {
	AUC     float64
	TPRAt01 float64 // TPR at FPR ≤ 0.1%
	TPRAt1  float64 // TPR at FPR ≤ 1%
	Epsilon EpsilonBound
	Attack  string // e.g. "loss threshold", "LiRA offline (one-sided)"
	// TheoreticalEpsilon is the ε the training's DP accountant certifies at
	// TheoreticalDelta; 0 when the model was not trained with DP.
	TheoreticalEpsilon float64
	TheoreticalDelta   float64
}

// Explain returns 2–4 sentences a release reviewer can read without
// knowing the metrics: how well an attacker separates members from
// non-members, what that means at low false-alarm rates, the audited ε
// with its confidence and correction, and how it compares with the DP
// guarantee when there is one. The text depends only on f.
func Explain(f AuditFindings) string {
	attack := f.Attack
	if attack == "" {
		attack = "membership"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "An attacker who can query the model and runs a %s attack can tell training records from unseen ones with AUC %.3f (0.5 is a coin flip, 1.0 is always right); %s. ",
		attack, f.AUC, aucWords(f.AUC))
	fmt.Fprintf(&b, "Allowed to wrongly accuse only 1 in 1000 non-members, it identifies %s of training records (%s at 1 in 100). ",
		pct(f.TPRAt01), pct(f.TPRAt1))
	e := f.Epsilon
	fmt.Fprintf(&b, "From this audit the model's privacy loss is at least ε = %.2f with %s confidence (δ = %s, %s), %s. ",
		e.Epsilon, pct(e.Confidence), fmtG(e.Delta), correctionWords(e), epsWords(e.Epsilon))
	if f.TheoreticalEpsilon > 0 {
		if e.Epsilon <= f.TheoreticalEpsilon {
			fmt.Fprintf(&b, "Training was certified differentially private at ε = %.2f (δ = %s), and the audit is consistent with that guarantee.",
				f.TheoreticalEpsilon, fmtG(f.TheoreticalDelta))
		} else {
			fmt.Fprintf(&b, "Training claims ε = %.2f (δ = %s), but the audit proves more leakage than that, so the DP implementation or its accounting is wrong: do not rely on the guarantee.",
				f.TheoreticalEpsilon, fmtG(f.TheoreticalDelta))
		}
	}
	return strings.TrimSpace(b.String())
}

func aucWords(auc float64) string {
	switch {
	case auc < 0.55:
		return "that is barely better than guessing"
	case auc < 0.65:
		return "that is a weak but real signal"
	case auc < 0.8:
		return "that is a clear leak of who was in the training data"
	default:
		return "that is a strong leak of who was in the training data"
	}
}

func epsWords(eps float64) string {
	switch {
	case eps == 0:
		return "which means the audit found no measurable leakage (not proof that there is none)"
	case eps < 1:
		return "a small measured leak"
	case eps < 4:
		return "a moderate measured leak"
	default:
		return "a large measured leak"
	}
}

func correctionWords(e EpsilonBound) string {
	switch e.Correction {
	case CorrectionBonferroni:
		return fmt.Sprintf("corrected for trying %d thresholds", e.ThresholdsScanned)
	case CorrectionHeldOut:
		return fmt.Sprintf("threshold chosen among %d on a held-out half", e.ThresholdsScanned)
	default:
		return "one threshold fixed in advance"
	}
}

func pct(x float64) string {
	if math.IsNaN(x) {
		return "n/a"
	}
	return strconv.FormatFloat(100*x, 'f', 1, 64) + "%"
}

func fmtG(x float64) string { return strconv.FormatFloat(x, 'g', 3, 64) }
