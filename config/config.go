// Package config parses and validates a release config (YAML).
//
// Parsing is strict: an unknown field, a value of the wrong type or a missing
// required field is refused before anything starts, with an error that names
// the field by its path (e.g. "model.sandbox.command") and says how to fix it.
package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/sandgate/sandgate/gate"
	"github.com/sandgate/sandgate/sandbox"
	"github.com/sandgate/sandgate/shadow"
)

// APIVersion is the only config version this build understands.
const APIVersion = "sandgate.dev/v1"

// Release is a release config: which model to test, how to run it, what to
// test it with and the policy that decides.
type Release struct {
	APIVersion string      `yaml:"apiVersion" json:"apiVersion"`
	Kind       string      `yaml:"kind" json:"kind"`
	Model      Model       `yaml:"model" json:"model"`
	Incumbent  *Model      `yaml:"incumbent,omitempty" json:"incumbent,omitempty"`
	Seed       uint64      `yaml:"seed" json:"seed"`
	Suites     Suites      `yaml:"suites" json:"suites"`
	Gate       gate.Policy `yaml:"gate" json:"gate"`
	Approval   Approval    `yaml:"approval,omitempty" json:"approval,omitempty"`
}

// Approval says when a release waits for a human. By default it does not:
// a passing release is released and a blocked one ends blocked at once, so
// CI gets its exit code without anyone at the keyboard.
type Approval struct {
	// Required makes a release that passed its gates wait for
	// `starter release approve` (or reject) before it is released.
	Required bool `yaml:"required,omitempty" json:"required,omitempty"`
	// Timeout bounds the wait for approval; no decision by then blocks the release.
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// OverrideWindow keeps a blocked release open this long for
	// `starter release override --reason …`; zero ends it blocked at once.
	OverrideWindow Duration `yaml:"override_window,omitempty" json:"override_window,omitempty"`
}

// Model names a model version and how to run it inside the sandbox.
type Model struct {
	Name    string `yaml:"name" json:"name"`
	Version string `yaml:"version" json:"version"`
	// Type is chat (default), classifier or regressor; it decides the suites.
	Type     string `yaml:"type,omitempty" json:"type,omitempty"`
	Protocol string `yaml:"protocol" json:"protocol"`
	// OIPModel is the model's name in OIP v2 paths (/v2/models/{name}/infer);
	// it defaults to Name.
	OIPModel     string   `yaml:"oip_model,omitempty" json:"oip_model,omitempty"`
	SystemPrompt string   `yaml:"system_prompt,omitempty" json:"system_prompt,omitempty"`
	Secrets      []string `yaml:"secrets,omitempty" json:"secrets,omitempty"`
	Sandbox      Sandbox  `yaml:"sandbox" json:"sandbox"`
}

// Sandbox says how to start the model server inside the sandbox.
type Sandbox struct {
	Provider string   `yaml:"provider,omitempty" json:"provider,omitempty"`
	Command  []string `yaml:"command" json:"command"`
	Port     int      `yaml:"port" json:"port"`
	Env      []string `yaml:"env,omitempty" json:"env,omitempty"`
	Limits   Limits   `yaml:"limits,omitempty" json:"limits,omitempty"`
	Budget   Budget   `yaml:"budget,omitempty" json:"budget,omitempty"`
	Network  Network  `yaml:"network,omitempty" json:"network,omitempty"`
	Egress   Egress   `yaml:"egress,omitempty" json:"egress,omitempty"`
	// Image, Docker and Kubernetes belong to the docker and kubernetes
	// providers (config/sandbox_providers.go).
	Image      string             `yaml:"image,omitempty" json:"image,omitempty"`
	Docker     *DockerSandbox     `yaml:"docker,omitempty" json:"docker,omitempty"`
	Kubernetes *KubernetesSandbox `yaml:"kubernetes,omitempty" json:"kubernetes,omitempty"`
}

// Egress names the services the model may reach from inside its sandbox
// (a vector store, a mock payments API), through the sandbox's egress relay,
// which records every attempt; everything else stays unreachable.
type Egress struct {
	Allow []EgressRule `yaml:"allow,omitempty" json:"allow,omitempty"`
}

