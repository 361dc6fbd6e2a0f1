//go:build !linux

package reexec

import "os/exec"

// Only Linux has a parent-death signal; elsewhere the caller must stop the
// child itself.
func setParentDeathSignal(*exec.Cmd) {}
