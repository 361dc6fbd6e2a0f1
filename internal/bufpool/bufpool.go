// Package bufpool recycles the copy buffers of reverse proxies: without it
// every proxied body copy allocates 32 KiB, and the garbage collection that
// follows shows up in the proxied path's tail latency.
package bufpool

import "sync"

// Size is the buffer of one proxied body copy (httputil.ReverseProxy's own
// default).
const Size = 32 << 10

// Pool is an httputil.BufferPool of Size-byte buffers. The zero value is
// ready to use.
type Pool struct{ p sync.Pool }

// Get returns a buffer of Size bytes.
func (b *Pool) Get() []byte {
	if x, ok := b.p.Get().(*[]byte); ok {
		return *x
	}
	return make([]byte, Size)
}

// Put recycles x; buffers of another size are dropped.
func (b *Pool) Put(x []byte) {
	if cap(x) != Size {
		return
	}
	x = x[:Size]
	b.p.Put(&x)
}
