package refmodel

import (
	"math"
	"slices"
)

// classifier is a multinomial naive Bayes model over word unigrams and
// bigrams: the smallest model that generalises from a few dozen examples per
// intent to phrasings it has not seen, which is the property that makes the
// reference model attackable (and defensible) the way real models are.
type classifier struct {
	labels []Intent
	// logLik[c][f] is log P(feature f | class c); features never seen in
	// class c get logUnseen[c].
	logLik    []map[string]float64
	logUnseen []float64
	logPrior  []float64
	vocab     map[string]bool
}

// features are stemmed unigrams plus bigrams of adjacent words.
func features(ws []string) []string {
	out := make([]string, 0, 2*len(ws))
	prev := ""
	for _, w := range ws {
		w = stem(w)
		out = append(out, w)
		if prev != "" {
			out = append(out, prev+"_"+w)
		}
		prev = w
	}
	return out
}

const smoothing = 0.5

func trainClassifier(examples []example, lx *lexicon) *classifier {
	c := &classifier{labels: intents, vocab: map[string]bool{}}
	counts := make([]map[string]int, len(intents))
	totals := make([]int, len(intents))
	idx := map[Intent]int{}
	for i, in := range intents {
		idx[in] = i
		counts[i] = map[string]int{}
	}
	n := make([]int, len(intents))
	for _, ex := range examples {
		i := idx[ex.label]
		n[i]++
		for _, f := range features(lx.translate(words(string(fold(ex.text))))) {
			counts[i][f]++
			totals[i]++
			c.vocab[f] = true
		}
	}
	v := float64(len(c.vocab))
	for i := range intents {
		denom := float64(totals[i]) + smoothing*v
		ll := make(map[string]float64, len(counts[i]))
		for f, n := range counts[i] {
			ll[f] = math.Log((float64(n) + smoothing) / denom)
		}
		c.logLik = append(c.logLik, ll)
		c.logUnseen = append(c.logUnseen, math.Log(smoothing/denom))
		c.logPrior = append(c.logPrior, math.Log((float64(n[i])+1)/(float64(len(examples))+float64(len(intents)))))
	}
	return c
}

// verdict is a classification: the most likely intent, its posterior and
// how many of the input's features the classifier had seen in training
// (zero means it is guessing from the prior).
type verdict struct {
	intent Intent
	p      float64
	known  int
}

// classify uses the training frequencies as the prior — ordinary questions
// are most of the traffic, and an intent with few, short examples would
// otherwise win on any word it shares with them — and ignores features
// outside the vocabulary so a long off-topic document does not drown the
// signal.
func (c *classifier) classify(ws []string) verdict {
	scores := slices.Clone(c.logPrior)
	known := 0
	for _, f := range features(ws) {
		if !c.vocab[f] {
			continue
		}
		known++
		for i := range scores {
			if l, ok := c.logLik[i][f]; ok {
				scores[i] += l
			} else {
				scores[i] += c.logUnseen[i]
			}
		}
	}
	if known == 0 {
		return verdict{intent: IntentFAQ, p: 1 / float64(len(c.labels))}
	}
	best := 0
	for i := range scores {
		if scores[i] > scores[best] {
			best = i
		}
	}
	var sum float64
	for _, s := range scores {
		sum += math.Exp(s - scores[best])
	}
	return verdict{intent: c.labels[best], p: 1 / sum, known: known}
}
