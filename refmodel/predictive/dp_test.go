package predictive

import (
	"context"
	"fmt"
	"testing"

	"github.com/sandgate/sandgate/privacy"
)

// TestDPScorerAuditStaysBelowItsGuarantee trains the DP scorer, attacks it
// with the loss statistic on its members and non-members, and checks the
// audited ε lower bound (95%, Bonferroni over the thresholds scanned) is
// below the accountant's ε; the overfit scorer's bound, by contrast, is
// clearly above zero.
func TestDPScorerAuditStaysBelowItsGuarantee(t *testing.T) {
	ctx := context.Background()
	c, rep, err := NewDPCreditScorer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if acc := accuracy(t, c); acc < 0.75 {
		t.Errorf("dp scorer: accuracy %.3f on its non-members; DP-SGD should still learn (want ≥ 0.75)", acc)
	} else {
		t.Logf("dp scorer: accuracy %.3f on unseen records", acc)
	}
	dpEps := audit(t, c, CreditDP)
	t.Logf("dp scorer: theoretical ε = %.3f at δ = %g (order %d, q %g, σ %g, %d steps); audited %s", rep.Epsilon, rep.Delta, rep.Order, rep.Q, rep.Sigma, rep.Steps, describe(dpEps))
	if !(rep.Epsilon > 0) || dpEps.Epsilon >= rep.Epsilon {
		t.Fatalf("audited ε_lb %.3f is not below the theoretical ε %.3f", dpEps.Epsilon, rep.Epsilon)
	}
	over, err := NewCreditScorer(CreditOverfit)
	if err != nil {
		t.Fatal(err)
	}
	overEps := audit(t, over, CreditOverfit)
	t.Logf("overfit scorer: audited %s", describe(overEps))
	if overEps.Epsilon < 1 {
		t.Fatalf("overfit scorer: ε_lb %.3f, want clearly above zero (≥ 1)", overEps.Epsilon)
	}
}

func audit(t *testing.T, c Classifier, variant string) privacy.EpsilonBound {
	t.Helper()
	scores := func(members bool) []float64 {
		rec, err := Records(variant, members)
		if err != nil {
			t.Fatal(err)
		}
		probs, err := c.Predict(rec)
		if err != nil {
			t.Fatal(err)
		}
		col, _ := rec.Column("approved")
		labels := make([]int, len(col.Bools))
		for i, b := range col.Bools {
			if b {
				labels[i] = 1
			}
		}
		st, err := privacy.StatsFromProbs(probs, labels)
		if err != nil {
			t.Fatal(err)
		}
		s, err := privacy.AttackScores(st, privacy.StatLoss)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	eps, err := privacy.ScanEpsilon(scores(true), scores(false), privacy.ScanOptions{Alpha: 0.05, Delta: 1e-5, MaxThresholds: 200})
	if err != nil {
		t.Fatal(err)
	}
	return eps
}

func describe(e privacy.EpsilonBound) string {
	return fmt.Sprintf("ε_lb = %.3f (%.0f%% confidence, δ = %g, %s over %d thresholds; FP %d/%d, FN %d/%d)",
		e.Epsilon, 100*e.Confidence, e.Delta, e.Correction, e.ThresholdsScanned, e.FP, e.NonMembers, e.FN, e.Members)
}

func accuracy(t *testing.T, c Classifier) float64 {
	t.Helper()
	rec, err := Records(CreditDP, false)
	if err != nil {
		t.Fatal(err)
	}
	probs, err := c.Predict(rec)
	if err != nil {
		t.Fatal(err)
	}
	col, _ := rec.Column("approved")
	ok := 0
	for i, p := range probs {
		if (p[1] > 0.5) == col.Bools[i] {
			ok++
		}
	}
	return float64(ok) / float64(len(probs))
}
