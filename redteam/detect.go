package redteam

import (
	"fmt"
	"slices"

	"github.com/sandgate/sandgate/datasets"
)

// Finding kinds: what a detector found. The leak kinds double as the kinds of
// the privacy stage (system_prompt, secret, canary, pii).
const (
	KindRefusal      = "refusal"
	KindSystemPrompt = "system_prompt"
	KindSecret       = "secret"
	KindCanary       = "canary"
	KindPII          = "pii"
	KindUnsafe       = "unsafe_output"
	KindMarker       = "marker"
	KindAnswer       = "answer"
	KindHarmful      = "harmful_advice"
)

// Goals an attack can have, re-exported from datasets so the judge and the
// generator cannot drift apart.
const (
	GoalLeakSystemPrompt = datasets.GoalLeakSystemPrompt
	GoalLeakSecret       = datasets.GoalLeakSecret
	GoalLeakPII          = datasets.GoalLeakPII
	GoalEmitMarker       = datasets.GoalEmitMarker
	GoalUnsafeOutput     = datasets.GoalUnsafeOutput
	GoalFalsePremise     = datasets.GoalFalsePremise
	GoalRobustness       = datasets.GoalRobustness
	GoalHarmfulAdvice    = datasets.GoalHarmfulAdvice
)

// Target is what the model under test was given and must not give away.
type Target struct {
	SystemPrompt string   `json:"system_prompt"`
	Secrets      []string `json:"secrets,omitempty"`
	Canaries     []string `json:"canaries,omitempty"` // planted records, e.g. "Jane Roe, jane.roe@example.org, +1-555-0100"
}

// Input is everything a detector may look at for one attempt. Prompt is
// there so detectors can ignore text the attacker supplied and the model
// merely echoed.
type Input struct {
	Target Target
	Prompt datasets.PromptRow
	Reply  string

	memo *foldMemo // set by Registry.Judge/Detect; nil folds afresh
}

// Finding is one detector hit.
type Finding struct {
	Kind     string `json:"kind"`
	Detector string `json:"detector"`
	Evidence string `json:"evidence"` // ≤ MaxEvidence bytes, valid UTF-8
}

// Detector is one garak-style detector plugin. Detect must be safe for
// concurrent use and must not panic on any reply.
type Detector interface {
	Name() string // "<family>.<Class>", e.g. "leak.SystemPrompt"
	Kind() string // one of the Kind constants
	Detect(in Input) (Finding, bool)
}

// Registry is an immutable, ordered set of detectors. It is a value built by
// DefaultDetectors or NewRegistry rather than a package-level table so tests
// and releases can run different detector sets side by side.
type Registry struct {
	dets   []Detector
	shared *sharedMemo
}

// NewRegistry builds a registry; names must be unique and non-empty.
func NewRegistry(ds ...Detector) (*Registry, error) {
	seen := make(map[string]bool, len(ds))
	for i, d := range ds {
		if d == nil {
			return nil, fmt.Errorf("redteam: detector %d is nil", i)
		}
		n := d.Name()
		if n == "" {
			return nil, fmt.Errorf("redteam: detector %d (%T) has an empty name", i, d)
		}
		if seen[n] {
			return nil, fmt.Errorf("redteam: detector name %q registered twice", n)
		}
		seen[n] = true
	}
	return &Registry{dets: slices.Clone(ds), shared: &sharedMemo{}}, nil
}

// DefaultDetectors returns the standard detector set with default settings.
func DefaultDetectors() *Registry {
	r, err := NewRegistry(
		Refusal{},
		SystemPromptLeak{},
		SecretLeak{},
		CanaryLeak{},
		Email{}, Phone{}, CardNumber{}, IBAN{}, SSN{},
		UnsafeOutput{},
		MarkerPresent{},
		KnownAnswer{},
		HarmfulAdvice{},
		Toxicity{},
		NationalID{},
	)
	if err != nil {
		panic(err) // static list; a duplicate is a programming error caught by tests
	}
	return r
}

// With returns a new registry with ds added (or replacing same-named ones).
func (r *Registry) With(ds ...Detector) (*Registry, error) {
	out := make([]Detector, 0, len(r.dets)+len(ds))
	for _, d := range r.dets {
		if !slices.ContainsFunc(ds, func(n Detector) bool { return n != nil && n.Name() == d.Name() }) {
			out = append(out, d)
		}
	}
	return NewRegistry(append(out, ds...)...)
}

// Names lists detector names in evaluation order.
func (r *Registry) Names() []string {
	out := make([]string, len(r.dets))
	for i, d := range r.dets {
		out[i] = d.Name()
	}
	return out
}

// Lookup finds a detector by name.
func (r *Registry) Lookup(name string) (Detector, bool) {
	for _, d := range r.dets {
		if d.Name() == name {
			return d, true
		}
	}
	return nil, false
}

// Detect runs every detector of the given kinds (all when none given) and
// returns their findings in registry order.
func (r *Registry) Detect(in Input, kinds ...string) []Finding {
	if in.memo == nil {
		in.memo = newFoldMemo(r.shared)
	}
	var out []Finding
	for _, d := range r.dets {
		if len(kinds) > 0 && !slices.Contains(kinds, d.Kind()) {
			continue
		}
		if f, ok := d.Detect(in); ok {
			out = append(out, f)
		}
	}
	return out
}

// first returns the first finding among detectors of one kind.
func (r *Registry) first(in Input, kind string) (Finding, bool) {
	for _, d := range r.dets {
		if d.Kind() != kind {
			continue
		}
		if f, ok := d.Detect(in); ok {
			return f, true
		}
	}
	return Finding{}, false
}
