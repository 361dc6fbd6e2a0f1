package deploy

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

const composeFile = "../docker-compose.yml"

// load reads docker-compose.yml as `docker compose` would, with only the
// given environment (so the host's variables cannot change the result) and
// profiles.
func load(t *testing.T, env map[string]string, profiles ...string) *types.Project {
	t.Helper()
	var envList []string
	for k, v := range env {
		envList = append(envList, k+"="+v)
	}
	opts, err := cli.NewProjectOptions([]string{composeFile},
		cli.WithWorkingDirectory(".."),
		cli.WithEnv(envList),
		cli.WithProfiles(profiles),
		cli.WithConsistency(true),
	)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("load %s: %v", composeFile, err)
	}
	return p
}

// The stack must be consistent both as `docker compose up` and with the
// optional codec profile.
var variants = []struct {
	name     string
	env      map[string]string
	profiles []string
}{
	{name: "default"},
	{name: "codec", env: map[string]string{"SANDGATE_CODEC_KEYS": "k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}, profiles: []string{"codec"}},
	{name: "metrics", profiles: []string{"metrics"}},
}

func TestComposeDependencies(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			p := load(t, v.env, v.profiles...)
			if len(p.Services) == 0 {
				t.Fatal("no services")
			}
			for name, s := range p.Services {
				for dep, d := range s.DependsOn {
					target, ok := p.Services[dep]
					if !ok {
						t.Errorf("%s depends on %q, which is not a service (or only in a profile that is off)", name, dep)
						continue
					}
					switch d.Condition {
					case types.ServiceConditionHealthy:
						if target.HealthCheck == nil || target.HealthCheck.Disable || len(target.HealthCheck.Test) == 0 {
							t.Errorf("%s waits for %s to be healthy, but %s has no health check", name, dep, dep)
						}
					case types.ServiceConditionCompletedSuccessfully:
						// A one-shot that restarts would never "complete".
						if target.Restart != "" && target.Restart != types.RestartPolicyNo {
							t.Errorf("%s waits for %s to complete, but %s restarts (%s)", name, dep, dep, target.Restart)
						}
					case types.ServiceConditionStarted:
					default:
						t.Errorf("%s depends on %s with unknown condition %q", name, dep, d.Condition)
					}
				}
			}
		})
	}
}

func TestComposeVolumes(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			p := load(t, v.env, v.profiles...)
			for name, s := range p.Services {
				for _, vol := range s.Volumes {
					switch vol.Type {
					case types.VolumeTypeVolume:
						if vol.Source == "" {
							continue // anonymous volume
						}
						if _, ok := p.Volumes[vol.Source]; !ok {
							t.Errorf("%s mounts volume %q, which is not declared under volumes:", name, vol.Source)
						}
					case types.VolumeTypeBind:
						if _, err := os.Stat(vol.Source); err != nil {
							t.Errorf("%s bind-mounts %s: %v", name, vol.Source, err)
						}
					}
				}
			}
			// Data must outlive containers: the stores keep it on named volumes.
			for _, svc := range []string{"postgresql", "minio"} {
				s, ok := p.Services[svc]
				if !ok {
					t.Fatalf("no %s service", svc)
				}
				if !slices.ContainsFunc(s.Volumes, func(v types.ServiceVolumeConfig) bool { return v.Type == types.VolumeTypeVolume && v.Source != "" }) {
					t.Errorf("%s keeps its data on no named volume", svc)
				}
			}
		})
	}
}

// The server reads its dynamic config from a bind-mounted directory: the
// file it is pointed at must be in that directory.
func TestComposeTemporalServer(t *testing.T) {
	p := load(t, nil)
	s := p.Services["temporal"]
	env := envOf(s)
	for _, k := range []string{"BIND_ON_IP", "TEMPORAL_BROADCAST_ADDRESS"} {
		if v, ok := env[k]; ok && net.ParseIP(v) == nil {
			t.Errorf("temporal: %s=%q: the server accepts only an IP address here and fails to start otherwise", k, v)
		}
	}
	dc := env["DYNAMIC_CONFIG_FILE_PATH"]
	found := false
	for _, vol := range s.Volumes {
		if vol.Type == types.VolumeTypeBind && strings.HasPrefix(dc, vol.Target+"/") {
			if _, err := os.Stat(filepath.Join(vol.Source, strings.TrimPrefix(dc, vol.Target+"/"))); err != nil {
				t.Errorf("temporal: DYNAMIC_CONFIG_FILE_PATH %s: %v", dc, err)
			}
			found = true
		}
	}
	if dc != "" && !found {
		t.Errorf("temporal: DYNAMIC_CONFIG_FILE_PATH %s is on no mounted directory", dc)
	}
}

// workerEnvSources are the packages whose code decides what the worker
// reads from the environment.
var workerEnvSources = []string{"../cmd/worker", "../internal/app", "../objstore", "../codec"}

