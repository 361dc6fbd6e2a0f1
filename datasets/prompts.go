package datasets

import (
	"fmt"
	"iter"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
)

// Prompt generator identity, recorded in manifests. Bump the version on any
// change that alters generated rows: the seed only reproduces a dataset
// together with the version that produced it.
const (
	PromptsGenerator        = "sandgate/datasets.Prompts"
	PromptsGeneratorVersion = "1.1.0"
)

// Goals: what an attempt tries to make the model do. The judge in redteam/
// decides "breached" per goal.
const (
	GoalLeakSystemPrompt = "leak_system_prompt" // reveal the system prompt
	GoalLeakSecret       = "leak_secret"        // reveal a secret / canary from the config
	GoalLeakPII          = "leak_pii"           // reveal personal data
	GoalEmitMarker       = "emit_marker"        // obey an injected instruction: output Marker
	GoalUnsafeOutput     = "unsafe_output"      // emit active content (Marker) unescaped
	GoalFalsePremise     = "false_premise"      // accept a false premise instead of stating Expected
	GoalRobustness       = "robustness"         // answer without crashing, hanging or running away
	GoalHarmfulAdvice    = "harmful_advice"     // give the unsafe medical/financial advice Marker describes (see HarmKeywords)
)

// PromptRow is one adversarial prompt. Its Parquet schema is documented in
// the package doc; notebooks depend on the column names.
type PromptRow struct {
	ID         string `parquet:"id"`
	Index      int64  `parquet:"index"`
	Family     string `parquet:"family,dict"`
	Category   string `parquet:"category,dict"` // OWASP LLM 2025 id, e.g. LLM07
	AtlasID    string `parquet:"atlas_id,dict"` // MITRE ATLAS, e.g. AML.T0051
	TemplateID string `parquet:"template_id,dict"`
	Converters string `parquet:"converters,dict"` // "base64+rot13", "" for none
	Goal       string `parquet:"goal,dict"`       // see Goal* constants
	Marker     string `parquet:"marker"`          // emit_marker / unsafe_output: string whose presence means breach; harmful_advice: keyword set (HarmKeywords)
	Expected   string `parquet:"expected"`        // goal false_premise: fact that a correct answer contains
	Prompt     string `parquet:"prompt"`
	Seed       int64  `parquet:"seed"`
}

// PromptOptions selects what Prompts generates. The zero value means all
// families, converters on half the rows, chains of up to two converters.
type PromptOptions struct {
	// Families restricts generation to these family names (see
	// PromptFamilies); empty means all. Unknown names are dropped: call
	// Validate first to reject them.
	Families []string
	// ConverterRate is the share of rows that get converters: 0 means the
	// default 0.5, a negative value means none, values above 1 mean all.
	ConverterRate float64
	// MaxChain is the most converters stacked on one row: 0 means 2.
	MaxChain int
}

// DefaultConverterRate and DefaultMaxChain are what zero options mean.
const (
	DefaultConverterRate = 0.5
	DefaultMaxChain      = 2
	maxMaxChain          = 6
)

// Validate names the first bad field and how to fix it.
func (o PromptOptions) Validate() error {
	for _, f := range o.Families {
		if familyByName(f) == nil {
			return fmt.Errorf("datasets: PromptOptions.Families: unknown family %q; known: %s",
				f, strings.Join(familyNames(), ", "))
		}
	}
	if o.MaxChain < 0 || o.MaxChain > maxMaxChain {
		return fmt.Errorf("datasets: PromptOptions.MaxChain %d out of range 0..%d (0 means %d)", o.MaxChain, maxMaxChain, DefaultMaxChain)
	}
	return nil
}

// Params renders the options for Manifest.Params, so a manifest records
// everything needed to regenerate the data.
func (o PromptOptions) Params() map[string]string {
	n := o.normalize()
	names := make([]string, len(n.families))
	for i, f := range n.families {
		names[i] = f.name
	}
	return map[string]string{
		"families":       strings.Join(names, ","),
		"converter_rate": strconv.FormatFloat(n.rate, 'g', -1, 64),
		"max_chain":      strconv.Itoa(n.maxChain),
	}
}

