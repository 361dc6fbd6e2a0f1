package fairness

import (
	"context"
	"fmt"
	"math"
	"testing"
)

// FuzzEvaluate builds frames from arbitrary bytes (label, decision, group
// per row) and checks that Evaluate either refuses them or returns metrics
// inside their mathematical ranges — never a panic, NaN or out-of-range value.
func FuzzEvaluate(f *testing.F) {
	f.Add([]byte{0, 1, 2, 1, 1, 0, 0, 0, 1, 1, 0, 2}, uint8(1))
	f.Add([]byte{3}, uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, minN uint8) {
		var fr Frame
		fr.Protected = map[string][]string{"g": nil}
		for i := 0; i+2 < len(data); i += 3 {
			fr.YTrue = append(fr.YTrue, int(data[i]%3)) // 2 is invalid on purpose
			fr.YPred = append(fr.YPred, int(data[i+1]%2))
			fr.Protected["g"] = append(fr.Protected["g"], fmt.Sprint(data[i+2]%4))
		}
		rep, err := Evaluate(context.Background(), fr, Config{Privileged: map[string]string{"g": "0"}, MinGroupSize: int(minN % 5)})
		if err != nil {
			return
		}
		for k, v := range rep.Summary.Metrics {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("%s = %v", k, v)
			}
			switch baseName(k) {
			case "demographic_parity_difference", "demographic_parity_ratio", "equal_opportunity_difference",
				"equalized_odds_difference", "equalized_odds_ratio", "disparity_tolerance_pass":
				if v < 0 || v > 1 {
					t.Fatalf("%s = %v, want in [0, 1]", k, v)
				}
			case "statistical_parity_difference", "equal_opportunity_difference_aif360", "average_odds_difference":
				if v < -1 || v > 1 {
					t.Fatalf("%s = %v, want in [−1, 1]", k, v)
				}
			}
		}
	})
}