// Variables the worker reads that compose may leave out, and why.
var optionalWorkerEnv = map[string]string{
	"AWS_ENDPOINT_URL":         "fallback for AWS_ENDPOINT_URL_S3, which is set",
	"AWS_DEFAULT_REGION":       "fallback for AWS_REGION, which is set",
	"SANDGATE_ATTESTATION_KEY": "attestations are unsigned without a key; a deployment mounts its own",
	// The compose stack's Temporal is plaintext on the compose network; these
	// are for Temporal Cloud or an mTLS cluster (README, Production).
	"TEMPORAL_API_KEY":                       "Temporal Cloud API key; the local cluster needs none",
	"TEMPORAL_TLS":                           "TLS is off for the local cluster",
	"TEMPORAL_TLS_CLIENT_CERT_PATH":          "mTLS client certificate; none locally",
	"TEMPORAL_TLS_CLIENT_CERT_DATA":          "mTLS client certificate; none locally",
	"TEMPORAL_TLS_CLIENT_KEY_PATH":           "mTLS client key; none locally",
	"TEMPORAL_TLS_CLIENT_KEY_DATA":           "mTLS client key; none locally",
	"TEMPORAL_TLS_SERVER_CA_CERT_PATH":       "server CA; none locally",
	"TEMPORAL_TLS_SERVER_CA_CERT_DATA":       "server CA; none locally",
	"TEMPORAL_TLS_SERVER_NAME":               "TLS server name; none locally",
	"TEMPORAL_TLS_DISABLE_HOST_VERIFICATION": "TLS is off for the local cluster",
	"TEMPORAL_GRPC_META_":                    "a prefix (TEMPORAL_GRPC_META_X_FOO), not a variable",
}

// Variables compose must pass but may leave empty.
var mayBeEmptyWorkerEnv = map[string]string{
	"SANDGATE_CODEC_KEYS": "empty means no payload encryption (the default)",
}

var envName = regexp.MustCompile(`^(TEMPORAL|AWS|SANDGATE)_[A-Z0-9_]+$`)

// workerEnvVars finds the environment variables the worker reads by
// scanning its packages' non-test Go files for string constants that look
// like our variables, so a variable added to the code fails this test
// until compose sets it (or it is listed as optional above).
func workerEnvVars(t *testing.T) []string {
	t.Helper()
	seen := map[string]bool{}
	fset := token.NewFileSet()
	for _, dir := range workerEnvSources {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range files {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(f, func(n ast.Node) bool {
				lit, ok := n.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					return true
				}
				if s, err := strconv.Unquote(lit.Value); err == nil && envName.MatchString(s) {
					seen[s] = true
				}
				return true
			})
		}
	}
	var out []string
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func envOf(s types.ServiceConfig) map[string]string {
	m := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			m[k] = *v
		}
	}
	return m
}

func TestComposeWorkerEnv(t *testing.T) {
	vars := workerEnvVars(t)
	t.Logf("the worker reads: %s", strings.Join(vars, " "))
	// If the scan stopped finding these, it is broken, not the compose file.
	for _, k := range []string{"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_ENDPOINT_URL_S3", "SANDGATE_BUCKET", "SANDGATE_CODEC_KEYS"} {
		if !slices.Contains(vars, k) {
			t.Fatalf("scan of %v did not find %s", workerEnvSources, k)
		}
	}
	for k := range optionalWorkerEnv {
		if !slices.Contains(vars, k) {
			t.Errorf("optionalWorkerEnv lists %s, which the worker no longer reads: remove it", k)
		}
	}

	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			p := load(t, v.env, v.profiles...)
			w, ok := p.Services["worker"]
			if !ok {
				t.Fatal("no worker service")
			}
			env := envOf(w)
			for _, k := range vars {
				if _, opt := optionalWorkerEnv[k]; opt {
					continue
				}
				val, set := env[k]
				switch {
				case !set:
					t.Errorf("worker: %s is not set; cmd/worker reads it", k)
				case val == "" && mayBeEmptyWorkerEnv[k] == "":
					t.Errorf("worker: %s is empty", k)
				}
			}
			if got, want := env["SANDGATE_CODEC_KEYS"], v.env["SANDGATE_CODEC_KEYS"]; got != want {
				t.Errorf("worker: SANDGATE_CODEC_KEYS = %q, want the host's %q", got, want)
			}
			checkWorkerAgrees(t, p, env)
		})
	}
}

