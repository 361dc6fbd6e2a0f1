package refmodel

import (
	"math"
	"slices"
	"unicode/utf8"
)

// The reference model's probability model is a character n-gram language
// model with interpolated Witten–Bell smoothing, trained at first use on
// the corpus text a variant was "trained" on. It exists so the model can
// score text (logprobs, echo) and continue a prefix greedily — what
// canary-exposure and training-data-extraction tests need — while chat
// replies still come from the mechanisms in model.go.
//
// The order is long (lmOrder−1 = 19 code points of context) so a line seen
// once is memorised verbatim: e-mail domains and phone prefixes repeat
// across customer records, and 19 characters of context reach past them
// to what tells records apart. Unseen contexts back off to shorter ones,
// down to a uniform distribution over the vocabulary plus one bucket for
// every unseen character, so any text gets a finite logprob.
//
// Training data differs by variant, as it would between a model trained on
// raw support transcripts and one trained after PII scrubbing: the leaky
// variant's LM text includes every planted customer record (the same
// "Customer record …" lines its retrieval index holds); hardened and
// incumbent are trained on the same corpus with the records removed. A
// canary planted in the records is therefore memorised by leaky and
// unknown to the others.
const lmOrder = 20

// lineStart is the context every training line and every scored text
// begins with, so a prompt is read as the start of a line.
const lineStart = '\n'

type lmContext struct {
	total int32 // occurrences of the context followed by any character
	types int32 // distinct characters seen after it
}

type charLM struct {
	vocab []rune // sorted; candidates for greedy decoding and top logprobs
	// Contexts and n-grams are keyed by 64-bit hashes of their code
	// points: string keys for 20-grams would cost several times the memory.
	ctx  map[uint64]lmContext
	next map[uint64]int32
	base float64 // uniform floor: 1/(|vocab|+1)
}

const (
	hashSeed = 0x9e3779b97f4a7c15
	hashMul  = 0xff51afd7ed558ccd
)

// extend hashes one more code point into a context hash, walking the
// context from its last character backwards.
func extend(h uint64, r rune) uint64 {
	h ^= uint64(r) + 0x632be59bd9b4e019
	h *= hashMul
	return h ^ h>>29
}

// withNext keys the n-gram "context then r", distinct from any context key.
func withNext(h uint64, r rune) uint64 {
	return extend(extend(h, r), -1)
}

func trainLM(lines []string) *charLM {
	lm := &charLM{ctx: map[uint64]lmContext{}, next: map[uint64]int32{}}
	seen := map[rune]bool{}
	for _, l := range lines {
		seq := append([]rune{lineStart}, []rune(l)...)
		seq = append(seq, lineStart)
		for i := 1; i < len(seq); i++ {
			c := seq[i]
			seen[c] = true
			h := uint64(hashSeed)
			for k := 0; k < lmOrder && k <= i-1; k++ {
				if k > 0 {
					h = extend(h, seq[i-k])
				}
				st := lm.ctx[h]
				key := withNext(h, c)
				if lm.next[key] == 0 {
					st.types++
				}
				st.total++
				lm.ctx[h] = st
				lm.next[key]++
			}
		}
	}
	for r := range seen {
		lm.vocab = append(lm.vocab, r)
	}
	slices.Sort(lm.vocab)
	lm.base = 1 / float64(len(lm.vocab)+1)
	return lm
}

// seenContext is a suffix of the history the model has seen, with its
// counts, looked up once per position rather than once per candidate.
type seenContext struct {
	h uint64
	lmContext
}

// contexts returns the history's suffixes that the model has seen,
// shortest (empty) first; longer suffixes of an unseen one are unseen.
func (lm *charLM) contexts(hist []rune) []seenContext {
	hs := make([]seenContext, 0, lmOrder)
	h := uint64(hashSeed)
	for k := 0; k < lmOrder && k <= len(hist); k++ {
		if k > 0 {
			h = extend(h, hist[len(hist)-k])
		}
		st, ok := lm.ctx[h]
		if !ok {
			break
		}
		hs = append(hs, seenContext{h, st})
	}
	return hs
}

// prob is P(c | history) under interpolated Witten–Bell:
// P_k(c) = (C(h_k c) + T(h_k)·P_{k−1}(c)) / (C(h_k) + T(h_k)).
func (lm *charLM) prob(hs []seenContext, c rune) float64 {
	p := lm.base
	for _, s := range hs {
		p = (float64(lm.next[withNext(s.h, c)]) + float64(s.types)*p) / float64(s.total+s.types)
	}
	return p
}

type scored struct {
	r  rune
	lp float64
}

// best returns the n likeliest next characters, likeliest first; ties go to
// the smaller code point so decoding is deterministic.
func (lm *charLM) best(hs []seenContext, n int) []scored {
	all := make([]scored, len(lm.vocab))
	for i, r := range lm.vocab {
		all[i] = scored{r, math.Log(lm.prob(hs, r))}
	}
	slices.SortStableFunc(all, func(a, b scored) int {
		switch {
		case a.lp > b.lp:
			return -1
		case a.lp < b.lp:
			return 1
		}
		return 0
	})
	return all[:min(n, len(all))]
}

// tokenScore is one scored character of a text.
type tokenScore struct {
	tok string
	lp  float64
	top []scored // the likeliest alternatives, when asked for
}

// score returns the logprob of each code point of text given what precedes
// it (starting from a line start), with the top alternatives per position.
func (lm *charLM) score(text string, top int) []tokenScore {
	hist := []rune{lineStart}
	out := make([]tokenScore, 0, utf8.RuneCountInString(text))
	for _, c := range text {
		hs := lm.contexts(hist)
		t := tokenScore{tok: string(c), lp: math.Log(lm.prob(hs, c))}
		if top > 0 {
			t.top = lm.best(hs, top)
		}
		out = append(out, t)
		hist = append(hist, c)
	}
	return out
}

// greedy continues prompt with the likeliest character, up to limit
// characters or until the model ends the line. It reports whether it
// stopped on the limit.
func (lm *charLM) greedy(prompt string, limit, top int) ([]tokenScore, bool) {
	hist := append([]rune{lineStart}, []rune(prompt)...)
	var out []tokenScore
	for len(out) < limit {
		hs := lm.contexts(hist)
		k := max(top, 1)
		b := lm.best(hs, k)
		if b[0].r == lineStart {
			return out, false
		}
		t := tokenScore{tok: string(b[0].r), lp: b[0].lp}
		if top > 0 {
			t.top = b
		}
		out = append(out, t)
		hist = append(hist, b[0].r)
	}
	return out, true
}
