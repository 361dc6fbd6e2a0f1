// Command refmodel serves sandgate's bundled reference chat model over the
// OpenAI-compatible API, for tests and demos:
//
//	refmodel --variant leaky --listen 127.0.0.1:8000 [--latency 5ms]
package main

import (
	"os"

	"github.com/sandgate/sandgate/internal/reexec"
	"github.com/sandgate/sandgate/refmodel"
)

func main() {
	if reexec.Init() {
		return
	}
	os.Exit(refmodel.Main(os.Args[1:]))
}
