package cli

import (
	"os"
	"testing"

	"github.com/sandgate/sandgate/internal/reexec"
)

// TestMain lets the test binary serve as the sandbox's init shim.
func TestMain(m *testing.M) {
	if reexec.Init() {
		return
	}
	os.Exit(m.Run())
}
