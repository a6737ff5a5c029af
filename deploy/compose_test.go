package deploy_test

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/ownyou/home/pkg/config"
	"github.com/ownyou/home/pkg/ops"
	"github.com/ownyou/home/services/agents"
	"github.com/ownyou/home/services/classifier"
	"github.com/ownyou/home/services/embedder"
	"github.com/ownyou/home/services/gateway"
	"github.com/ownyou/home/services/ingest"
)

// configs maps each OwnYou service in compose to the config structs its
// process reads (the service's own plus ops, which every process runs).
var configs = map[string][]any{
	"ingest":     {ingest.Config{}, ops.Config{}},
	"embedder":   {embedder.Config{}, ops.Config{}},
	"classifier": {classifier.Config{}, ops.Config{}},
	"agents":     {agents.Config{}, ops.Config{}},
	"gateway":    {gateway.Config{}, ops.Config{}},
}

// workers scale with --scale: no fixed names, no host ports.
var workers = []string{"ingest", "embedder", "classifier", "agents"}

// readElsewhere are variables set in compose that no config struct declares:
// the OpenTelemetry SDK's own, and ones read by code merged from other areas
// (the embedder's ONNX Runtime path and cmd/models' cache and mirror).
var readElsewhere = map[string]bool{
	"OTEL_EXPORTER_OTLP_ENDPOINT": true, "OTEL_EXPORTER_OTLP_PROTOCOL": true,
	"OWNYOU_MODEL_DIR": true, "OWNYOU_MODEL_MIRROR": true, "OWNYOU_ORT_LIB": true,
	"OWNYOU_EMBED_THREADS": true, "OWNYOU_SECRET_KEY": true, "OWNYOU_GOOGLE_CLIENT_ID": true,
	"OWNYOU_GOOGLE_CLIENT_SECRET": true, "OWNYOU_LLM_BASE_URL": true, "OWNYOU_LLM_MODEL": true,
	"OWNYOU_LLM_API_KEY":    true,
	"OWNYOU_ADMIN_PASSWORD": true,
}

func load(t *testing.T, env []string, envFiles ...string) *types.Project {
	t.Helper()
	opts := []cli.ProjectOptionsFn{
		cli.WithWorkingDirectory("."),
		cli.WithEnv(env),
		cli.WithProfiles([]string{"observability", "llm"}),
	}
	if len(envFiles) > 0 {
		opts = append(opts, cli.WithEnvFiles(envFiles...), cli.WithDotEnv)
	}
	po, err := cli.NewProjectOptions([]string{"compose.yaml"}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	p, err := po.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("compose.yaml does not load: %v", err)
	}
	return p
}

func TestComposeLoadsWithNoEditsAndWithTheExampleEnv(t *testing.T) {
	for name, files := range map[string][]string{"no .env": nil, ".env.example": {".env.example"}} {
		t.Run(name, func(t *testing.T) {
			p := load(t, nil, files...)
			for _, s := range []string{"postgres", "nats", "models", "ingest", "embedder", "classifier", "agents", "gateway"} {
				if _, ok := p.Services[s]; !ok {
					t.Errorf("service %s missing", s)
				}
			}
			gw := p.Services["gateway"]
			if len(gw.Ports) != 1 || gw.Ports[0].Published != "8080" || gw.Ports[0].Target != 8080 {
				t.Errorf("gateway ports = %+v, want 8080:8080", gw.Ports)
			}
			if got := *gw.Environment["DATABASE_URL"]; got != "postgres://ownyou:ownyou@postgres:5432/ownyou?sslmode=disable" {
				t.Errorf("DATABASE_URL = %q", got)
			}
		})
	}
}

