//go:build !linux

package sandbox

import (
	"context"
	"fmt"
	"runtime"
)

// ProcessProvider needs Linux; elsewhere it only explains that.
type ProcessProvider struct{}

var _ Provider = (*ProcessProvider)(nil)

// NewProcessProvider reports that the process provider needs Linux.
func NewProcessProvider(opt ProcessOptions) (*ProcessProvider, error) {
	return nil, (&ProcessProvider{}).Preflight()
}

// Preflight reports that the process provider needs Linux.
func (p *ProcessProvider) Preflight() error {
	_, err := checkHost(hostFacts{GOOS: runtime.GOOS})
	return err
}

// Start always fails off Linux.
func (p *ProcessProvider) Start(ctx context.Context, spec Spec) (*Sandbox, error) {
	return nil, fmt.Errorf("start sandbox %q: %w", spec.Name, p.Preflight())
}

func unmountScratch(string) error { return nil }
