// Command sandgate-splice is the docker provider's entrypoint inside the
// model's container: it starts the model and joins a unix socket in the
// bind-mounted directory to the model's TCP port on the container's loopback.
// Build it static so it runs in any image:
//
//	CGO_ENABLED=0 go build -o sandgate-splice ./cmd/sandgate-splice
//
// Usage: sandgate-splice -socket /.sandgate/run/model.sock -port 8000 -- model argv...
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/sandgate/sandgate/sandbox/splice"
)

func main() {
	socket := flag.String("socket", "", "unix socket to listen on (inside the bind-mounted directory)")
	port := flag.Int("port", 0, "the model's TCP port on 127.0.0.1")
	flag.Parse()
	code, err := splice.Run(context.Background(), splice.Config{Socket: *socket, Port: *port, Argv: flag.Args()})
	if err != nil {
		fmt.Fprintln(os.Stderr, "sandgate-splice:", err)
	}
	os.Exit(code)
}
