package redteam

import "sync"

// foldMemo caches the folds of one attempt's texts, so that thirteen
// detectors folding the same reply and prompt fold each once. Target-side
// texts (system prompt sentences, secrets, canary fields), which are the
// same for every attempt of a run, go to the registry's shared cache.
// A nil *foldMemo computes every fold afresh.
type foldMemo struct {
	loose, skel map[string]folded
	words       map[string]string
	shared      *sharedMemo
}

func newFoldMemo(shared *sharedMemo) *foldMemo {
	return &foldMemo{loose: map[string]folded{}, skel: map[string]folded{}, words: map[string]string{}, shared: shared}
}

func (m *foldMemo) foldLoose(s string) folded {
	if m == nil {
		return foldLoose(s)
	}
	if f, ok := m.loose[s]; ok {
		return f
	}
	f := foldLoose(s)
	m.loose[s] = f
	return f
}

func (m *foldMemo) foldSkeleton(s string) folded {
	if m == nil {
		return foldSkeleton(s)
	}
	if f, ok := m.skel[s]; ok {
		return f
	}
	f := foldSkeleton(s)
	m.skel[s] = f
	return f
}

func (m *foldMemo) foldWords(s string) string {
	if m == nil {
		return foldWords(s)
	}
	if f, ok := m.words[s]; ok {
		return f
	}
	f := foldWords(s)
	m.words[s] = f
	return f
}

// target returns a value derived from target-side text only, computed once
// per registry (per attempt without one).
func (m *foldMemo) target(key string, build func() any) any {
	if m == nil || m.shared == nil {
		return build()
	}
	return m.shared.get(key, build)
}

// maxShared bounds the shared cache: a run has a handful of targets, and a
// caller that judges many different targets must not grow it forever.
const maxShared = 256

// sharedMemo is a registry's cache of target-derived detector state.
type sharedMemo struct {
	mu sync.Mutex
	m  map[string]any
}

func (s *sharedMemo) get(key string, build func() any) any {
	s.mu.Lock()
	v, ok := s.m[key]
	s.mu.Unlock()
	if ok {
		return v
	}
	v = build()
	s.mu.Lock()
	if s.m == nil {
		s.m = map[string]any{}
	}
	if len(s.m) < maxShared {
		s.m[key] = v
	}
	s.mu.Unlock()
	return v
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
