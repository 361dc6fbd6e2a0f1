package activities

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/sandgate/sandgate/config"
)

func TestProvisionRefusesLibraryOnlyProviders(t *testing.T) {
	a := &Activities{} // no provider: the refusal must come first
	for _, p := range []string{config.ProviderDocker, config.ProviderKubernetes} {
		_, err := a.Provision(context.Background(), ProvisionInput{
			ReleaseID: "release-harbor-1-4-0-c4a12870", Role: "candidate",
			Model: config.Model{Name: "harbor", Sandbox: config.Sandbox{Provider: p, Image: "m:1", Command: []string{"m"}, Port: 8000}},
		})
		var app *temporal.ApplicationError
		if !errors.As(err, &app) || !app.NonRetryable() || app.Type() != ErrTypeBadInput {
			t.Fatalf("%s: Provision = %v, want a non-retryable bad-input error", p, err)
		}
		if !strings.Contains(err.Error(), "library-only") || !strings.Contains(err.Error(), "provider: process") {
			t.Errorf("%s: error %q does not say why and what to do", p, err)
		}
	}
}