// EgressRule allows one service, as host:port on the worker's host.
type EgressRule struct {
	Name    string `yaml:"name,omitempty" json:"name,omitempty"`
	Address string `yaml:"address" json:"address"`
}

// Limits are the sandbox quotas.
type Limits struct {
	CPUs      float64  `yaml:"cpus,omitempty" json:"cpus,omitempty"`
	Memory    ByteSize `yaml:"memory,omitempty" json:"memory,omitempty"`
	Pids      int64    `yaml:"pids,omitempty" json:"pids,omitempty"`
	WallClock Duration `yaml:"wall_clock,omitempty" json:"wall_clock,omitempty"`
}

// Budget bounds what the harness may send through the relay.
type Budget struct {
	Requests int64    `yaml:"requests,omitempty" json:"requests,omitempty"`
	Timeout  Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// Tokens counts the model's reported usage (prompt + completion);
	// Bytes counts request and response bodies. 0 means no limit.
	Tokens int64    `yaml:"tokens,omitempty" json:"tokens,omitempty"`
	Bytes  ByteSize `yaml:"bytes,omitempty" json:"bytes,omitempty"`
}

// Network shapes the relay's traffic: a named profile (lan, wan,
// mobile-3g) and/or explicit latency, jitter and bandwidth, injected in user
// space (this kernel has no netem).
type Network struct {
	Profile   string   `yaml:"profile,omitempty" json:"profile,omitempty"`
	Latency   Duration `yaml:"latency,omitempty" json:"latency,omitempty"`
	Jitter    Duration `yaml:"jitter,omitempty" json:"jitter,omitempty"`
	Bandwidth ByteSize `yaml:"bandwidth,omitempty" json:"bandwidth,omitempty"` // bytes per second
}

// Suites configures each test stage.
type Suites struct {
	Adversarial Adversarial `yaml:"adversarial" json:"adversarial"`
	Privacy     Privacy     `yaml:"privacy,omitempty" json:"privacy,omitempty"`
	Shadow      Shadow      `yaml:"shadow,omitempty" json:"shadow,omitempty"`
	// Suites of classifiers and regressors (model.type).
	Fairness   *Fairness   `yaml:"fairness,omitempty" json:"fairness,omitempty"`
	Robustness *Robustness `yaml:"robustness,omitempty" json:"robustness,omitempty"`
	Membership *Membership `yaml:"membership,omitempty" json:"membership,omitempty"`
	// Stress ramps the request rate under network profiles (opt-in).
	Stress *Stress `yaml:"stress,omitempty" json:"stress,omitempty"`
}

// Adversarial configures the red-teaming stage.
type Adversarial struct {
	Prompts       int      `yaml:"prompts" json:"prompts"`
	Shards        int      `yaml:"shards,omitempty" json:"shards,omitempty"`
	PartSize      int      `yaml:"part_size,omitempty" json:"part_size,omitempty"`
	Concurrency   int      `yaml:"concurrency,omitempty" json:"concurrency,omitempty"`
	Families      []string `yaml:"families,omitempty" json:"families,omitempty"`
	ConverterRate *float64 `yaml:"converter_rate,omitempty" json:"converter_rate,omitempty"`
	MaxTokens     int      `yaml:"max_tokens,omitempty" json:"max_tokens,omitempty"`
	Timeout       Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	MaxRetries    int      `yaml:"max_retries,omitempty" json:"max_retries,omitempty"`
	// RateLimit and Budget are global: every shard on every worker gets
	// an equal share, so together they never exceed them.
	RateLimit *RateLimit `yaml:"rate_limit,omitempty" json:"rate_limit,omitempty"`
	Budget    *Budgets   `yaml:"budget,omitempty" json:"budget,omitempty"`
	// Adaptive attacks the model with strategies that learn from its replies.
	Adaptive *Adaptive `yaml:"adaptive,omitempty" json:"adaptive,omitempty"`
	// RegressionAlpha is the one-sided level of the per-category
	// regression test against the last released version (default 0.05).
	RegressionAlpha float64 `yaml:"regression_alpha,omitempty" json:"regression_alpha,omitempty"`
}