func TestEveryImageIsPinned(t *testing.T) {
	p := load(t, nil)
	for name, s := range p.Services {
		if s.Image == "" {
			t.Errorf("%s: no image", name)
			continue
		}
		ref := s.Image
		if i := strings.LastIndex(ref, "@sha256:"); i > 0 {
			continue // a digest pins it
		}
		slash := strings.LastIndex(ref, "/")
		colon := strings.LastIndex(ref, ":")
		if colon < slash+1 {
			t.Errorf("%s: image %q has no tag", name, ref)
			continue
		}
		tag := ref[colon+1:]
		if tag == "latest" || !strings.ContainsAny(tag, "0123456789") {
			t.Errorf("%s: image %q is not pinned to a version", name, ref)
		}
	}
}

// optional reports whether a variable without a default documents what
// happens when it is unset (a derived default, a feature left off).
func optional(v config.Var) bool {
	h := strings.ToLower(v.Help)
	for _, w := range []string{"default", "empty", "when set", "override", "optional"} {
		if strings.Contains(h, w) {
			return true
		}
	}
	return false
}

func TestEveryVariableAServiceReadsIsSetOrDefaulted(t *testing.T) {
	p := load(t, nil)
	for svc, cfgs := range configs {
		s, ok := p.Services[svc]
		if !ok {
			t.Errorf("service %s missing", svc)
			continue
		}
		declared := map[string]bool{}
		for _, v := range config.Vars(cfgs...) {
			declared[v.Name] = true
			val, set := s.Environment[v.Name]
			if v.Default == "" && !optional(v) && (!set || val == nil || *val == "") {
				t.Errorf("%s reads %s (no default, %q) but compose does not set it", svc, v.Name, v.Help)
			}
		}
		// The deployment's own wiring must be explicit, whatever the defaults.
		for _, name := range []string{"DATABASE_URL", "OWNYOU_NATS_URL", "OWNYOU_ADMIN_ADDR", "OWNYOU_DATA_DIR"} {
			if val := s.Environment[name]; val == nil || *val == "" {
				t.Errorf("%s: %s not set", svc, name)
			}
		}
		if a := s.Environment["OWNYOU_ADMIN_ADDR"]; a != nil && strings.HasPrefix(*a, "127.") {
			t.Errorf("%s: admin address %s is loopback-only; Prometheus cannot scrape it", svc, *a)
		}
		for name := range s.Environment {
			if (strings.HasPrefix(name, "OWNYOU_") || name == "DATABASE_URL") && !declared[name] && !readElsewhere[name] {
				t.Errorf("%s: compose sets %s, which nothing reads (typo?)", svc, name)
			}
		}
	}
	if a := p.Services["gateway"].Environment["OWNYOU_HTTP_ADDR"]; a == nil || !strings.HasPrefix(*a, "0.0.0.0:") {
		t.Errorf("gateway OWNYOU_HTTP_ADDR = %v, want 0.0.0.0:… so the published port reaches it", a)
	}
}

func TestLongRunningServicesHaveHealthchecksRestartAndOrderedStart(t *testing.T) {
	p := load(t, nil)
	for name, s := range p.Services {
		if name == "models" {
			if s.Command[0] != "models" || s.Restart == "" || s.Restart == "always" || s.Restart == "unless-stopped" {
				t.Errorf("models: command %v restart %q; want a one-shot `models fetch` retried on failure", s.Command, s.Restart)
			}
			continue
		}
		if s.Restart == "" || s.Restart == "no" {
			t.Errorf("%s: no restart policy", name)
		}
		if len(s.Profiles) == 0 && (s.HealthCheck == nil || s.HealthCheck.Disable || len(s.HealthCheck.Test) == 0) {
			t.Errorf("%s: no healthcheck", name)
		}
	}
	for svc := range configs {
		s := p.Services[svc]
		want := map[string]string{"postgres": types.ServiceConditionHealthy, "nats": types.ServiceConditionHealthy, "models": types.ServiceConditionCompletedSuccessfully}
		for dep, cond := range want {
			if d, ok := s.DependsOn[dep]; !ok || d.Condition != cond {
				t.Errorf("%s: depends_on %s = %+v, want condition %s", svc, dep, d, cond)
			}
		}
		if hc := s.HealthCheck; hc == nil || !slices.Contains(hc.Test, "probe") {
			t.Errorf("%s: healthcheck %v, want the probe of /readyz", svc, hc)
		}
	}
	if p.Services["postgres"].ShmSize == 0 {
		t.Error("postgres: no shm_size (parallel queries fail with the 64 MB default)")
	}
}

