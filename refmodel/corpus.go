package refmodel

import (
	"bufio"
	"embed"
	"fmt"
	"sort"
	"strings"
)

//go:embed corpus/*.txt corpus/*.tsv
var corpusFS embed.FS

// passage is one retrievable answer with the questions it answers.
type passage struct {
	id        string
	questions []string
	answer    string // current wording
	answerV1  string // corpus version 1 wording, "" when unchanged
}

// text returns the answer in the given corpus version.
func (p passage) text(version int) string {
	if version == 1 && p.answerV1 != "" {
		return p.answerV1
	}
	return p.answer
}

// lines yields the non-empty, non-comment lines of an embedded file with
// their line numbers, so parse errors can point at the line.
func lines(name string) ([]string, []int, error) {
	f, err := corpusFS.Open("corpus/" + name)
	if err != nil {
		return nil, nil, fmt.Errorf("open corpus %s: %w", name, err)
	}
	defer f.Close()
	var out []string
	var nums []int
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimRight(sc.Text(), " \r")
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			continue
		}
		out = append(out, l)
		nums = append(nums, n)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("read corpus %s: %w", name, err)
	}
	return out, nums, nil
}

func loadPassages(name string) ([]passage, error) {
	ls, nums, err := lines(name)
	if err != nil {
		return nil, err
	}
	var out []passage
	for i, l := range ls {
		if strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]") {
			out = append(out, passage{id: l[1 : len(l)-1]})
			continue
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("corpus %s:%d: text before the first [id]", name, nums[i])
		}
		p := &out[len(out)-1]
		key, val, ok := strings.Cut(l, ":")
		val = strings.TrimSpace(val)
		switch {
		case ok && key == "q":
			p.questions = append(p.questions, val)
		case ok && key == "a":
			p.answer = val
		case ok && key == "a1":
			p.answerV1 = val
		default:
			return nil, fmt.Errorf("corpus %s:%d: want q:, a: or a1:, got %.30q", name, nums[i], l)
		}
	}
	for _, p := range out {
		if p.answer == "" {
			return nil, fmt.Errorf("corpus %s: passage [%s] has no a: line", name, p.id)
		}
	}
	return out, nil
}

// CustomerRecord is one synthetic customer planted in the model's corpus as
// a privacy canary. All values are fictitious.
type CustomerRecord struct {
	ID, Name, Email, Phone, Card, City, Note string
}

func loadRecords() ([]CustomerRecord, error) {
	ls, nums, err := lines("records.tsv")
	if err != nil {
		return nil, err
	}
	out := make([]CustomerRecord, 0, len(ls))
	for i, l := range ls {
		f := strings.Split(l, "\t")
		if len(f) != 7 {
			return nil, fmt.Errorf("corpus records.tsv:%d: want 7 tab-separated fields, got %d", nums[i], len(f))
		}
		out = append(out, CustomerRecord{ID: f[0], Name: f[1], Email: f[2], Phone: f[3], Card: f[4], City: f[5], Note: f[6]})
	}
	return out, nil
}

// Records returns the synthetic customer records the model was "trained"
// on. A reply containing any of their e-mails, phones or card numbers is a
// training-data leak.
func Records() []CustomerRecord {
	rs, err := loadRecords()
	if err != nil {
		panic(err) // embedded at build time; covered by tests
	}
	return rs
}

// Canaries returns the privacy canary strings — every planted e-mail,
// phone and card number, in file order — for a release config's
// redteam.Target.Canaries or a privacy probe.
func Canaries() []string {
	var out []string
	for _, r := range Records() {
		out = append(out, r.Email, r.Phone, r.Card)
	}
	return out
}

type example struct {
	label Intent
	text  string
}

func loadIntents() ([]example, error) {
	ls, nums, err := lines("intents.txt")
	if err != nil {
		return nil, err
	}
	known := map[Intent]bool{}
	for _, in := range intents {
		known[in] = true
	}
	out := make([]example, 0, len(ls))
	for i, l := range ls {
		label, text, ok := strings.Cut(l, "|")
		if !ok || !known[Intent(label)] {
			return nil, fmt.Errorf("corpus intents.txt:%d: want <intent>|<text> with a known intent, got %.40q", nums[i], l)
		}
		out = append(out, example{Intent(label), text})
	}
	return out, nil
}

func loadLexicon() (*lexicon, error) {
	ls, nums, err := lines("lexicon.txt")
	if err != nil {
		return nil, err
	}
	lx := &lexicon{phrases: map[string][]string{}, gloss: map[string][]string{}}
	for i, l := range ls {
		from, to, ok := strings.Cut(l, "=")
		fw, tw := words(from), words(to)
		if !ok || len(fw) == 0 || len(tw) == 0 {
			return nil, fmt.Errorf("corpus lexicon.txt:%d: want <phrase> = <english>, got %.40q", nums[i], l)
		}
		key := strings.Join(fw, " ")
		lx.gloss[key] = tw
		lx.phrases[fw[0]] = append(lx.phrases[fw[0]], key)
	}
	for _, ps := range lx.phrases {
		sort.SliceStable(ps, func(a, b int) bool { return len(strings.Fields(ps[a])) > len(strings.Fields(ps[b])) })
	}
	return lx, nil
}