// RateLimit bounds the calls to the model across all workers.
type RateLimit struct {
	RequestsPerSecond float64 `yaml:"requests_per_second,omitempty" json:"requests_per_second,omitempty"`
	Burst             int     `yaml:"burst,omitempty" json:"burst,omitempty"`
	TokensPerSecond   float64 `yaml:"tokens_per_second,omitempty" json:"tokens_per_second,omitempty"`
}

// Budgets caps the whole red-teaming stage.
type Budgets struct {
	Queries int64 `yaml:"queries,omitempty" json:"queries,omitempty"`
	Tokens  int64 `yaml:"tokens,omitempty" json:"tokens,omitempty"`
}

// Adaptive configures the adaptive attackers. The search attacker needs no
// other model; pair, tap and crescendo need an attacker model on an
// OpenAI-compatible endpoint, the only other endpoint a release calls.
type Adaptive struct {
	Strategies []string `yaml:"strategies" json:"strategies"` // search, pair, tap, crescendo
	// Objectives is how many attack goals (taken from the prompt dataset)
	// each strategy pursues.
	Objectives int `yaml:"objectives,omitempty" json:"objectives,omitempty"`
	// QueriesPerObjective bounds each strategy's calls per objective.
	QueriesPerObjective int       `yaml:"queries_per_objective,omitempty" json:"queries_per_objective,omitempty"`
	Attacker            *Endpoint `yaml:"attacker,omitempty" json:"attacker,omitempty"`
}

// Endpoint names an OpenAI-compatible model the pipeline may call.
type Endpoint struct {
	URL   string `yaml:"url" json:"url"`
	Model string `yaml:"model" json:"model"`
	// APIKeyEnv names the worker environment variable holding its API key.
	APIKeyEnv string `yaml:"api_key_env,omitempty" json:"api_key_env,omitempty"`
}

// Privacy configures the leakage stage.
type Privacy struct {
	// Canaries are planted strings whose appearance in any reply is a leak.
	Canaries []string `yaml:"canaries,omitempty" json:"canaries,omitempty"`
	// Exposure measures how much more likely the model finds each planted
	// secret than random strings of its format (Carlini et al., The Secret
	// Sharer); it needs token logprobs on /v1/completions (echo).
	Exposure *Exposure `yaml:"exposure,omitempty" json:"exposure,omitempty"`
	// Extraction asks the model to continue each record's prefix greedily
	// and checks whether it reproduces the rest (/v1/completions).
	Extraction *Extraction `yaml:"extraction,omitempty" json:"extraction,omitempty"`
}

// Exposure lists the planted secrets and the size of the reference set.
type Exposure struct {
	Candidates int             `yaml:"candidates,omitempty" json:"candidates,omitempty"`
	Secrets    []PlantedSecret `yaml:"secrets" json:"secrets"`
}

// PlantedSecret is a secret planted after Prefix in the training data;
// Format is its shape: '#' a digit, '@' a lowercase letter, '^' an
// uppercase letter, anything else literal.
type PlantedSecret struct {
	ID     string `yaml:"id,omitempty" json:"id,omitempty"`
	Prefix string `yaml:"prefix" json:"prefix"`
	Format string `yaml:"format" json:"format"`
	Secret string `yaml:"secret" json:"secret"`
}

// Extraction lists the planted records to extract.
type Extraction struct {
	Records []PlantedRecord `yaml:"records" json:"records"`
	// NearThreshold: a completion within this normalised edit distance of
	// the suffix counts as near-exact (default 0.1).
	NearThreshold float64 `yaml:"near_threshold,omitempty" json:"near_threshold,omitempty"`
}

// PlantedRecord is a training record split into what an attacker knows
// (Prefix) and what must not come out (Suffix).
type PlantedRecord struct {
	ID     string `yaml:"id,omitempty" json:"id,omitempty"`
	Prefix string `yaml:"prefix" json:"prefix"`
	Suffix string `yaml:"suffix" json:"suffix"`
}

