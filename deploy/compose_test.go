package deploy

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v3"

	"github.com/gocyclegan/cyclegan/model"
	"github.com/gocyclegan/cyclegan/pipeline"
	"github.com/gocyclegan/cyclegan/pipeline/augmenter"
	"github.com/gocyclegan/cyclegan/pipeline/evaluator"
	"github.com/gocyclegan/cyclegan/pipeline/loader"
	"github.com/gocyclegan/cyclegan/pipeline/trainer"
)

// repoRoot is the repository root, where compose.yaml and the Dockerfile live, relative to
// this package's folder (the working directory of its tests).
const repoRoot = ".."

// stagePorts maps each stage service to its metrics and health port.
var stagePorts = map[string]int{
	"loader":    9101,
	"augmenter": 9102,
	"trainer":   9103,
	"evaluator": 9104,
}

// imageBuilder is the stage service whose build section builds the image of all four.
const imageBuilder = "loader"

// stageNames returns the stage services in pipeline order.
func stageNames() []string { return []string{"loader", "augmenter", "trainer", "evaluator"} }

// loadProject loads compose.yaml as `docker compose` does in the repository root, with env as
// the only variables: neither the test's environment nor a .env file takes part.
func loadProject(t *testing.T, env ...string) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions(
		[]string{filepath.Join(repoRoot, "compose.yaml")},
		cli.WithWorkingDirectory(repoRoot),
		cli.WithEnv(env),
	)
	if err != nil {
		t.Fatalf("compose options: %v", err)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("load compose.yaml with variables %q: %v", env, err)
	}
	return project
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, ok := p.Services[name]
	if !ok {
		t.Fatalf("compose.yaml has no service %q; it has %v", name, slices.Sorted(func(yield func(string) bool) {
			for n := range p.Services {
				if !yield(n) {
					return
				}
			}
		}))
	}
	return s
}

// environment returns the variables a service's container gets. A variable without a value
// in compose.yaml that the loading environment does not set is left out, as Compose does.
func environment(s types.ServiceConfig) map[string]string {
	env := make(map[string]string, len(s.Environment))
	for k, v := range s.Environment {
		if v != nil {
			env[k] = *v
		}
	}
	return env
}

func TestComposeServicePorts(t *testing.T) {
	p := loadProject(t)
	tests := []struct {
		service   string
		published []int // ports published on 127.0.0.1 under the same number
	}{
		{"nats", []int{4222, 8222}},
		{"loader", []int{9101}},
		{"augmenter", nil},
		{"trainer", []int{9103}},
		{"evaluator", []int{9104}},
		{"prometheus", []int{9090}},
		{"grafana", []int{3000}},
	}
	if len(p.Services) != len(tests) {
		t.Errorf("compose.yaml has %d services, want %d", len(p.Services), len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.service, func(t *testing.T) {
			s := service(t, p, tt.service)
			if len(s.Ports) != len(tt.published) {
				t.Errorf("%d published ports %+v, want %d", len(s.Ports), s.Ports, len(tt.published))
			}
			for _, port := range tt.published {
				i := slices.IndexFunc(s.Ports, func(pc types.ServicePortConfig) bool { return pc.Target == uint32(port) })
				if i < 0 {
					t.Errorf("container port %d is not published", port)
					continue
				}
				if got := s.Ports[i].Published; got != strconv.Itoa(port) {
					t.Errorf("container port %d is published as host port %q, want %d", port, got, port)
				}
				if got := s.Ports[i].HostIP; got != "127.0.0.1" {
					t.Errorf("port %d is published on %q, want 127.0.0.1 by default", port, got)
				}
			}
		})
	}
}

func TestComposeAugmenterReplicas(t *testing.T) {
	s := service(t, loadProject(t), "augmenter")
	if s.Deploy == nil || s.Deploy.Replicas == nil {
		t.Fatal("augmenter has no deploy.replicas")
	}
	if got := *s.Deploy.Replicas; got != 2 {
		t.Errorf("augmenter replicas = %d, want 2", got)
	}
}

