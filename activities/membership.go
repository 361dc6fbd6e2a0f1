package activities

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/sandgate/sandgate/audit"
	"github.com/sandgate/sandgate/modelapi"
	"github.com/sandgate/sandgate/privacy"
	"github.com/sandgate/sandgate/tableio"
)

// epsilonStatistic is the attack statistic the ε lower bound is computed
// on. It is fixed before looking at the data: picking the best of several
// statistics afterwards would be one more comparison the bound does not
// correct for. AUC and TPR are reported for every statistic.
const epsilonStatistic = privacy.StatLoss

// maxEpsilonThresholds caps the thresholds the ε scan tries: the
// Bonferroni penalty grows with their number.
const maxEpsilonThresholds = 200

// MembershipSuite runs membership inference against a classifier: the
// model scores its member (training) and non-member records, each record's
// confidence, loss, logit and hinge statistics separate the two sets as
// well as they can, and the best threshold gives an empirical lower bound
// on the model's differential-privacy ε (Nasr et al., Bonferroni-corrected
// over the thresholds scanned, at the configured confidence). ROC points go
// to results/membership/roc/.
func (a *Activities) MembershipSuite(ctx context.Context, in SuiteInput) (SuiteResult, error) {
	mc := in.Membership
	if mc == nil {
		return SuiteResult{}, badInput("membership suite: no suites.membership config")
	}
	client, meta, err := a.oip(ctx, in)
	if err != nil {
		return SuiteResult{}, err
	}
	inputs := inputNames(meta)
	members, memberLabels, err := a.readRecords(ctx, "suites.membership.members", mc.Members, inputs, mc.LabelColumn, mc.LabelValues)
	if err != nil {
		return SuiteResult{}, err
	}
	nonMembers, nonMemberLabels, err := a.readRecords(ctx, "suites.membership.non_members", mc.NonMembers, inputs, mc.LabelColumn, mc.LabelValues)
	if err != nil {
		return SuiteResult{}, err
	}
	if err := tableio.CheckSameSchema(members, nonMembers, mc.Members, mc.NonMembers); err != nil {
		return SuiteResult{}, badInput("suites.membership: %v", err)
	}
	memberProbs, st1, err := client.PredictTable(ctx, members)
	if err != nil {
		return SuiteResult{}, fmt.Errorf("score members: %w", err)
	}
	nonMemberProbs, st2, err := client.PredictTable(ctx, nonMembers)
	if err != nil {
		return SuiteResult{}, fmt.Errorf("score non-members: %w", err)
	}
	memberStats, err := privacy.StatsFromProbs(memberProbs, memberLabels)
	if err != nil {
		return SuiteResult{}, badInput("member scores from %s: %v", mc.Members, err)
	}
	nonMemberStats, err := privacy.StatsFromProbs(nonMemberProbs, nonMemberLabels)
	if err != nil {
		return SuiteResult{}, badInput("non-member scores from %s: %v", mc.NonMembers, err)
	}

	files, err := a.newSuiteFiles(in.ReleaseID, SuiteMembership, in.Seed)
	if err != nil {
		return SuiteResult{}, err
	}
	res := SuiteResult{Suite: SuiteMembership, Metrics: map[string]float64{}, Queries: st1.Rows + st2.Rows}
	table := audit.Table{Title: "Attack statistics (higher score ⇒ member)", Columns: []string{"statistic", "AUC", "TPR @ FPR ≤ 0.1%", "TPR @ FPR ≤ 1%"}}
	var rocRows []privacy.ROCRow
	var best struct {
		stat         privacy.Statistic
		auc, t01, t1 float64
	}
	var epsScores [2][]float64
	liraNote := ""
	for _, stat := range []privacy.Statistic{privacy.StatConfidence, privacy.StatLoss, privacy.StatLogit, privacy.StatHinge} {
		ms, err := privacy.AttackScores(memberStats, stat)
		if err != nil {
			return SuiteResult{}, err
		}
		ns, err := privacy.AttackScores(nonMemberStats, stat)
		if err != nil {
			return SuiteResult{}, err
		}
		if err := privacy.ValidateScores("member", mc.Members, string(stat), ms); err != nil {
			return SuiteResult{}, badInput("%v", err)
		}
		if err := privacy.ValidateScores("non-member", mc.NonMembers, string(stat), ns); err != nil {
			return SuiteResult{}, badInput("%v", err)
		}
		roc, err := privacy.NewROC(ms, ns)
		if err != nil {
			return SuiteResult{}, err
		}
		auc := roc.AUC()
		p01, err := roc.TPRAtFPR(1e-3)
		if err != nil {
			return SuiteResult{}, err
		}
		p1, err := roc.TPRAtFPR(1e-2)
		if err != nil {
			return SuiteResult{}, err
		}
		pts, err := roc.Thin(200)
		if err != nil {
			return SuiteResult{}, err
		}
		rocRows = append(rocRows, roc.Rows(in.ReleaseID, string(stat), pts)...)
		table.Rows = append(table.Rows, []string{string(stat), fmt.Sprintf("%.4f", auc), fmt.Sprintf("%.4f", p01.TPR), fmt.Sprintf("%.4f", p1.TPR)})
		res.Metrics["privacy.mia.auc."+string(stat)] = auc
		if best.stat == "" || auc > best.auc {
			best.stat, best.auc, best.t01, best.t1 = stat, auc, p01.TPR, p1.TPR
		}
		if stat == epsilonStatistic {
			epsScores = [2][]float64{ms, ns}
		}
	}
	if mc.Shadows > 0 {
		pool := members
		pool.Append(nonMembers)
		target := make([]float64, 0, len(memberStats)+len(nonMemberStats))
		for _, st := range append(append([]privacy.MIAStats(nil), memberStats...), nonMemberStats...) {
			target = append(target, st.Logit)
		}
		scores, ok, err := liraScores(ctx, in.Recipe, mc.Shadows, in.Seed, pool, append(append([]int(nil), memberLabels...), nonMemberLabels...), target)
		if err != nil {
			return SuiteResult{}, err
		}
		if ok {
			ms, ns := scores[:len(memberStats)], scores[len(memberStats):]
			roc, err := privacy.NewROC(ms, ns)
			if err != nil {
				return SuiteResult{}, err
			}
			p01, _ := roc.TPRAtFPR(1e-3)
			p1, _ := roc.TPRAtFPR(1e-2)
			pts, _ := roc.Thin(200)
			rocRows = append(rocRows, roc.Rows(in.ReleaseID, "lira_offline", pts)...)
			table.Rows = append(table.Rows, []string{"LiRA offline (one-sided, " + strconv.Itoa(mc.Shadows) + " shadow models)", fmt.Sprintf("%.4f", roc.AUC()), fmt.Sprintf("%.4f", p01.TPR), fmt.Sprintf("%.4f", p1.TPR)})
			res.Metrics["privacy.mia.auc.lira"] = roc.AUC()
			res.Metrics["privacy.mia.tpr_at_fpr_1e-3.lira"] = p01.TPR
			if roc.AUC() > best.auc {
				best.stat, best.auc, best.t01, best.t1 = "lira_offline", roc.AUC(), p01.TPR, p1.TPR
			}
		} else {
			liraNote = "LiRA not run: the model publishes no training recipe sandgate can reproduce (only the bundled reference scorers do)."
		}
	}
	// The ROC's first point has threshold +Inf, which Parquet stores but
	// JSON-minded readers may not: keep it, it is the curve's origin.
	if err := writeTable(ctx, files, "roc", rocRows); err != nil {
		return SuiteResult{}, err
	}
	eps, err := privacy.ScanEpsilon(epsScores[0], epsScores[1], privacy.ScanOptions{Alpha: mc.Alpha, Delta: mc.Delta, MaxThresholds: maxEpsilonThresholds})
	if err != nil {
		return SuiteResult{}, fmt.Errorf("ε lower bound: %w", err)
	}
	res.Metrics["privacy.mia.auc"] = best.auc
	res.Metrics["privacy.mia.tpr_at_fpr_1e-3"] = best.t01
	res.Metrics["privacy.mia.tpr_at_fpr_1e-2"] = best.t1
	res.Metrics["privacy.epsilon_lb"] = eps.Epsilon
	res.Metrics["privacy.epsilon_lb.confidence"] = eps.Confidence
	res.Metrics["privacy.epsilon_lb.thresholds_scanned"] = float64(eps.ThresholdsScanned)

	res.ManifestKey, res.Rows, err = files.finish(ctx)
	if err != nil {
		return SuiteResult{}, err
	}
	findings := privacy.AuditFindings{AUC: best.auc, TPRAt01: best.t01, TPRAt1: best.t1, Epsilon: eps, Attack: string(epsilonStatistic) + " threshold"}
	// A model that publishes a DP guarantee (OIP metadata parameters
	// dp_epsilon, dp_delta) gets the claim checked: a sound guarantee can
	// never be below a valid lower bound.
	claimNote := ""
	if claimed, ok := numberParam(meta.Parameters, "dp_epsilon"); ok {
		findings.TheoreticalEpsilon = claimed
		findings.TheoreticalDelta, _ = numberParam(meta.Parameters, "dp_delta")
		res.Metrics["privacy.epsilon_claimed"] = claimed
		if eps.Epsilon > claimed {
			claimNote = fmt.Sprintf("The model claims ε = %.3g, but the audit shows ε ≥ %.3g: the claim is false.", claimed, eps.Epsilon)
		} else {
			claimNote = fmt.Sprintf("The model claims ε = %.3g (δ = %g; %v); the audited lower bound %.3g does not contradict it.", claimed, findings.TheoreticalDelta, meta.Parameters["dp_accounting"], eps.Epsilon)
		}
	}
	epsLine := fmt.Sprintf("ε ≥ %.3f with %.0f%% confidence at δ = %g (%s over %d thresholds of the %s statistic; %d members, %d non-members).",
		eps.Epsilon, 100*eps.Confidence, eps.Delta, eps.Correction, eps.ThresholdsScanned, epsilonStatistic, len(memberLabels), len(nonMemberLabels))
	res.Section = audit.SuiteSection{
		Name:    SuiteMembership,
		Summary: fmt.Sprintf("Membership inference: best AUC %.3f (%s); empirical %s", best.auc, best.stat, epsLine),
		Metrics: res.Metrics,
		Notes:   nonEmpty(privacy.Explain(findings), epsLine, claimNote, liraNote, "TPR at a target FPR is read at the lowest threshold whose FPR ≤ the target, without interpolation (ml_privacy_meter)."),
		Tables:  []audit.Table{table},
	}
	return res, nil
}

