package devstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/membership/static"
	"go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
)

const (
	clusterName = "active"
	storeName   = "sqlite-default"
)

// SearchAttributes returns the custom search attributes sandgate workflows
// set (all Keyword). A function, not a variable, so callers cannot change
// what devstack registers.
func SearchAttributes() []string {
	return []string{"ModelName", "ModelVersion", "ReleaseStage", "GateVerdict"}
}

type temporalPorts struct {
	frontend, frontendHTTP, history, matching, worker int
}

func (p temporalPorts) addr(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}

func sqliteConfig(dbPath string) *config.SQL {
	return &config.SQL{
		PluginName:      sqlite.PluginName,
		DatabaseName:    dbPath,
		ConnectAddr:     "localhost", // unused by the sqlite plugin, but validated as non-empty
		ConnectProtocol: "tcp",
		ConnectAttributes: map[string]string{
			"mode":         "rwc",
			"journal_mode": "wal",
			// NORMAL is durable across process crashes in WAL mode; only an OS
			// crash can lose the last transactions, acceptable for a dev stack.
			"synchronous": "1",
		},
	}
}

// prepareDB creates the schema on first use and makes sure the namespace
// exists. Search attributes passed here only take effect when the namespace
// is new; ensureSearchAttributes covers existing databases.
func prepareDB(dbPath, namespace string) error {
	cfg := sqliteConfig(dbPath)
	_, err := os.Stat(dbPath)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := sqliteschema.SetupSchema(cfg); err != nil {
			// A half-initialised file would be mistaken for a good one on the
			// next start; remove it so a retry starts clean.
			for _, suffix := range []string{"", "-wal", "-shm"} {
				_ = os.Remove(dbPath + suffix)
			}
			return fmt.Errorf("devstack: create Temporal schema in %s: %w", dbPath, err)
		}
	case err != nil:
		return fmt.Errorf("devstack: stat %s: %w", dbPath, err)
	}

	sas := make(map[string]enumspb.IndexedValueType)
	for _, name := range SearchAttributes() {
		sas[name] = enumspb.INDEXED_VALUE_TYPE_KEYWORD
	}
	nsCfg, err := sqliteschema.NewNamespaceConfig(clusterName, namespace, false, sas)
	if err != nil {
		return fmt.Errorf("devstack: namespace %q config: %w", namespace, err)
	}
	if err := sqliteschema.CreateNamespaces(cfg, nsCfg); err != nil {
		return fmt.Errorf("devstack: register namespace %q in %s: %w", namespace, dbPath, err)
	}
	return nil
}

func serverConfig(host, dbPath string, p temporalPorts) *config.Config {
	frontendAddr := p.addr(host, p.frontend)
	rpc := func(port, httpPort int) config.Service {
		return config.Service{RPC: config.RPC{GRPCPort: port, HTTPPort: httpPort, BindOnIP: host}}
	}
	return &config.Config{
		Global: config.Global{
			Membership: config.Membership{MaxJoinDuration: 30 * time.Second, BroadcastAddress: host},
		},
		Persistence: config.Persistence{
			DefaultStore:     storeName,
			VisibilityStore:  storeName,
			NumHistoryShards: 1,
			DataStores: map[string]config.DataStore{
				storeName: {SQL: sqliteConfig(dbPath)},
			},
		},
		ClusterMetadata: &cluster.Config{
			EnableGlobalNamespace:    false,
			FailoverVersionIncrement: 10,
			MasterClusterName:        clusterName,
			CurrentClusterName:       clusterName,
			ClusterInformation: map[string]cluster.ClusterInformation{
				clusterName: {
					Enabled:                true,
					InitialFailoverVersion: 1,
					RPCAddress:             frontendAddr,
					HTTPAddress:            p.addr(host, p.frontendHTTP),
				},
			},
		},
		DCRedirectionPolicy: config.DCRedirectionPolicy{Policy: "noop"},
		Services: map[string]config.Service{
			string(primitives.FrontendService): rpc(p.frontend, p.frontendHTTP),
			string(primitives.HistoryService):  rpc(p.history, 0),
			string(primitives.MatchingService): rpc(p.matching, 0),
			string(primitives.WorkerService):   rpc(p.worker, 0),
		},
		Archival: config.Archival{
			History:    config.HistoryArchival{State: "disabled"},
			Visibility: config.VisibilityArchival{State: "disabled"},
		},
		NamespaceDefaults: config.NamespaceDefaults{
			Archival: config.ArchivalNamespaceDefaults{
				History:    config.HistoryArchivalNamespaceDefaults{State: "disabled"},
				Visibility: config.VisibilityArchivalNamespaceDefaults{State: "disabled"},
			},
		},
		// The server panics at start without it: its internal clients dial this.
		PublicClient: config.PublicClient{HostPort: frontendAddr},
	}
}

