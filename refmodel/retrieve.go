package refmodel

import (
	"maps"
	"math"
	"slices"
)

// index retrieves passages by TF-IDF cosine similarity: how a small
// retrieval-augmented assistant picks the passage to answer from.
type index struct {
	passages []passage
	vecs     []map[string]float64 // unit-length tf-idf vectors
	idf      map[string]float64
}

var stopwords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range words(`a an the is are was were be been to of and or in on at for with by from as it its this that
these those i you your my me we our us do does did how what why when where who which can could should would will
please tell about there their they them he she his her not no yes so if then than into up out any some have has had
am just also get got want need know like much many`) {
		m[w] = true
	}
	return m
}()

func terms(ws []string) map[string]float64 {
	tf := map[string]float64{}
	for _, w := range ws {
		if !stopwords[w] {
			tf[stem(w)]++
		}
	}
	return tf
}

func newIndex(ps []passage, version int) *index {
	ix := &index{passages: ps, idf: map[string]float64{}}
	docs := make([]map[string]float64, len(ps))
	df := map[string]int{}
	for i, p := range ps {
		text := p.text(version)
		for _, q := range p.questions {
			text += " " + q
		}
		docs[i] = terms(words(text))
		for t := range docs[i] {
			df[t]++
		}
	}
	n := float64(len(ps))
	for t, d := range df {
		ix.idf[t] = math.Log((n+1)/(float64(d)+1)) + 1
	}
	for _, d := range docs {
		ix.vecs = append(ix.vecs, ix.vector(d))
	}
	return ix
}

// vector sums in sorted term order: floating-point addition is not
// associative, and map order would make two processes serving the same
// variant disagree in the last bit — enough to flip a tie.
func (ix *index) vector(tf map[string]float64) map[string]float64 {
	v := map[string]float64{}
	var norm float64
	for _, t := range slices.Sorted(maps.Keys(tf)) {
		n := tf[t]
		idf, ok := ix.idf[t]
		if !ok {
			continue // a term no passage has cannot make any passage closer
		}
		w := (1 + math.Log(n)) * idf
		v[t] = w
		norm += w * w
	}
	norm = math.Sqrt(norm)
	for t := range v {
		v[t] /= norm
	}
	return v
}

// best returns the index of the most similar passage and its cosine
// similarity; ties go to the earlier passage so answers are deterministic.
func (ix *index) best(ws []string) (int, float64) {
	q := ix.vector(terms(ws))
	qt := slices.Sorted(maps.Keys(q))
	bi, bs := -1, 0.0
	for i, d := range ix.vecs {
		var s float64
		for _, t := range qt {
			s += q[t] * d[t]
		}
		if s > bs+1e-12 {
			bi, bs = i, s
		}
	}
	return bi, bs
}