func TestComposeStageServices(t *testing.T) {
	p := loadProject(t)
	image := service(t, p, "loader").Image
	if image == "" {
		t.Fatal("loader has no image name")
	}
	dockerfile := readDockerfile(t)
	for _, name := range stageNames() {
		t.Run(name, func(t *testing.T) {
			s := service(t, p, name)
			port := stagePorts[name]
			binary := "/usr/local/bin/" + name

			if s.Image != image {
				t.Errorf("image %q, want %q, the one image of all stages", s.Image, image)
			}
			// One service builds the image that all four run; see compose.yaml.
			if name == imageBuilder {
				if s.Build == nil {
					t.Error("no build section, so docker compose up cannot build the image")
				}
				if s.PullPolicy != types.PullPolicyBuild {
					t.Errorf("pull_policy %q, want %s", s.PullPolicy, types.PullPolicyBuild)
				}
			} else {
				if s.Build != nil {
					t.Errorf("has a build section; only the %s builds the stage image", imageBuilder)
				}
				if s.PullPolicy != types.PullPolicyNever {
					t.Errorf("pull_policy %q, want %s: the image is built by the %s", s.PullPolicy, types.PullPolicyNever, imageBuilder)
				}
			}
			if len(s.Command) == 0 || s.Command[0] != binary {
				t.Errorf("command %q, want it to start with %s", s.Command, binary)
			}
			if !strings.Contains(dockerfile.text, "./stages/"+name) {
				t.Errorf("the Dockerfile does not build ./stages/%s", name)
			}

			wantProbe := []string{"CMD", binary, "probe", fmt.Sprintf("http://127.0.0.1:%d/readyz", port)}
			if s.HealthCheck == nil {
				t.Error("no healthcheck")
			} else if !slices.Equal(s.HealthCheck.Test, wantProbe) {
				t.Errorf("healthcheck test %q, want %q", s.HealthCheck.Test, wantProbe)
			}

			env := environment(s)
			if got := env["CYCLEGAN_NATS_URL"]; got != "nats://nats:4222" {
				t.Errorf("CYCLEGAN_NATS_URL = %q, want nats://nats:4222", got)
			}
			if got, want := env["CYCLEGAN_METRICS_ADDR"], fmt.Sprintf(":%d", port); got != want {
				t.Errorf("CYCLEGAN_METRICS_ADDR = %q, want %q (all interfaces, so Prometheus can scrape it)", got, want)
			}

			dep, ok := s.DependsOn["nats"]
			if !ok {
				t.Error("does not depend on nats")
			} else if dep.Condition != types.ServiceConditionHealthy {
				t.Errorf("depends on nats with condition %q, want %s", dep.Condition, types.ServiceConditionHealthy)
			}
			if s.Restart != types.RestartPolicyOnFailure {
				t.Errorf("restart %q, want %s: a stage exits 0 when the run is finished", s.Restart, types.RestartPolicyOnFailure)
			}
			if s.User != dockerfile.user {
				t.Errorf("user %q, want the Dockerfile's USER %q", s.User, dockerfile.user)
			}
		})
	}
}

func TestComposeHealthChecks(t *testing.T) {
	p := loadProject(t)
	for name, s := range p.Services {
		if s.HealthCheck == nil || len(s.HealthCheck.Test) == 0 {
			t.Errorf("service %s has no healthcheck", name)
			continue
		}
		if s.HealthCheck.Test[0] != "CMD" {
			t.Errorf("service %s: healthcheck %q runs through a shell; images such as nats have none", name, s.HealthCheck.Test)
		}
	}
	grafana := service(t, p, "grafana")
	dep, ok := grafana.DependsOn["prometheus"]
	if !ok || dep.Condition != types.ServiceConditionHealthy {
		t.Errorf("grafana depends on prometheus as %+v (present: %v), want condition %s", dep, ok, types.ServiceConditionHealthy)
	}
}

// Overrides are the stage settings that compose.yaml sets on purpose to values other than
// the programs' defaults, because inside the compose network they must differ.
var overrides = []string{"CYCLEGAN_NATS_URL", "CYCLEGAN_METRICS_ADDR", "CYCLEGAN_RUN", "CYCLEGAN_OUTPUT"}

// stageSettings declares the settings of one stage program as its main package does: the
// common settings, the stage's own, and for the loader and the augmenter the preset that sets
// the default load or crop size. Values come from env alone.
func stageSettings(t *testing.T, stage string, env map[string]string) *pipeline.FlagSet {
	t.Helper()
	lookup := func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	}
	preset, err := model.Preset(model.PresetCPU)
	if err != nil {
		t.Fatal(err)
	}
	fs := pipeline.NewFlagSet(stage, lookup)
	common := pipeline.DefaultCommonConfig()
	presetName := model.PresetCPU
	switch stage {
	case "loader":
		cfg := loader.DefaultConfig()
		cfg.LoadSize = preset.LoadSize
		fs.String(&presetName, "preset", "model preset", pipeline.OneOf(model.PresetNames()...))
		common.Register(fs)
		cfg.Register(fs)
	case "augmenter":
		cfg := augmenter.DefaultConfig()
		cfg.CropSize = preset.CropSize
		fs.String(&presetName, "preset", "model preset", pipeline.OneOf(model.PresetNames()...))
		common.Register(fs)
		cfg.Register(fs)
	case "trainer":
		cfg := trainer.DefaultConfig()
		common.Register(fs)
		cfg.Register(fs)
	case "evaluator":
		cfg := evaluator.DefaultConfig()
		common.Register(fs)
		cfg.Register(fs)
	default:
		t.Fatalf("unknown stage %q", stage)
	}
	return fs
}