func numberParam(p map[string]any, name string) (float64, bool) {
	switch v := p[name].(type) {
	case float64:
		return v, !math.IsNaN(v) && v > 0
	case string:
		f, err := strconv.ParseFloat(v, 64)
		return f, err == nil && f > 0
	}
	return 0, false
}

// readRecords reads a member or non-member set: the model's inputs and
// the true class of each record.
func (a *Activities) readRecords(ctx context.Context, field, ref string, inputs []string, labelColumn string, labelValues map[string]int) (modelapi.Table, []int, error) {
	key, err := a.objectKey(field, ref)
	if err != nil {
		return modelapi.Table{}, nil, err
	}
	local, cleanup, err := a.tempFile("records-*.parquet")
	if err != nil {
		return modelapi.Table{}, nil, err
	}
	defer cleanup()
	if _, err := a.Store.Download(ctx, key, local); err != nil {
		return modelapi.Table{}, nil, badInput("%s: cannot read %s from the release bucket: %v", field, key, err)
	}
	t, err := tableio.ReadFile(ctx, local, tableio.Options{Columns: inputs})
	if err != nil {
		return t, nil, badInput("%s (%s): %v; the model's inputs are %s", field, key, err, strings.Join(inputs, ", "))
	}
	if t.Len() == 0 {
		return t, nil, badInput("%s: %s has no rows; membership inference needs records", field, key)
	}
	lt, err := tableio.ReadFile(ctx, local, tableio.Options{Columns: []string{labelColumn}})
	if err != nil {
		return t, nil, badInput("%s (%s): label column: %v", field, key, err)
	}
	col := lt.Columns[0]
	labels := make([]int, t.Len())
	for i := range labels {
		v := text(col, i)
		if idx, ok := labelValues[v]; ok {
			labels[i] = idx
			continue
		}
		switch strings.ToLower(v) {
		case "false", "0":
			labels[i] = 0
		case "true", "1":
			labels[i] = 1
		default:
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > math.MaxInt32 {
				return t, nil, badInput("%s (%s): column %s row %d is %q; map it to a class index with suites.membership.label_values", field, key, labelColumn, i, v)
			}
			labels[i] = n
		}
	}
	return t, labels, nil
}

// objectKey accepts an object key in the release bucket or an
// s3://<bucket>/<key> URL naming that bucket.
func (a *Activities) objectKey(field, ref string) (string, error) {
	rest, ok := strings.CutPrefix(ref, "s3://")
	if !ok {
		return strings.TrimPrefix(ref, "/"), nil
	}
	bucket, key, _ := strings.Cut(rest, "/")
	if bucket != a.Store.Bucket() || key == "" {
		return "", badInput("%s: %s is not in the release bucket %q; copy it there or give its key", field, ref, a.Store.Bucket())
	}
	return key, nil
}

func nonEmpty(xs ...string) []string {
	var out []string
	for _, x := range xs {
		if x != "" {
			out = append(out, x)
		}
	}
	return out
}
