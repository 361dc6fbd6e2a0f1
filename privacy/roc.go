package privacy

import (
	"fmt"
	"math"
	"slices"
)

// ROCPoint is one operating point of a membership attack that predicts
// "member" when score ≥ Threshold (higher ⇒ member throughout this
// package). TP/FN count members, FP/TN non-members.
type ROCPoint struct {
	Threshold float64
	FPR, TPR  float64
	TP, FP    int
	FN, TN    int
}

// ROC is the attack's ROC curve: Points[0] is the threshold +Inf (nothing
// predicted member, FPR = TPR = 0), then one point per distinct score in
// decreasing order, the last one predicting everything member (FPR = TPR =
// 1). Equal scores move together, so ties never create a diagonal step
// that depends on input order.
type ROC struct {
	Points     []ROCPoint
	Members    int
	NonMembers int
}

// NewROC builds the ROC of member vs non-member attack scores. Both sets
// must be non-empty and finite (see ValidateScores for file-aware errors).
func NewROC(members, nonMembers []float64) (ROC, error) {
	if err := ValidateScores("member", "", "score", members); err != nil {
		return ROC{}, err
	}
	if err := ValidateScores("non-member", "", "score", nonMembers); err != nil {
		return ROC{}, err
	}
	m := slices.Clone(members)
	n := slices.Clone(nonMembers)
	slices.Sort(m)
	slices.Sort(n)
	P, N := len(m), len(n)
	pts := []ROCPoint{{Threshold: math.Inf(1), FN: P, TN: N}}
	i, j := P-1, N-1 // walk both sorted slices from the top
	tp, fp := 0, 0
	for i >= 0 || j >= 0 {
		t := math.Inf(-1)
		if i >= 0 {
			t = m[i]
		}
		if j >= 0 && n[j] > t {
			t = n[j]
		}
		for i >= 0 && m[i] == t {
			tp++
			i--
		}
		for j >= 0 && n[j] == t {
			fp++
			j--
		}
		pts = append(pts, ROCPoint{
			Threshold: t,
			FPR:       float64(fp) / float64(N),
			TPR:       float64(tp) / float64(P),
			TP:        tp, FP: fp, FN: P - tp, TN: N - fp,
		})
	}
	return ROC{Points: pts, Members: P, NonMembers: N}, nil
}

// AUC is the area under the ROC by the trapezoid rule over the tie-grouped
// points, which equals the Mann-Whitney statistic
// P[S_member > S_non] + ½·P[S_member = S_non].
func (r ROC) AUC() float64 {
	var a float64
	for k := 1; k < len(r.Points); k++ {
		p, q := r.Points[k-1], r.Points[k]
		a += (q.FPR - p.FPR) * (q.TPR + p.TPR) / 2
	}
	return a
}

// TPRAtFPR returns the attack's TPR at a false-positive budget, by the rule
// of metrics.md (ml_privacy_meter): among the thresholds whose FPR ≤
// target, take the one reaching the highest TPR (the lowest such
// threshold; TPR only grows as the threshold falls); no interpolation
// between points. The point is returned so the threshold can be reported.
func (r ROC) TPRAtFPR(target float64) (ROCPoint, error) {
	if !(target >= 0 && target <= 1) {
		return ROCPoint{}, fmt.Errorf("target FPR %g is outside [0, 1]: pass e.g. 0.001 for 0.1%%", target)
	}
	if len(r.Points) == 0 {
		return ROCPoint{}, fmt.Errorf("empty ROC: build it with NewROC")
	}
	best := r.Points[0]
	for _, p := range r.Points[1:] {
		if p.FPR > target {
			break // FPR never decreases along Points
		}
		best = p
	}
	return best, nil
}

// Thin returns at most max points of the curve for storage, always keeping
// the first (+Inf) and last (everything member) points and spacing the rest
// evenly by index, so dense regions of the curve keep proportionally more
// points. A curve already short enough is returned as is.
func (r ROC) Thin(max int) ([]ROCPoint, error) {
	if max < 2 {
		return nil, fmt.Errorf("max points %d: need at least 2 to keep both ends of the curve", max)
	}
	n := len(r.Points)
	if n <= max {
		return slices.Clone(r.Points), nil
	}
	out := make([]ROCPoint, 0, max)
	for k := range max {
		// Round k·(n−1)/(max−1): k = 0 → 0, k = max−1 → n−1, strictly increasing.
		idx := (k*(n-1) + (max-1)/2) / (max - 1)
		out = append(out, r.Points[idx])
	}
	return out, nil
}

// ROCRow is the Parquet schema of stored ROC points, one row per point, for
// notebooks:
//
//	release_id  release the audit belongs to
//	attack      attack and statistic, e.g. "loss", "lira_offline_one_sided"
//	threshold   predict member when score ≥ threshold (higher ⇒ member);
//	            +Inf for the first point
//	fpr, tpr    false/true positive rates at that threshold
//	tp, fp      members / non-members predicted member
//	members     size of the member set (TPR's denominator)
//	non_members size of the non-member set (FPR's denominator)
//
// Plot tpr against fpr on log–log axes to see the low-FPR regime that
// TPR@0.1% summarises.
type ROCRow struct {
	ReleaseID  string  `parquet:"release_id,dict"`
	Attack     string  `parquet:"attack,dict"`
	Threshold  float64 `parquet:"threshold"`
	FPR        float64 `parquet:"fpr"`
	TPR        float64 `parquet:"tpr"`
	TP         int64   `parquet:"tp"`
	FP         int64   `parquet:"fp"`
	Members    int64   `parquet:"members"`
	NonMembers int64   `parquet:"non_members"`
}

// Rows converts points (typically from Thin) to ROCRow values.
func (r ROC) Rows(releaseID, attack string, pts []ROCPoint) []ROCRow {
	out := make([]ROCRow, len(pts))
	for i, p := range pts {
		out[i] = ROCRow{
			ReleaseID: releaseID, Attack: attack, Threshold: p.Threshold,
			FPR: p.FPR, TPR: p.TPR, TP: int64(p.TP), FP: int64(p.FP),
			Members: int64(r.Members), NonMembers: int64(r.NonMembers),
		}
	}
	return out
}