// effective returns each setting's value after Parse, keyed by environment variable.
func effective(fs *pipeline.FlagSet) map[string]string {
	values := map[string]string{}
	for _, a := range fs.LogValue().Group() {
		values[pipeline.EnvName(a.Key)] = a.Value.Resolve().String()
	}
	return values
}

func TestComposeStageSettings(t *testing.T) {
	p := loadProject(t)
	for _, name := range stageNames() {
		t.Run(name, func(t *testing.T) {
			env := environment(service(t, p, name))

			defaults := stageSettings(t, name, nil)
			if err := defaults.Parse(nil); err != nil {
				t.Fatalf("parse the %s defaults: %v", name, err)
			}
			want := effective(defaults)

			fs := stageSettings(t, name, env)
			if err := fs.Parse(nil); err != nil {
				t.Fatalf("the %s rejects its compose.yaml environment: %v", name, err)
			}
			got := effective(fs)

			for key := range env {
				if !strings.HasPrefix(key, pipeline.EnvPrefix) {
					continue
				}
				if _, ok := want[key]; !ok {
					t.Errorf("%s is not a setting of the %s", key, name)
				}
			}
			for key, def := range want {
				if slices.Contains(overrides, key) {
					continue
				}
				if got[key] != def {
					t.Errorf("%s = %q in compose.yaml, but the %s's default is %q", key, got[key], name, def)
				}
			}
		})
	}
}

func TestComposeVariables(t *testing.T) {
	dataset := t.TempDir()
	tests := []struct {
		name  string
		env   []string
		check func(t *testing.T, p *types.Project)
	}{
		{
			name: "run id reaches every stage",
			env:  []string{"CYCLEGAN_RUN=horse2zebra"},
			check: func(t *testing.T, p *types.Project) {
				for _, stage := range stageNames() {
					if got := environment(service(t, p, stage))["CYCLEGAN_RUN"]; got != "horse2zebra" {
						t.Errorf("%s: CYCLEGAN_RUN = %q, want horse2zebra", stage, got)
					}
				}
			},
		},
		{
			name: "crop size reaches augmenter and trainer",
			env:  []string{"CYCLEGAN_CROP_SIZE=32"},
			check: func(t *testing.T, p *types.Project) {
				for _, stage := range []string{"augmenter", "trainer"} {
					if got := environment(service(t, p, stage))["CYCLEGAN_CROP_SIZE"]; got != "32" {
						t.Errorf("%s: CYCLEGAN_CROP_SIZE = %q, want 32", stage, got)
					}
				}
			},
		},
		{
			name: "unset crop size leaves the preset's",
			env:  nil,
			check: func(t *testing.T, p *types.Project) {
				for _, stage := range []string{"augmenter", "trainer"} {
					if got, ok := environment(service(t, p, stage))["CYCLEGAN_CROP_SIZE"]; ok {
						t.Errorf("%s: CYCLEGAN_CROP_SIZE = %q, want it unset so the preset decides", stage, got)
					}
				}
			},
		},
		{
			name: "host dataset folder",
			env:  []string{"CYCLEGAN_DATASET_DIR=" + dataset, "CYCLEGAN_DATASET=/dataset"},
			check: func(t *testing.T, p *types.Project) {
				for _, stage := range []string{"loader", "evaluator"} {
					s := service(t, p, stage)
					if got := environment(s)["CYCLEGAN_DATASET"]; got != "/dataset" {
						t.Errorf("%s: CYCLEGAN_DATASET = %q, want /dataset", stage, got)
					}
					m, ok := mount(s, "/dataset")
					if !ok {
						t.Errorf("%s: nothing is mounted at /dataset", stage)
						continue
					}
					if m.Type != types.VolumeTypeBind || m.Source != dataset || !m.ReadOnly {
						t.Errorf("%s: /dataset mount %+v, want a read-only bind of %s", stage, m, dataset)
					}
				}
			},
		},
		{
			name: "runs in a host folder",
			env:  []string{"CYCLEGAN_RUNS_VOLUME=./out"},
			check: func(t *testing.T, p *types.Project) {
				want, err := filepath.Abs(filepath.Join(repoRoot, "out"))
				if err != nil {
					t.Fatal(err)
				}
				for _, stage := range []string{"trainer", "evaluator"} {
					m, ok := mount(service(t, p, stage), "/var/lib/cyclegan/runs")
					if !ok {
						t.Errorf("%s: nothing is mounted at /var/lib/cyclegan/runs", stage)
						continue
					}
					if m.Type != types.VolumeTypeBind || m.Source != want {
						t.Errorf("%s: runs mount %+v, want a bind of %s", stage, m, want)
					}
				}
			},
		},
		{
			name: "ports on all interfaces",
			env:  []string{"CYCLEGAN_BIND_ADDR=0.0.0.0"},
			check: func(t *testing.T, p *types.Project) {
				for name, s := range p.Services {
					for _, port := range s.Ports {
						if port.HostIP != "0.0.0.0" {
							t.Errorf("%s: port %d is published on %q, want 0.0.0.0", name, port.Target, port.HostIP)
						}
					}
				}
			},
		},
		{
			name: "OpenBLAS image build",
			env:  []string{"CYCLEGAN_GEMM=openblas"},
			check: func(t *testing.T, p *types.Project) {
				b := service(t, p, imageBuilder).Build
				if b == nil || b.Args["GEMM"] == nil || *b.Args["GEMM"] != "openblas" {
					t.Errorf("%s: build %+v, want build argument GEMM=openblas", imageBuilder, b)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, loadProject(t, tt.env...))
		})
	}
}

