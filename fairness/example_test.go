package fairness_test

import (
	"context"
	"fmt"

	"github.com/sandgate/sandgate/fairness"
)

func ExampleEvaluate() {
	f := fairness.Frame{
		YTrue: []int{1, 0, 1, 1, 0, 1, 0, 0},
		YPred: []int{1, 0, 1, 1, 0, 1, 1, 0},
		Protected: map[string][]string{
			"sex": {"m", "m", "m", "m", "f", "f", "f", "f"},
		},
	}
	rep, err := fairness.Evaluate(context.Background(), f, fairness.Config{
		Privileged:   map[string]string{"sex": "m"},
		MinGroupSize: 4,
	})
	if err != nil {
		panic(err)
	}
	m := rep.Summary.Metrics
	fmt.Printf("demographic parity difference %.2f\n", m["fairness.demographic_parity_difference.sex"])
	fmt.Printf("disparate impact ratio %.3f\n", m["fairness.disparate_impact_ratio.sex"])
	fmt.Printf("aequitas pass %v\n", rep.Sets[0].DisparityTolerancePass)
	// Output:
	// demographic parity difference 0.25
	// disparate impact ratio 0.667
	// aequitas pass false
}