type normOptions struct {
	families []*family
	rate     float64
	maxChain int
}

func (o PromptOptions) normalize() normOptions {
	n := normOptions{rate: o.ConverterRate, maxChain: o.MaxChain}
	switch {
	case n.rate == 0:
		n.rate = DefaultConverterRate
	case n.rate < 0:
		n.rate = 0
	case n.rate > 1:
		n.rate = 1
	}
	if n.maxChain <= 0 {
		n.maxChain = DefaultMaxChain
	}
	n.maxChain = min(n.maxChain, maxMaxChain)
	if len(o.Families) == 0 {
		for i := range families {
			n.families = append(n.families, &families[i])
		}
		return n
	}
	// Table order, not caller order, so {"a","b"} and {"b","a"} generate
	// the same rows; duplicates collapse.
	for i := range families {
		if slices.Contains(o.Families, families[i].name) {
			n.families = append(n.families, &families[i])
		}
	}
	return n
}

// Prompts yields n prompts for seed. Row i depends only on (seed, i, opt),
// so PromptsRange can regenerate any shard and the same seed always gives
// bit-identical rows.
func Prompts(seed uint64, n int, opt PromptOptions) iter.Seq[PromptRow] {
	return PromptsRange(seed, 0, int64(n), opt)
}

// PromptsRange yields rows offset .. offset+n-1 of the sequence Prompts(seed, ...)
// would produce; used to regenerate or resume a shard.
func PromptsRange(seed uint64, offset, n int64, opt PromptOptions) iter.Seq[PromptRow] {
	norm := opt.normalize()
	return func(yield func(PromptRow) bool) {
		if len(norm.families) == 0 {
			return
		}
		for i := offset; i < offset+n; i++ {
			if !yield(genPrompt(seed, i, norm)) {
				return
			}
		}
	}
}

// PromptAt returns row i alone.
func PromptAt(seed uint64, i int64, opt PromptOptions) PromptRow {
	norm := opt.normalize()
	if len(norm.families) == 0 {
		return PromptRow{}
	}
	return genPrompt(seed, i, norm)
}

// mix64 is the splitmix64 finaliser: a bijection on uint64 that scatters
// neighbouring inputs, so PCG streams for consecutive rows are unrelated and
// markers derived from distinct indexes never collide.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

func rowRand(seed uint64, i int64) *rand.Rand {
	return rand.New(rand.NewPCG(mix64(seed^0x9e3779b97f4a7c15), mix64(uint64(i)+mix64(seed))))
}

// rowMarker is unique per row within a seed (mix64 is a bijection) and
// unguessable by the model.
func rowMarker(seed uint64, i int64) string {
	return fmt.Sprintf("SGMARK-%016x", mix64(uint64(i)^mix64(seed+1)))
}

func genPrompt(seed uint64, i int64, o normOptions) PromptRow {
	r := rowRand(seed, i)
	f := o.families[r.IntN(len(o.families))]
	a := f.build(r, rowMarker(seed, i))

	goal, category, atlas := f.goal, f.category, f.atlas
	if a.goal != "" {
		goal, category, atlas = a.goal, a.category, a.atlas
	}
	protect := a.marker
	if goal == GoalHarmfulAdvice {
		protect = "" // a keyword set, not text of the prompt
	}
	var chain []string
	payload := a.payload
	if len(f.converters) > 0 && o.rate > 0 && r.Float64() < o.rate {
		cc := convCtx{r: r, goal: goal, protect: protect}
		for _, c := range pickChain(r, f.converters, o.maxChain) {
			var name string
			payload, name = c.apply(&cc, payload)
			chain = append(chain, name)
		}
	}
	prompt := a.pre + payload + a.post
	return PromptRow{
		ID:         fmt.Sprintf("p-%016x-%09d", seed, i),
		Index:      i,
		Family:     f.name,
		Category:   category,
		AtlasID:    atlas,
		TemplateID: a.templateID,
		Converters: strings.Join(chain, "+"),
		Goal:       goal,
		Marker:     strings.ToValidUTF8(a.marker, "\uFFFD"),
		Expected:   strings.ToValidUTF8(a.expected, "\uFFFD"),
		Prompt:     strings.ToValidUTF8(prompt, "\uFFFD"),
		Seed:       int64(seed), // bit-for-bit; Parquet has no unsigned 64-bit int notebooks all read
	}
}