func mount(s types.ServiceConfig, target string) (types.ServiceVolumeConfig, bool) {
	i := slices.IndexFunc(s.Volumes, func(v types.ServiceVolumeConfig) bool { return v.Target == target })
	if i < 0 {
		return types.ServiceVolumeConfig{}, false
	}
	return s.Volumes[i], true
}

func TestComposeMountsExist(t *testing.T) {
	p := loadProject(t)
	for name, s := range p.Services {
		for _, v := range s.Volumes {
			switch v.Type {
			case types.VolumeTypeBind:
				if _, err := os.Stat(v.Source); err != nil {
					t.Errorf("%s: bind mount source of %s: %v", name, v.Target, err)
				}
			case types.VolumeTypeVolume:
				if _, ok := p.Volumes[v.Source]; !ok {
					t.Errorf("%s: volume %q mounted at %s is not declared under volumes", name, v.Source, v.Target)
				}
			default:
				t.Errorf("%s: mount at %s has type %q, want bind or volume", name, v.Target, v.Type)
			}
		}
		if s.Build != nil {
			dockerfile := filepath.Join(s.Build.Context, s.Build.Dockerfile)
			if _, err := os.Stat(dockerfile); err != nil {
				t.Errorf("%s: Dockerfile: %v", name, err)
			}
		}
	}
}

// TestComposeMonitoringMounts checks the container paths where Prometheus and Grafana look
// for the files of monitoring/.
func TestComposeMonitoringMounts(t *testing.T) {
	p := loadProject(t)
	tests := []struct {
		service, source, target string
	}{
		{"prometheus", "monitoring/prometheus.yml", "/etc/prometheus/prometheus.yml"},
		{"prometheus", "monitoring/rules", "/etc/prometheus/rules"},
		{"grafana", "monitoring/grafana/provisioning", "/etc/grafana/provisioning"},
		{"grafana", "monitoring/grafana/dashboards", "/var/lib/grafana/dashboards"},
	}
	for _, tt := range tests {
		t.Run(tt.service+tt.target, func(t *testing.T) {
			m, ok := mount(service(t, p, tt.service), tt.target)
			if !ok {
				t.Fatalf("nothing is mounted at %s", tt.target)
			}
			want, err := filepath.Abs(filepath.Join(repoRoot, tt.source))
			if err != nil {
				t.Fatal(err)
			}
			if m.Type != types.VolumeTypeBind || m.Source != want {
				t.Errorf("mount %+v, want a bind of %s", m, want)
			}
			if !m.ReadOnly {
				t.Errorf("mount of %s is writable, want read-only", tt.source)
			}
		})
	}
}

// pinnedImage matches an image reference with an explicit tag other than latest.
var pinnedImage = regexp.MustCompile(`^[a-z0-9./_-]+:[A-Za-z0-9._-]+$`)

