package shadow

import "sync"

// copyBufSize is the buffer of one proxied or mirrored body copy.
const copyBufSize = 32 << 10

// bufPool recycles copy buffers: without it every proxied request and
// every mirror allocates 32 KiB, and the garbage collector that follows
// shows up in the live path's tail latency.
type bufPool struct{ p sync.Pool }

func newBufPool() *bufPool {
	return &bufPool{p: sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}}
}

// Get and Put make it an httputil.BufferPool.
func (b *bufPool) Get() []byte  { return *(b.p.Get().(*[]byte)) }
func (b *bufPool) Put(x []byte) { b.p.Put(&x) }
