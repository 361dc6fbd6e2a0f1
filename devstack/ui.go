package devstack

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	"github.com/temporalio/ui-server/v2/server/server_options"
)

// startUI starts the Temporal Web UI with its embedded assets.
//
// ui-server binds the port itself and exits the process if it cannot, so
// the port is checked immediately before starting; the remaining window is
// a few microseconds.
func startUI(ctx context.Context, host string, port int, frontendAddr, namespace, codecEndpoint string, logger *slog.Logger) (*uiserver.Server, error) {
	if err := checkFree(host, port, uiPortSpec); err != nil {
		return nil, err
	}
	cfg := &uiconfig.Config{
		Host:                host,
		Port:                port,
		TemporalGRPCAddress: frontendAddr,
		EnableUI:            true,
		DefaultNamespace:    namespace,
		// Plain http on loopback: secure cookies would never be sent back.
		CORS:             uiconfig.CORS{CookieInsecure: true},
		HideLogs:         true,
		DisableNewsFetch: true, // no internet from a dev box is normal
	}
	cfg.Codec.Endpoint = codecEndpoint
	srv, err := newUIServer(cfg)
	if err != nil {
		return nil, err
	}
	go func() {
		// Start returns nil after Stop; a bind failure exits inside Start.
		if err := srv.Start(); err != nil {
			logger.Error("Temporal Web UI stopped", "component", "ui", "err", err)
		}
	}()

	url := uiURL(host, port)
	err = poll(ctx, func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/", nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s/: %s", url, resp.Status)
		}
		return nil
	})
	if err != nil {
		srv.Stop()
		return nil, fmt.Errorf("devstack: Temporal Web UI at %s not ready: %w", url, err)
	}
	return srv, nil
}

// newUIServer converts ui-server's construction panics into errors.
func newUIServer(cfg *uiconfig.Config) (srv *uiserver.Server, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("devstack: create Temporal Web UI server: %v", r)
		}
	}()
	return uiserver.NewServer(server_options.WithConfigProvider(cfg)), nil
}

func uiURL(host string, port int) string {
	return "http://" + joinHostPort(host, port)
}