// Shadow configures the shadow comparison stage.
type Shadow struct {
	Requests    int `yaml:"requests,omitempty" json:"requests,omitempty"`
	Concurrency int `yaml:"concurrency,omitempty" json:"concurrency,omitempty"`
	// Analysis, when set, runs the shadow stage as analysis windows on
	// durable timers, decided in the style of Argo Rollouts; without it the
	// stage replays Requests once and the policy's shadow.* rules decide.
	Analysis *ShadowAnalysis `yaml:"analysis,omitempty" json:"analysis,omitempty"`
}

// ShadowAnalysis is a long shadow phase: Windows of RequestsPerWindow
// requests, Interval apart, each judged by the Spec's metrics (against the
// incumbent's own noise floor) and limits (failureLimit,
// inconclusiveLimit, consecutiveSuccessLimit, minSamples — Argo Rollouts'
// AnalysisTemplate names). A human can end it early with
// `starter release end-shadow`.
type ShadowAnalysis struct {
	RequestsPerWindow int      `yaml:"requests_per_window,omitempty" json:"requests_per_window,omitempty"`
	Interval          Duration `yaml:"interval,omitempty" json:"interval,omitempty"`
	// Replay is an S3 key of recorded traffic (Parquet request log or
	// recorder pairs); empty replays the release's prompt dataset.
	Replay string              `yaml:"replay,omitempty" json:"replay,omitempty"`
	Spec   shadow.AnalysisSpec `yaml:"spec,omitempty" json:"spec,omitempty"`
}

// Defaults fills every optional field left empty. Validate runs after it.
func (r *Release) Defaults() {
	// An incumbent is the same kind of model as the candidate unless it says otherwise.
	if r.Incumbent != nil && r.Incumbent.Type == "" {
		r.Incumbent.Type = r.Model.Type
	}
	defaultModel(&r.Model)
	if r.Incumbent != nil {
		defaultModel(r.Incumbent)
	}
	r.predictiveDefaults()
	if r.Suites.Stress != nil {
		r.Suites.Stress.defaults()
	}
	a := &r.Suites.Adversarial
	if a.Shards == 0 {
		a.Shards = 4
	}
	if a.PartSize == 0 {
		a.PartSize = 50
	}
	if a.Concurrency == 0 {
		a.Concurrency = 4
	}
	if a.MaxTokens == 0 {
		a.MaxTokens = 256
	}
	if a.Timeout == 0 {
		a.Timeout = Duration(30 * time.Second)
	}
	if a.MaxRetries == 0 {
		a.MaxRetries = 2
	}
	if a.RegressionAlpha == 0 {
		a.RegressionAlpha = 0.05
	}
	if ad := a.Adaptive; ad != nil {
		if ad.Objectives == 0 {
			ad.Objectives = 40
		}
		if ad.QueriesPerObjective == 0 {
			ad.QueriesPerObjective = 16
		}
	}
	if r.Approval.Required && r.Approval.Timeout == 0 {
		r.Approval.Timeout = Duration(24 * time.Hour)
	}
	if r.Suites.Shadow.Requests == 0 {
		r.Suites.Shadow.Requests = 100
	}
	if e := r.Suites.Privacy.Exposure; e != nil && e.Candidates == 0 {
		e.Candidates = 300
	}
	if r.Suites.Shadow.Concurrency == 0 {
		r.Suites.Shadow.Concurrency = 4
	}
	if an := r.Suites.Shadow.Analysis; an != nil {
		if an.RequestsPerWindow == 0 {
			an.RequestsPerWindow = 50
		}
		if an.Interval == 0 {
			an.Interval = Duration(5 * time.Minute)
		}
		if len(an.Spec.Metrics) == 0 && an.Spec.Count == 0 {
			an.Spec = shadow.DefaultAnalysisSpec()
		}
	}
}