func TestStateLivesInDeclaredVolumes(t *testing.T) {
	p := load(t, nil)
	mounts := func(svc string) map[string]types.ServiceVolumeConfig {
		out := map[string]types.ServiceVolumeConfig{}
		for _, v := range p.Services[svc].Volumes {
			out[v.Target] = v
		}
		return out
	}
	want := map[string][]string{
		"postgres": {"/var/lib/postgresql/data"},
		"nats":     {"/data"},
		"models":   {"/data/models"},
		"embedder": {"/data", "/data/models"},
		"gateway":  {"/data", "/data/models", "/backups"},
	}
	for svc, targets := range want {
		m := mounts(svc)
		for _, target := range targets {
			v, ok := m[target]
			if !ok {
				t.Errorf("%s: nothing mounted at %s", svc, target)
				continue
			}
			if v.Type != types.VolumeTypeVolume {
				t.Errorf("%s: %s is a %s mount, want a named volume by default", svc, target, v.Type)
			} else if _, ok := p.Volumes[v.Source]; !ok {
				t.Errorf("%s: volume %s is not declared", svc, v.Source)
			}
		}
	}
	if a, b := mounts("models")["/data/models"].Source, mounts("embedder")["/data/models"].Source; a != b {
		t.Errorf("models fetches into %q but the embedder reads %q", a, b)
	}
	for name, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeBind {
				if _, err := os.Stat(v.Source); err != nil {
					t.Errorf("%s: bind mount source: %v", name, err)
				}
			}
		}
	}
}

func TestWorkersScale(t *testing.T) {
	p := load(t, []string{"OWNYOU_CLASSIFIER_REPLICAS=4"})
	for _, w := range workers {
		s := p.Services[w]
		if s.ContainerName != "" {
			t.Errorf("%s: fixed container_name %q prevents --scale", w, s.ContainerName)
		}
		if len(s.Ports) != 0 {
			t.Errorf("%s: host ports %v prevent --scale", w, s.Ports)
		}
		if s.Deploy == nil || s.Deploy.Replicas == nil {
			t.Errorf("%s: replicas not configurable", w)
		}
	}
	cl := p.Services["classifier"]
	if r := cl.GetScale(); r != 4 {
		t.Errorf("classifier replicas = %d with OWNYOU_CLASSIFIER_REPLICAS=4", r)
	}
	s := p.Services["embedder"]
	s.SetScale(3)
	if s.GetScale() != 3 {
		t.Errorf("embedder cannot be scaled to 3")
	}
}

func TestOptionalProfiles(t *testing.T) {
	p := load(t, nil)
	want := map[string]string{"otel-collector": "observability", "jaeger": "observability", "prometheus": "observability", "grafana": "observability", "ollama": "llm"}
	for name, s := range p.Services {
		prof, optional := want[name]
		switch {
		case optional && !slices.Equal(s.Profiles, []string{prof}):
			t.Errorf("%s: profiles %v, want [%s]", name, s.Profiles, prof)
		case !optional && len(s.Profiles) != 0:
			t.Errorf("%s: profiles %v, want none (part of the default deployment)", name, s.Profiles)
		}
	}
	// The shipped dashboard is provisioned.
	if _, err := os.Stat(filepath.Join("observability", "grafana", "dashboards", "pipeline.json")); err != nil {
		t.Error(err)
	}
	// Without the profiles, only the default deployment starts.
	po, err := cli.NewProjectOptions([]string{"compose.yaml"}, cli.WithWorkingDirectory("."), cli.WithEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	def, err := po.LoadProject(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := slices.Sorted(maps.Keys(def.Services))
	if !slices.Equal(got, []string{"agents", "classifier", "embedder", "gateway", "ingest", "models", "nats", "postgres"}) {
		t.Errorf("default services = %v", got)
	}
}