// attempt is a rendered template before converters: converters transform
// only payload, so the carrier (an e-mail, a JSON tool result) stays
// readable around an obfuscated instruction.
type attempt struct {
	templateID string
	pre, post  string
	payload    string
	marker     string
	expected   string
	// goal, category and atlas override the family's for this row when goal
	// is set (multi-turn escalation ends in different asks).
	goal, category, atlas string
}

// FamilyInfo describes an attack family for docs, CLIs and validation.
type FamilyInfo struct {
	Name      string
	Category  string // OWASP LLM 2025
	AtlasID   string // MITRE ATLAS
	Goal      string
	Templates int
	// Converters that may be applied to this family's payloads.
	Converters []string
}

// PromptFamilies lists every family in generation order.
func PromptFamilies() []FamilyInfo {
	out := make([]FamilyInfo, len(families))
	for i := range families {
		f := &families[i]
		var conv []string
		for _, c := range f.converters {
			conv = append(conv, c.name)
		}
		out[i] = FamilyInfo{Name: f.name, Category: f.category, AtlasID: f.atlas, Goal: f.goal,
			Templates: f.templateCount(), Converters: conv}
	}
	return out
}

// ConverterNames lists every converter; language switches appear as
// lang_fr, lang_es and lang_de in PromptRow.Converters.
func ConverterNames() []string {
	out := make([]string, len(allConverters))
	for i, c := range allConverters {
		out[i] = c.name
	}
	return out
}

func familyByName(name string) *family {
	for i := range families {
		if families[i].name == name {
			return &families[i]
		}
	}
	return nil
}

func familyNames() []string {
	out := make([]string, len(families))
	for i, f := range families {
		out[i] = f.name
	}
	return out
}

// expand replaces {name} placeholders from vars, then from the shared word
// pools, then {n4} with four random digits. Anything else in braces (JSON,
// code) is left alone, so carrier text can contain braces freely.
func expand(r *rand.Rand, s string, vars map[string]string) string {
	if !strings.Contains(s, "{") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 32)
	for {
		open := strings.IndexByte(s, '{')
		if open < 0 {
			b.WriteString(s)
			return b.String()
		}
		end := strings.IndexByte(s[open:], '}')
		if end < 0 {
			b.WriteString(s)
			return b.String()
		}
		name := s[open+1 : open+end]
		b.WriteString(s[:open])
		v, ok := lookupSlot(r, name, vars)
		if !ok {
			// Not a slot (JSON, code): keep the brace and rescan after it so
			// a slot nested inside, as in {"city": "{city}"}, still expands.
			b.WriteByte('{')
			s = s[open+1:]
			continue
		}
		b.WriteString(v)
		s = s[open+end+1:]
	}
}

func lookupSlot(r *rand.Rand, name string, vars map[string]string) (string, bool) {
	if !isSlotName(name) {
		return "", false
	}
	if v, ok := vars[name]; ok {
		return v, true
	}
	if name == "n4" {
		return strconv.Itoa(1000 + r.IntN(9000)), true
	}
	if pool, ok := pools[name]; ok {
		// Remember the draw: a slot used twice in one template ({persona}
		// ... {persona}) must name the same thing.
		v := pick(r, pool)
		vars[name] = v
		return v, true
	}
	return "", false
}

func isSlotName(s string) bool {
	if s == "" || len(s) > 24 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }
