package activities

import "github.com/sandgate/sandgate/config"

// refuseUnwiredProvider stops a release whose model names a sandbox
// provider the activities cannot hold yet. The docker and kubernetes
// providers exist as libraries (sandbox/docker, sandbox/kube), but the
// activities keep live sandboxes as the process provider's concrete
// *sandbox.Sandbox; wiring them needs a sandbox interface first, so the
// release fails at once with the reason instead of running the model
// somewhere the config did not ask for.
func refuseUnwiredProvider(role string, s config.Sandbox) error {
	switch s.Provider {
	case config.ProviderDocker, config.ProviderKubernetes:
		return badInput("%s model.sandbox.provider: %q is library-only for now (package sandbox/%s): this worker runs releases with the process provider only; set provider: process", role, s.Provider, map[string]string{config.ProviderDocker: "docker", config.ProviderKubernetes: "kube"}[s.Provider])
	}
	return nil
}
