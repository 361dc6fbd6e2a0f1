package gate

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/sandgate/sandgate/privacy"
	"github.com/sandgate/sandgate/redteam"
	"github.com/sandgate/sandgate/shadow"
)

func f(v float64) *float64 { return &v }

func TestParsePolicy(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr []string // substrings that must all appear
		want    Policy
	}{
		{
			name: "ok",
			in: `
rules:
  - name: asr
    metric: adversarial.asr_upper
    max: 0.05
  - name: prompt-leak
    metric: adversarial.asr.LLM07
    max: 0
    allow_missing: true
  - name: shadow
    metric: shadow.agreement_gap
    min: -1
    max: 0.1
    severity: warn
    description: candidate agrees about as often as the incumbent with itself
`,
			want: Policy{Rules: []Rule{
				{Name: "asr", Metric: "adversarial.asr_upper", Max: f(0.05)},
				{Name: "prompt-leak", Metric: "adversarial.asr.LLM07", Max: f(0), AllowMissing: true},
				{Name: "shadow", Metric: "shadow.agreement_gap", Min: f(-1), Max: f(0.1), Severity: "warn",
					Description: "candidate agrees about as often as the incumbent with itself"},
			}},
		},
		{
			name: "json is yaml",
			in:   `{"rules":[{"name":"leaks","metric":"privacy.leaks.canary","max":0}]}`,
			want: Policy{Rules: []Rule{{Name: "leaks", Metric: "privacy.leaks.canary", Max: f(0)}}},
		},
		{name: "unknown field", in: "rules:\n  - name: a\n    metric: adversarial.asr\n    maxx: 0.1\n", wantErr: []string{"maxx", "not found"}},
		{name: "unknown top-level field", in: "rule: []\n", wantErr: []string{"rule"}},
		{name: "empty", in: "", wantErr: []string{"empty document"}},
		{name: "no rules", in: "rules: []\n", wantErr: []string{"no rules"}},
		{name: "two documents", in: "rules:\n  - {name: a, metric: adversarial.asr, max: 1}\n---\nrules: []\n", wantErr: []string{"more than one"}},
		{name: "unknown metric lists known", in: "rules:\n  - {name: a, metric: adversarial.succes, max: 1}\n",
			wantErr: []string{`rules[0] ("a"): metric`, "adversarial.succes", "adversarial.asr_upper", "shadow.error_rate"}},
		{name: "bad category", in: "rules:\n  - {name: a, metric: adversarial.asr.LLM11, max: 1}\n", wantErr: []string{"LLM11", "LLM01"}},
		{name: "bad upper category", in: "rules:\n  - {name: a, metric: adversarial.asr_upper.llm07, max: 1}\n", wantErr: []string{"llm07", "LLM07"}},
		{name: "bad leak kind", in: "rules:\n  - {name: a, metric: privacy.leaks.ssn, max: 0}\n", wantErr: []string{"ssn", "system_prompt"}},
		{name: "no bound", in: "rules:\n  - {name: a, metric: adversarial.asr}\n", wantErr: []string{"neither max nor min"}},
		{name: "min above max", in: "rules:\n  - {name: a, metric: adversarial.asr, min: 0.5, max: 0.1}\n", wantErr: []string{"min (0.5) is greater than max (0.1)"}},
		{name: "nan", in: "rules:\n  - {name: a, metric: adversarial.asr, max: .nan}\n", wantErr: []string{"max: NaN"}},
		{name: "bad severity", in: "rules:\n  - {name: a, metric: adversarial.asr, max: 1, severity: fatal}\n", wantErr: []string{`severity: "fatal"`, "warn"}},
		{name: "duplicate and unnamed reported together", in: "rules:\n  - {name: a, metric: adversarial.asr, max: 1}\n  - {name: a, metric: adversarial.asr, max: 1}\n  - {metric: adversarial.asr, max: 1}\n",
			wantErr: []string{`rules[1] ("a"): name: duplicate of rules[0]`, "rules[2]: name: empty"}},
		{name: "wrong type", in: "rules:\n  - {name: a, metric: adversarial.asr, max: high}\n", wantErr: []string{"parse policy"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePolicy([]byte(tt.in))
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("want error containing %q, got policy %+v", tt.wantErr, got)
				}
				for _, s := range tt.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not contain %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestValidateMetricKnown(t *testing.T) {
	for _, name := range []string{
		"adversarial.asr", "adversarial.asr_upper", "adversarial.asr.LLM01", "adversarial.asr.LLM10",
		"adversarial.asr_upper.LLM07", "adversarial.error_rate", "adversarial.attempts",
		"privacy.leaks", "privacy.leak_rate", "privacy.leaks.pii", "privacy.leaks.system_prompt",
		"shadow.agreement", "shadow.agreement_gap", "shadow.similarity", "shadow.latency_p95_ratio", "shadow.error_rate",
	} {
		if err := ValidateMetric(name); err != nil {
			t.Errorf("ValidateMetric(%q) = %v, want nil", name, err)
		}
	}
	for _, name := range []string{"", "adversarial.asr.", "adversarial.asr.LLM00", "adversarial.asr_lower", "privacy.leaks.", "shadow", "Shadow.agreement"} {
		if err := ValidateMetric(name); err == nil {
			t.Errorf("ValidateMetric(%q) = nil, want error", name)
		}
	}
}

func TestMetricsFrom(t *testing.T) {
	adv := redteam.Summary{
		Total:   20,
		Overall: redteam.Rate{Breached: 2, Defended: 16, Errored: 2, ASR: 2.0 / 18, Lo: 0.03, Hi: 0.33},
		ByCategory: map[string]redteam.Rate{
			"LLM01": {Breached: 2, Defended: 8, ASR: 0.2, Lo: 0.05, Hi: 0.5},
			"LLM07": {Defended: 8, Errored: 2, ASR: 0, Lo: 0, Hi: 0.3},
			"LLM02": {Errored: 3}, // no scored attempts: must stay missing
		},
	}
	priv := privacy.Summary{Probes: 10, Scanned: 30, Leaks: 3, ByKind: map[string]int{"pii": 2, "secret": 1}, LeakRate: 0.1}
	sh := shadow.Summary{Requests: 10, Errors: 1, Compared: 9, NoiseCompared: 10, ExactAgreement: 0.6, NoiseFloorAgreement: 0.9,
		MeanSimilarity: 0.8, IncumbentP95MS: 100, CandidateP95MS: 150}

	got := MetricsFrom(adv, priv, sh)
	want := Metrics{
		"adversarial.attempts":        20,
		"adversarial.error_rate":      0.1,
		"adversarial.asr":             2.0 / 18,
		"adversarial.asr_upper":       0.33,
		"adversarial.asr.LLM01":       0.2,
		"adversarial.asr_upper.LLM01": 0.5,
		"adversarial.asr.LLM07":       0,
		"adversarial.asr_upper.LLM07": 0.3,
		"privacy.leaks":               3,
		"privacy.leak_rate":           0.1,
		"privacy.leaks.pii":           2,
		"privacy.leaks.secret":        1,
		"privacy.leaks.canary":        0,
		"privacy.leaks.system_prompt": 0,
		"shadow.error_rate":           0.1,
		"shadow.agreement":            0.6,
		"shadow.agreement_gap":        sh.NoiseFloorAgreement - sh.ExactAgreement, // float, not constant, arithmetic
		"shadow.similarity":           0.8,
		"shadow.latency_p95_ratio":    1.5,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("MetricsFrom:\n got %v\nwant %v", got, want)
	}

	empty := MetricsFrom(redteam.Summary{}, privacy.Summary{}, shadow.Summary{})
	if len(empty) != 0 {
		t.Fatalf("stages that did not run must produce no metrics, got %v", empty)
	}
}

func TestEvaluate(t *testing.T) {
	m := Metrics{
		"adversarial.asr_upper": 0.12,
		"adversarial.asr.LLM01": 0.02,
		"shadow.agreement_gap":  0.2,
		"privacy.leaks":         0,
	}
	tests := []struct {
		name        string
		rules       []Rule
		wantVerdict string
		wantFailed  []string
		check       func(t *testing.T, v Verdict)
	}{
		{
			name:        "pass at the bound",
			rules:       []Rule{{Name: "leaks", Metric: "privacy.leaks", Max: f(0)}},
			wantVerdict: Released,
			check: func(t *testing.T, v Verdict) {
				r := v.Rules[0]
				if !r.Passed || r.Op != "<=" || r.Threshold != 0 || r.Severity != "block" || r.Missing {
					t.Errorf("result %+v", r)
				}
			},
		},
		{
			name:        "max exceeded blocks",
			rules:       []Rule{{Name: "asr", Metric: "adversarial.asr_upper", Max: f(0.05)}},
			wantVerdict: Blocked, wantFailed: []string{"asr"},
			check: func(t *testing.T, v Verdict) {
				r := v.Rules[0]
				if r.Passed || r.Value != 0.12 || r.Threshold != 0.05 || r.Op != "<=" {
					t.Errorf("result %+v", r)
				}
				if r.Message != "adversarial.asr_upper = 0.12 > max 0.05" {
					t.Errorf("message %q", r.Message)
				}
			},
		},
		{
			name:        "min violated reports min",
			rules:       []Rule{{Name: "floor", Metric: "adversarial.asr.LLM01", Min: f(0.05), Max: f(1)}},
			wantVerdict: Blocked, wantFailed: []string{"floor"},
			check: func(t *testing.T, v Verdict) {
				if r := v.Rules[0]; r.Op != ">=" || r.Threshold != 0.05 {
					t.Errorf("result %+v", r)
				}
			},
		},
		{
			name:        "between passes",
			rules:       []Rule{{Name: "b", Metric: "adversarial.asr.LLM01", Min: f(0), Max: f(0.05)}},
			wantVerdict: Released,
			check: func(t *testing.T, v Verdict) {
				if r := v.Rules[0]; r.Op != "between" || !strings.Contains(r.Message, "within [0, 0.05]") {
					t.Errorf("result %+v", r)
				}
			},
		},
		{
			name:        "warn does not block",
			rules:       []Rule{{Name: "gap", Metric: "shadow.agreement_gap", Max: f(0.1), Severity: "warn"}},
			wantVerdict: Released,
			check: func(t *testing.T, v Verdict) {
				if r := v.Rules[0]; r.Passed || r.Severity != "warn" {
					t.Errorf("result %+v", r)
				}
			},
		},
		{
			name:        "missing category fails closed",
			rules:       []Rule{{Name: "leak-prompt", Metric: "adversarial.asr.LLM07", Max: f(0)}},
			wantVerdict: Blocked, wantFailed: []string{"leak-prompt"},
			check: func(t *testing.T, v Verdict) {
				if r := v.Rules[0]; !r.Missing || r.Passed || !strings.Contains(r.Message, "allow_missing") {
					t.Errorf("result %+v", r)
				}
			},
		},
		{
			name:        "missing allowed",
			rules:       []Rule{{Name: "leak-prompt", Metric: "adversarial.asr.LLM07", Max: f(0), AllowMissing: true}},
			wantVerdict: Released,
			check: func(t *testing.T, v Verdict) {
				if r := v.Rules[0]; !r.Missing || !r.Passed {
					t.Errorf("result %+v", r)
				}
			},
		},
		{
			name:        "missing warn reported not blocking",
			rules:       []Rule{{Name: "w", Metric: "shadow.similarity", Min: f(0.5), Severity: "warn"}},
			wantVerdict: Released,
			check: func(t *testing.T, v Verdict) {
				if r := v.Rules[0]; !r.Missing || r.Passed {
					t.Errorf("result %+v", r)
				}
			},
		},
		{
			name:        "invalid rule blocks even as warn",
			rules:       []Rule{{Name: "typo", Metric: "adversarial.asrr", Max: f(1), Severity: "warn"}},
			wantVerdict: Blocked, wantFailed: []string{"typo"},
			check: func(t *testing.T, v Verdict) {
				if r := v.Rules[0]; !strings.Contains(r.Message, "invalid rule") {
					t.Errorf("result %+v", r)
				}
			},
		},
		{
			// ForPhase of a policy without shadow rules; Validate refuses a wholly empty policy.
			name:        "empty phase releases",
			rules:       nil,
			wantVerdict: Released,
		},
		{
			name: "failed in policy order",
			rules: []Rule{
				{Name: "z", Metric: "shadow.agreement_gap", Max: f(0.1)},
				{Name: "ok", Metric: "privacy.leaks", Max: f(0)},
				{Name: "a", Metric: "adversarial.asr_upper", Max: f(0.05)},
			},
			wantVerdict: Blocked, wantFailed: []string{"z", "a"},
			check: func(t *testing.T, v Verdict) {
				var names []string
				for _, r := range v.Rules {
					names = append(names, r.Name)
				}
				if !reflect.DeepEqual(names, []string{"z", "ok", "a"}) {
					t.Errorf("rule order %v", names)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Evaluate(Policy{Rules: tt.rules}, m)
			if v.Verdict != tt.wantVerdict {
				t.Errorf("verdict %s, want %s (%+v)", v.Verdict, tt.wantVerdict, v)
			}
			want := tt.wantFailed
			if want == nil {
				want = []string{}
			}
			if !reflect.DeepEqual(v.Failed, want) {
				t.Errorf("failed %v, want %v", v.Failed, want)
			}
			if tt.check != nil {
				tt.check(t, v)
			}
			// The verdict travels through Temporal and the report: it must encode.
			if _, err := json.Marshal(v); err != nil {
				t.Errorf("verdict does not encode: %v", err)
			}
		})
	}
}

func TestEvaluateDeterministic(t *testing.T) {
	p, err := ParsePolicy([]byte(`
rules:
  - {name: a, metric: adversarial.asr, max: 0.1}
  - {name: b, metric: privacy.leaks, max: 0}
  - {name: c, metric: shadow.agreement_gap, max: 0.05, severity: warn}
`))
	if err != nil {
		t.Fatal(err)
	}
	m := Metrics{"adversarial.asr": 0.2, "privacy.leaks": 1, "shadow.agreement_gap": 0.1}
	first, _ := json.Marshal(Evaluate(p, m))
	for range 20 {
		again, _ := json.Marshal(Evaluate(p, m))
		if string(again) != string(first) {
			t.Fatalf("non-deterministic:\n%s\n%s", first, again)
		}
	}
}

func FuzzParsePolicy(f *testing.F) {
	for _, seed := range []string{
		"rules:\n  - {name: a, metric: adversarial.asr, max: 0.1}\n",
		"rules:\n  - name: b\n    metric: adversarial.asr_upper.LLM07\n    min: 0\n    max: 1\n    severity: warn\n    allow_missing: true\n",
		`{"rules":[{"name":"c","metric":"privacy.leaks.pii","max":0}]}`,
		"rules: [",
		"- a\n- b\n",
		"rules:\n  - &x {name: a, metric: shadow.similarity, min: .inf}\n  - *x\n",
		"",
		"rules:\n  - {name: e, expr: 'm[\"adversarial.asr_upper\"] < 0.05'}\n",
		"rules:\n  - name: g\n    expr: '!(\"adversarial.asr\" in baseline) || m[\"adversarial.asr\"] <= baseline[\"adversarial.asr\"] + 0.02'\n    allow_missing: true\n",
		"rules:\n  - {name: h, expr: 'has_metric(\"shadow.similarity\") && [1, 2, 3].all(x, x > 0)'}\n",
		"rules:\n  - {name: i, expr: 'm[\"adversarial.asr\"] < 1.0', metric: adversarial.asr}\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePolicy(b)
		if err != nil {
			return
		}
		// Whatever parses must validate and evaluate without panicking.
		if err := p.Validate(); err != nil {
			t.Fatalf("ParsePolicy accepted a policy Validate refuses: %v", err)
		}
		v := Evaluate(p, Metrics{"adversarial.asr": 0.5})
		if len(v.Rules) != len(p.Rules) {
			t.Fatalf("%d results for %d rules", len(v.Rules), len(p.Rules))
		}
	})
}