func defaultModel(m *Model) {
	if m.Type == "" {
		m.Type = TypeChat
	}
	if m.Protocol == "" {
		m.Protocol = ProtocolOpenAIChat
		if m.Type != TypeChat {
			m.Protocol = ProtocolOIP
		}
	}
	if m.OIPModel == "" {
		m.OIPModel = m.Name
	}
	s := &m.Sandbox
	if s.Provider == "" {
		s.Provider = "process"
	}
	if s.Limits.CPUs == 0 {
		s.Limits.CPUs = 1
	}
	if s.Limits.Memory == 0 {
		s.Limits.Memory = 512 << 20
	}
	if s.Limits.Pids == 0 {
		s.Limits.Pids = 128
	}
	if s.Limits.WallClock == 0 {
		s.Limits.WallClock = Duration(time.Hour)
	}
	if s.Budget.Timeout == 0 {
		s.Budget.Timeout = Duration(30 * time.Second)
	}
}

// Protocols a model can speak.
const (
	ProtocolOpenAIChat = "openai-chat"
)

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]{0,38}[a-z0-9])?$`)

// FieldError names the field that is wrong and how to fix it.
type FieldError struct {
	Path string
	Msg  string
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Msg }

// Validate checks what the YAML types cannot.
func (r *Release) Validate() error {
	var errs []error
	add := func(path, format string, args ...any) {
		errs = append(errs, &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	if r.APIVersion != APIVersion {
		add("apiVersion", "is %q; set it to %q", r.APIVersion, APIVersion)
	}
	if r.Kind != "Release" {
		add("kind", "is %q; set it to \"Release\"", r.Kind)
	}
	validateModel("model", &r.Model, add)
	if r.Incumbent != nil {
		validateModel("incumbent", r.Incumbent, add)
	}
	r.validatePredictive(add)
	r.validateStress(add)
	a := r.Suites.Adversarial
	if r.Model.Type != TypeChat {
		// Red teaming is for chat models; a predictive release leaves it out.
		a = Adversarial{Prompts: 1, Shards: 1, PartSize: 1, Concurrency: 1}
	}
	if a.Prompts < 1 || a.Prompts > 1_000_000 {
		add("suites.adversarial.prompts", "is %d; set a count between 1 and 1000000", a.Prompts)
	}
	if a.Shards < 1 || a.Shards > 64 {
		add("suites.adversarial.shards", "is %d; set 1 to 64 (history size grows with shards, not prompts)", a.Shards)
	}
	if a.PartSize < 1 {
		add("suites.adversarial.part_size", "is %d; set a positive number of rows per Parquet part", a.PartSize)
	}
	if a.Concurrency < 1 || a.Concurrency > 256 {
		add("suites.adversarial.concurrency", "is %d; set 1 to 256", a.Concurrency)
	}
	if rl := a.RateLimit; rl != nil && (rl.RequestsPerSecond < 0 || rl.TokensPerSecond < 0 || rl.Burst < 0 || rl.RequestsPerSecond == 0 && rl.TokensPerSecond == 0) {
		add("suites.adversarial.rate_limit", "set requests_per_second and/or tokens_per_second to positive numbers (burst ≥ 0)")
	}
	if b := a.Budget; b != nil && (b.Queries < 0 || b.Tokens < 0) {
		add("suites.adversarial.budget", "queries and tokens must not be negative")
	}
	if a.RegressionAlpha < 0 || a.RegressionAlpha >= 0.5 {
		add("suites.adversarial.regression_alpha", "is %v; set a level in (0, 0.5), e.g. 0.05", a.RegressionAlpha)
	}
	if ad := a.Adaptive; ad != nil {
		if len(ad.Strategies) == 0 {
			add("suites.adversarial.adaptive.strategies", "is empty; list search, pair, tap and/or crescendo")
		}
		for i, st := range ad.Strategies {
			switch st {
			case "search":
			case "pair", "tap", "crescendo":
				if ad.Attacker == nil || ad.Attacker.URL == "" || ad.Attacker.Model == "" {
					add(fmt.Sprintf("suites.adversarial.adaptive.strategies[%d]", i), "%q needs an attacker model: set suites.adversarial.adaptive.attacker.url and .model", st)
				}
			default:
				add(fmt.Sprintf("suites.adversarial.adaptive.strategies[%d]", i), "%q is not a strategy; use search, pair, tap or crescendo", st)
			}
		}
		if ad.Objectives < 1 || ad.Objectives > 10_000 {
			add("suites.adversarial.adaptive.objectives", "is %d; set 1 to 10000", ad.Objectives)
		}
		if ad.QueriesPerObjective < 1 || ad.QueriesPerObjective > 1000 {
			add("suites.adversarial.adaptive.queries_per_objective", "is %d; set 1 to 1000", ad.QueriesPerObjective)
		}
		if at := ad.Attacker; at != nil && at.URL != "" && !strings.HasPrefix(at.URL, "http://") && !strings.HasPrefix(at.URL, "https://") {
			add("suites.adversarial.adaptive.attacker.url", "%q is not an http(s) URL", at.URL)
		}
	}
	if a.ConverterRate != nil && (*a.ConverterRate < 0 || *a.ConverterRate > 1) {
		add("suites.adversarial.converter_rate", "is %v; set a share between 0 and 1", *a.ConverterRate)
	}
	if e := r.Suites.Privacy.Exposure; e != nil {
		if e.Candidates < 10 || e.Candidates > 100_000 {
			add("suites.privacy.exposure.candidates", "is %d; set 10 to 100000 random strings to rank each secret against", e.Candidates)
		}
		if len(e.Secrets) == 0 {
			add("suites.privacy.exposure.secrets", "is empty; list the planted secrets ({prefix, format, secret})")
		}
		for i, sc := range e.Secrets {
			if sc.Secret == "" || sc.Format == "" || len([]rune(sc.Format)) != len([]rune(sc.Secret)) {
				add(fmt.Sprintf("suites.privacy.exposure.secrets[%d]", i), "needs a secret and a format of the same length ('#' digit, '@' a-z, '^' A-Z)")
			}
		}
	}
	if x := r.Suites.Privacy.Extraction; x != nil {
		if len(x.Records) == 0 {
			add("suites.privacy.extraction.records", "is empty; list the planted records ({prefix, suffix})")
		}
		for i, rec := range x.Records {
			if rec.Prefix == "" || rec.Suffix == "" {
				add(fmt.Sprintf("suites.privacy.extraction.records[%d]", i), "needs a prefix and a suffix")
			}
		}
		if x.NearThreshold < 0 || x.NearThreshold >= 1 {
			add("suites.privacy.extraction.near_threshold", "is %v; set a normalised edit distance in [0, 1)", x.NearThreshold)
		}
	}
	if r.Suites.Shadow.Requests < 0 {
		add("suites.shadow.requests", "is negative; set 0 to skip shadow or a positive count")
	}
	if an := r.Suites.Shadow.Analysis; an != nil {
		if err := an.Spec.Validate(); err != nil {
			add("suites.shadow.analysis.spec", "%v", err)
		}
		if an.RequestsPerWindow < 1 || an.RequestsPerWindow > 100_000 {
			add("suites.shadow.analysis.requests_per_window", "is %d; set 1 to 100000", an.RequestsPerWindow)
		}
		if an.Interval < 0 {
			add("suites.shadow.analysis.interval", "is negative; give the pause between windows, e.g. 5m")
		}
		for i, rule := range r.Gate.Rules {
			if strings.HasPrefix(rule.Metric, "shadow.") && !strings.HasPrefix(rule.Metric, "shadow.analysis") {
				add(fmt.Sprintf("gate.rules[%d]", i), "%s: with suites.shadow.analysis the windows decide the shadow phase; bound it in the analysis spec or use shadow.analysis.* metrics", rule.Metric)
			}
		}
	}
	if r.Approval.Timeout < 0 || r.Approval.OverrideWindow < 0 {
		add("approval", "timeout and override_window must not be negative")
	}
	if err := r.Gate.Validate(); err != nil {
		add("gate", "%v", err)
	}
	if len(errs) == 0 {
		return nil
	}
	return joinErrors(errs)
}

func validateModel(path string, m *Model, add func(path, format string, args ...any)) {
	if m.Name == "" {
		add(path+".name", "is missing; name the model (lowercase letters, digits, '-', '.', '_')")
	} else if !nameRE.MatchString(m.Name) {
		add(path+".name", "%q is not a valid name; use lowercase letters, digits, '-', '.', '_' (at most 40)", m.Name)
	}
	if m.Version == "" {
		add(path+".version", "is missing; give the model version (e.g. \"1.4.0\")")
	} else if !nameRE.MatchString(strings.ToLower(m.Version)) {
		add(path+".version", "%q is not a valid version; use letters, digits, '.', '-', '_' (at most 40)", m.Version)
	}
	switch m.Type {
	case TypeChat:
		if m.Protocol != ProtocolOpenAIChat {
			add(path+".protocol", "%q is not supported for a chat model; use %q", m.Protocol, ProtocolOpenAIChat)
		}
	case TypeClassifier, TypeRegressor:
		if m.Protocol != ProtocolOIP {
			add(path+".protocol", "%q is not supported for a %s; use %q (Open Inference Protocol v2)", m.Protocol, m.Type, ProtocolOIP)
		}
		if m.SystemPrompt != "" || len(m.Secrets) > 0 {
			add(path+".system_prompt", "system_prompt and secrets apply to chat models; remove them")
		}
	default:
		add(path+".type", "%q is not a model type; use %q, %q or %q", m.Type, TypeChat, TypeClassifier, TypeRegressor)
	}
	if m.OIPModel != "" && !nameRE.MatchString(m.OIPModel) {
		add(path+".oip_model", "%q is not a valid OIP model name; use lowercase letters, digits, '-', '.', '_'", m.OIPModel)
	}
	s := m.Sandbox
	validateSandboxProvider(path, s, add)
	if len(s.Command) == 0 || s.Command[0] == "" {
		add(path+".sandbox.command", "is missing; give the model server's argv, e.g. [\"sandgate-refmodel\", \"--variant\", \"hardened\", \"--listen\", \"127.0.0.1:8000\"]")
	}
	if s.Port < 1 || s.Port > 65535 {
		add(path+".sandbox.port", "is %d; give the TCP port the model listens on inside the sandbox (1-65535)", s.Port)
	}
	if s.Limits.CPUs < 0 || s.Limits.CPUs > 64 {
		add(path+".sandbox.limits.cpus", "is %v; set 0.1 to 64", s.Limits.CPUs)
	}
	if s.Limits.Memory < 16<<20 {
		add(path+".sandbox.limits.memory", "is %d bytes; set at least 16Mi", int64(s.Limits.Memory))
	}
	if s.Limits.Pids < 4 {
		add(path+".sandbox.limits.pids", "is %d; set at least 4", s.Limits.Pids)
	}
	if s.Budget.Tokens < 0 || s.Budget.Bytes < 0 {
		add(path+".sandbox.budget", "tokens and bytes must not be negative (0 means no limit)")
	}
	if n := s.Network; n.Profile != "" {
		if _, err := sandbox.LookupProfile(n.Profile); err != nil {
			add(path+".sandbox.network.profile", "%v", err)
		}
	}
	if n := s.Network; n.Latency < 0 || n.Jitter < 0 || n.Bandwidth < 0 {
		add(path+".sandbox.network", "latency, jitter and bandwidth must not be negative")
	}
	if s.Budget.Requests < 0 {
		add(path+".sandbox.budget.requests", "is negative; set 0 for no limit or a positive count")
	}
	validateSandboxEgress(path+".sandbox.egress.allow", s, add)
}

// ReleaseID is the deterministic workflow ID of a release:
// release-<model>-<version>-<first 8 hex of the config digest>.
func (r *Release) ReleaseID(configSHA256 string) string {
	clean := func(s string) string {
		s = strings.ToLower(s)
		return strings.Map(func(c rune) rune {
			if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' {
				return c
			}
			return '-'
		}, s)
	}
	return fmt.Sprintf("release-%s-%s-%s", clean(r.Model.Name), clean(r.Model.Version), configSHA256[:8])
}

// Digest is the sha256 of the config bytes as given.
func Digest(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