// checkWorkerAgrees checks the worker's settings point at what the other
// services provide.
func checkWorkerAgrees(t *testing.T, p *types.Project, env map[string]string) {
	t.Helper()
	host, port, err := net.SplitHostPort(env["TEMPORAL_ADDRESS"])
	if err != nil {
		t.Errorf("worker: TEMPORAL_ADDRESS %q: %v", env["TEMPORAL_ADDRESS"], err)
	} else if _, ok := p.Services[host]; !ok || port != "7233" {
		t.Errorf("worker: TEMPORAL_ADDRESS %q is not the temporal service's frontend", env["TEMPORAL_ADDRESS"])
	}
	u, err := url.Parse(env["AWS_ENDPOINT_URL_S3"])
	if err != nil || u.Hostname() == "" {
		t.Errorf("worker: AWS_ENDPOINT_URL_S3 %q is not a URL", env["AWS_ENDPOINT_URL_S3"])
	} else if minio, ok := p.Services[u.Hostname()]; !ok {
		t.Errorf("worker: AWS_ENDPOINT_URL_S3 host %q is not a service", u.Hostname())
	} else {
		m := envOf(minio)
		if env["AWS_ACCESS_KEY_ID"] != m["MINIO_ROOT_USER"] || env["AWS_SECRET_ACCESS_KEY"] != m["MINIO_ROOT_PASSWORD"] {
			t.Errorf("worker: AWS credentials do not match %s's MINIO_ROOT_USER/PASSWORD", u.Hostname())
		}
	}
	if mb, ok := p.Services["minio-bucket"]; !ok {
		t.Error("no minio-bucket service creates the bucket")
	} else if !strings.Contains(strings.Join(mb.Command, " "), "/"+env["SANDGATE_BUCKET"]+"\n") &&
		!strings.HasSuffix(strings.TrimSpace(strings.Join(mb.Command, " ")), "/"+env["SANDGATE_BUCKET"]) {
		t.Errorf("minio-bucket does not create the worker's bucket %q: %q", env["SANDGATE_BUCKET"], mb.Command)
	}
	if ns, ok := p.Services["temporal-namespace"]; !ok {
		t.Error("no temporal-namespace service")
	} else if cmd := strings.Join(ns.Command, " "); !strings.Contains(cmd, "namespace create "+env["TEMPORAL_NAMESPACE"]) {
		t.Errorf("temporal-namespace does not create the worker's namespace %q", env["TEMPORAL_NAMESPACE"])
	} else {
		// The search attributes the workflows set must be registered.
		for _, sa := range []string{"ModelName", "ModelVersion", "ReleaseStage", "GateVerdict"} {
			if !strings.Contains(cmd, "--name "+sa+" ") {
				t.Errorf("temporal-namespace does not create search attribute %s", sa)
			}
		}
	}
}

func TestComposeCodecProfile(t *testing.T) {
	off := load(t, nil)
	if _, ok := off.Services["codec-server"]; ok {
		t.Error("codec-server runs without the codec profile")
	}
	if _, ok := off.DisabledServices["codec-server"]; !ok {
		t.Error("no codec-server service in profile codec")
	}
	if ep := envOf(off.Services["temporal-ui"])["TEMPORAL_CODEC_ENDPOINT"]; ep != "" {
		t.Errorf("without keys the UI still has a codec endpoint %q", ep)
	}

	on := load(t, variants[1].env, variants[1].profiles...)
	cs, ok := on.Services["codec-server"]
	if !ok {
		t.Fatal("codec-server not enabled by profile codec")
	}
	ui := envOf(on.Services["temporal-ui"])
	ep, err := url.Parse(ui["TEMPORAL_CODEC_ENDPOINT"])
	if err != nil || ep.Host == "" {
		t.Fatalf("with keys, the UI's TEMPORAL_CODEC_ENDPOINT = %q, want the codec server's URL", ui["TEMPORAL_CODEC_ENDPOINT"])
	}
	// The browser calls the endpoint: it must be a published port whose
	// container port is the one the server listens on.
	args := strings.Join(cs.Command, " ")
	published := false
	for _, pc := range cs.Ports {
		if pc.Published == ep.Port() && strings.Contains(args, "--listen 0.0.0.0:"+strconv.Itoa(int(pc.Target))) {
			published = true
		}
	}
	if !published {
		t.Errorf("codec endpoint %s is not the published port the codec server listens on (ports %+v, args %q)", ep, cs.Ports, args)
	}
	// The UI page's origin is what the browser sends; CORS must allow it.
	for _, origin := range strings.Split(ui["TEMPORAL_CORS_ORIGINS"], ",") {
		if !strings.Contains(args, "--cors-origin "+strings.TrimSpace(origin)) {
			t.Errorf("codec server does not allow the UI origin %q: %q", origin, args)
		}
	}
	if got := envOf(cs)["SANDGATE_CODEC_KEYS"]; got != variants[1].env["SANDGATE_CODEC_KEYS"] {
		t.Errorf("codec server gets keys %q, not the workers' keys", got)
	}
}

// TestComposeMetrics checks Prometheus (profile metrics) scrapes the port
// the workers serve /metrics on.
func TestComposeMetrics(t *testing.T) {
	p := load(t, nil, "metrics")
	listen := envOf(p.Services["worker"])["SANDGATE_METRICS_LISTEN"]
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		t.Fatalf("worker: SANDGATE_METRICS_LISTEN %q: %v", listen, err)
	}
	if !slices.Contains(p.Services["worker"].Expose, port) {
		t.Errorf("worker does not expose its metrics port %s: %v", port, p.Services["worker"].Expose)
	}
	b, err := os.ReadFile("prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `names: ["worker"]`) || !strings.Contains(string(b), "port: "+port+"\n") {
		t.Errorf("deploy/prometheus.yml does not scrape the worker service on port %s", port)
	}
	if _, ok := p.Services["prometheus"]; !ok {
		t.Error("profile metrics has no prometheus service")
	}
	if _, ok := load(t, nil).Services["prometheus"]; ok {
		t.Error("prometheus runs without the metrics profile")
	}
}