func TestImagesPinned(t *testing.T) {
	p := loadProject(t)
	stageImage := service(t, p, "loader").Image
	for name, s := range p.Services {
		if s.Image == stageImage {
			continue // built here from the Dockerfile
		}
		if !pinnedImage.MatchString(s.Image) || strings.HasSuffix(s.Image, ":latest") {
			t.Errorf("%s: image %q has no pinned tag", name, s.Image)
		}
	}
	for arg, image := range readDockerfile(t).imageArgs {
		if !pinnedImage.MatchString(image) || strings.HasSuffix(image, ":latest") {
			t.Errorf("Dockerfile: ARG %s=%q has no pinned tag", arg, image)
		}
	}
}

// dockerfile holds what the tests read from the Dockerfile.
type dockerfile struct {
	text      string
	user      string            // argument of the last USER instruction
	imageArgs map[string]string // ARG defaults whose name ends in _IMAGE
}

func readDockerfile(t *testing.T) dockerfile {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	d := dockerfile{text: string(data), imageArgs: map[string]string{}}
	sc := bufio.NewScanner(strings.NewReader(d.text))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 2 {
			continue
		}
		switch fields[0] {
		case "USER":
			d.user = fields[1]
		case "ARG":
			name, value, ok := strings.Cut(fields[1], "=")
			if ok && strings.HasSuffix(name, "_IMAGE") {
				d.imageArgs[name] = value
			}
		}
	}
	if d.user == "" || strings.HasPrefix(d.user, "0") || strings.HasPrefix(d.user, "root") {
		t.Errorf("Dockerfile: runtime USER is %q, want a non-root user", d.user)
	}
	if len(d.imageArgs) == 0 {
		t.Error("Dockerfile: no ARG ..._IMAGE=... names the base images")
	}
	return d
}

// TestPrometheusTargetsMatchCompose checks that every scrape target in
// monitoring/prometheus.yml is a compose service serving metrics on that port.
func TestPrometheusTargetsMatchCompose(t *testing.T) {
	p := loadProject(t)
	data, err := os.ReadFile(filepath.Join(repoRoot, "monitoring", "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
			DNSSDConfigs []struct {
				Names []string `yaml:"names"`
				Port  int      `yaml:"port"`
			} `yaml:"dns_sd_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatalf("parse monitoring/prometheus.yml: %v", err)
	}

	scraped := map[string]bool{}
	checkTarget := func(job, host string, port int) {
		if host == "localhost" && job == "prometheus" {
			return // Prometheus scraping itself
		}
		want, ok := stagePorts[host]
		if !ok {
			t.Errorf("job %s scrapes %s:%d, which is no stage service of compose.yaml", job, host, port)
			return
		}
		if port != want {
			t.Errorf("job %s scrapes %s:%d, but the %s serves metrics on %d", job, host, port, host, want)
		}
		if got := environment(service(t, p, host))["CYCLEGAN_METRICS_ADDR"]; got != fmt.Sprintf(":%d", port) {
			t.Errorf("job %s scrapes port %d, but %s has CYCLEGAN_METRICS_ADDR=%q", job, port, host, got)
		}
		scraped[host] = true
	}
	for _, sc := range cfg.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				host, portText, err := net.SplitHostPort(target)
				if err != nil {
					t.Errorf("job %s: target %q: %v", sc.JobName, target, err)
					continue
				}
				port, err := strconv.Atoi(portText)
				if err != nil {
					t.Errorf("job %s: target %q: port is not a number", sc.JobName, target)
					continue
				}
				checkTarget(sc.JobName, host, port)
			}
		}
		for _, dns := range sc.DNSSDConfigs {
			for _, name := range dns.Names {
				checkTarget(sc.JobName, name, dns.Port)
			}
		}
	}
	for _, stage := range stageNames() {
		if !scraped[stage] {
			t.Errorf("monitoring/prometheus.yml does not scrape the %s", stage)
		}
	}
}

// TestEffectiveValuesUseFlagNames guards the helper above: LogValue must key settings by flag
// name, or every comparison in TestComposeStageSettings would pass on empty maps.
func TestEffectiveValuesUseFlagNames(t *testing.T) {
	values := effective(stageSettings(t, "trainer", nil))
	for _, key := range []string{"CYCLEGAN_NATS_URL", "CYCLEGAN_CHECKPOINT_EVERY", "CYCLEGAN_OUTPUT"} {
		if _, ok := values[key]; !ok {
			t.Errorf("the trainer's settings lack %s; got %d settings", key, len(values))
		}
	}
}
