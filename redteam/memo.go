package redteam

import "sync"

// foldMemo caches the folds of one attempt's texts, so that thirteen
// detectors folding the same reply and prompt fold each once. Target-side
// texts (system prompt sentences, secrets, canary fields), which are the
// same for every attempt of a run, go to the registry's shared cache.
// A nil *foldMemo computes every fold afresh.
//
// An attempt folds a handful of texts, so the memo is a few short slices
// searched linearly rather than maps: comparing a string with itself is a
// pointer check, and no text is hashed.
type foldMemo struct {
	loose, skel []memoEntry[folded]
	words       []memoEntry[string]
	shared      *sharedMemo
}

type memoEntry[V any] struct {
	key string
	val V
}

func newFoldMemo(shared *sharedMemo) *foldMemo {
	return &foldMemo{shared: shared}
}

// memoized returns fold(s) from es, computing and adding it if absent.
func memoized[V any](es *[]memoEntry[V], s string, fold func(string) V) V {
	for _, e := range *es {
		if e.key == s {
			return e.val
		}
	}
	v := fold(s)
	*es = append(*es, memoEntry[V]{s, v})
	return v
}

func (m *foldMemo) foldLoose(s string) folded {
	if m == nil {
		return foldLoose(s)
	}
	return memoized(&m.loose, s, foldLoose)
}

func (m *foldMemo) foldSkeleton(s string) folded {
	if m == nil {
		return foldSkeleton(s)
	}
	return memoized(&m.skel, s, foldSkeleton)
}

func (m *foldMemo) foldWords(s string) string {
	if m == nil {
		return foldWords(s)
	}
	return memoized(&m.words, s, foldWords)
}

// maxShared bounds each of the shared caches: a run has a handful of
// targets, and a caller that judges many different targets must not grow
// them forever.
const maxShared = 256

// sharedMemo is a registry's cache of target-derived detector state. It is
// read on every attempt by every worker and written a few times per run,
// hence the read lock and the typed maps (no key is built or boxed on a hit).
type sharedMemo struct {
	mu      sync.RWMutex
	sys     map[sysKey]*sysPrep
	needles map[string]*leakNeedle
	canary  map[string][]*leakNeedle
}

// sharedGet returns (*m)[key], building and caching it on a miss. A nil s
// builds afresh.
func sharedGet[K comparable, V any](s *sharedMemo, m *map[K]V, key K, build func() V) V {
	if s == nil {
		return build()
	}
	s.mu.RLock()
	v, ok := (*m)[key]
	s.mu.RUnlock()
	if ok {
		return v
	}
	v = build()
	s.mu.Lock()
	if *m == nil {
		*m = map[K]V{}
	}
	if len(*m) < maxShared {
		(*m)[key] = v
	}
	s.mu.Unlock()
	return v
}

func (m *foldMemo) sharedMemo() *sharedMemo {
	if m == nil {
		return nil
	}
	return m.shared
}

// indexFold finds ASCII-lowercase needle in s ignoring ASCII case, without
// lowercasing (and copying) s.
func indexFold(s, needle string) int {
	n := len(needle)
	if n == 0 {
		return 0
	}
	for i := 0; i+n <= len(s); i++ {
		j := 0
		for ; j < n; j++ {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != needle[j] {
				break
			}
		}
		if j == n {
			return i
		}
	}
	return -1
}