// dynamicConfig mirrors what `temporal server start-dev` turns on, so
// workflows behave the same here as in the CLI's dev server.
func dynamicConfig() dynamicconfig.StaticClient {
	return dynamicconfig.StaticClient{
		// Makes newly added search attributes usable immediately instead of
		// after the cache refresh interval (tens of seconds).
		dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key(): true,
		dynamicconfig.FrontendEnableWorkerVersioningDataAPIs.Key():  true,
		dynamicconfig.FrontendEnableWorkerVersioningRuleAPIs.Key():  true,
	}
}

// startTemporal builds and starts the server. The server's logger panics
// on Fatal (see temporalLogger); recover turns that into an error so a bind
// race or bad config never takes the caller's process down.
func startTemporal(host, dbPath string, p temporalPorts, logger *slog.Logger, phase *atomic.Int32) (srv temporal.Server, err error) {
	defer func() {
		if r := recover(); r != nil {
			if srv != nil {
				_ = srv.Stop()
			}
			srv = nil
			err = fmt.Errorf("devstack: Temporal server failed to start: %v", r)
		}
	}()
	tl := newTemporalLogger(logger, phase)
	hosts := map[primitives.ServiceName]static.Hosts{
		primitives.FrontendService: static.SingleLocalHost(p.addr(host, p.frontend)),
		primitives.HistoryService:  static.SingleLocalHost(p.addr(host, p.history)),
		primitives.MatchingService: static.SingleLocalHost(p.addr(host, p.matching)),
		primitives.WorkerService:   static.SingleLocalHost(p.addr(host, p.worker)),
	}
	srv, err = temporal.NewServer(
		temporal.WithConfig(serverConfig(host, dbPath, p)),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithStaticHosts(hosts),
		temporal.WithLogger(tl),
		temporal.WithNamespaceLogger(tl),
		temporal.WithAuthorizer(authorization.NewNoopAuthorizer()),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper {
			return authorization.NewNoopClaimMapper()
		}),
		temporal.WithDynamicConfigClient(dynamicConfig()),
	)
	if err != nil {
		return nil, fmt.Errorf("devstack: create Temporal server: %w", err)
	}
	if err := srv.Start(); err != nil {
		_ = srv.Stop()
		return nil, fmt.Errorf("devstack: start Temporal server: %w", err)
	}
	return srv, nil
}

// waitTemporalReady dials the frontend, waits for the namespace, adds any
// missing search attributes and waits until all are listed.
func waitTemporalReady(ctx context.Context, hostPort, namespace string, logger *slog.Logger) error {
	var c client.Client
	err := poll(ctx, func() error {
		var err error
		c, err = client.DialContext(ctx, client.Options{
			HostPort:  hostPort,
			Namespace: namespace,
			Logger:    sdklog.NewStructuredLogger(logger),
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("devstack: connect to Temporal frontend %s: %w", hostPort, err)
	}
	defer c.Close()

	err = poll(ctx, func() error {
		_, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: namespace})
		return err
	})
	if err != nil {
		return fmt.Errorf("devstack: namespace %q not available: %w", namespace, err)
	}

	missing, err := missingSearchAttributes(ctx, c, namespace)
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		req := &operatorservice.AddSearchAttributesRequest{
			Namespace:        namespace,
			SearchAttributes: make(map[string]enumspb.IndexedValueType, len(missing)),
		}
		for _, name := range missing {
			req.SearchAttributes[name] = enumspb.INDEXED_VALUE_TYPE_KEYWORD
		}
		_, err := c.OperatorService().AddSearchAttributes(ctx, req)
		var exists *serviceerror.AlreadyExists
		if err != nil && !errors.As(err, &exists) {
			return fmt.Errorf("devstack: add search attributes %v to namespace %q: %w", missing, namespace, err)
		}
	}
	err = poll(ctx, func() error {
		missing, err := missingSearchAttributes(ctx, c, namespace)
		if err != nil {
			return err
		}
		if len(missing) > 0 {
			return fmt.Errorf("search attributes %v not visible yet", missing)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("devstack: wait for search attributes in namespace %q: %w", namespace, err)
	}
	return nil
}

// missingSearchAttributes lists the sandgate attributes the namespace lacks.
// An attribute that exists with another type is an error: silently using it
// would make every visibility query on it fail later.
func missingSearchAttributes(ctx context.Context, c client.Client, namespace string) ([]string, error) {
	resp, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return nil, fmt.Errorf("devstack: list search attributes of namespace %q: %w", namespace, err)
	}
	var missing []string
	for _, name := range SearchAttributes() {
		t, ok := resp.GetCustomAttributes()[name]
		if !ok {
			missing = append(missing, name)
			continue
		}
		if t != enumspb.INDEXED_VALUE_TYPE_KEYWORD {
			return nil, fmt.Errorf("devstack: search attribute %s in namespace %q has type %s, sandgate needs Keyword: remove it or use a fresh %s",
				name, namespace, t, FlagDataDir)
		}
	}
	return missing, nil
}
