package pipeline

import (
	"errors"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// envMap returns a lookup function over a fixed environment.
func envMap(env map[string]string) func(string) (string, bool) {
	return func(key string) (string, bool) {
		v, ok := env[key]
		return v, ok
	}
}

func parseCommon(t *testing.T, args []string, env map[string]string) (CommonConfig, error) {
	t.Helper()
	cfg := DefaultCommonConfig()
	f := NewFlagSet("stage", envMap(env))
	cfg.Register(f)
	return cfg, f.Parse(args)
}

func TestEnvName(t *testing.T) {
	for flagName, want := range map[string]string{
		"nats-url":             "CYCLEGAN_NATS_URL",
		"run":                  "CYCLEGAN_RUN",
		"raw-stream-max-bytes": "CYCLEGAN_RAW_STREAM_MAX_BYTES",
	} {
		if got := EnvName(flagName); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", flagName, got, want)
		}
	}
}

func TestFlagSetPrecedence(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		env       map[string]string
		wantWait  time.Duration
		wantRun   string
		wantBytes int64
	}{
		{name: "defaults", wantWait: 30 * time.Second, wantRun: "default", wantBytes: 32 << 20},
		{
			name:     "env over default",
			env:      map[string]string{"CYCLEGAN_DRAIN_TIMEOUT": "5s", "CYCLEGAN_RUN": "from-env", "CYCLEGAN_RAW_STREAM_MAX_BYTES": "64MiB"},
			wantWait: 5 * time.Second, wantRun: "from-env", wantBytes: 64 << 20,
		},
		{
			name:     "flag over env",
			args:     []string{"--drain-timeout=2s", "--run", "from-flag", "-raw-stream-max-bytes=1048576"},
			env:      map[string]string{"CYCLEGAN_DRAIN_TIMEOUT": "5s", "CYCLEGAN_RUN": "from-env", "CYCLEGAN_RAW_STREAM_MAX_BYTES": "64MiB"},
			wantWait: 2 * time.Second, wantRun: "from-flag", wantBytes: 1 << 20,
		},
		{
			name:     "flag over default without env",
			args:     []string{"--run=only-flag"},
			wantWait: 30 * time.Second, wantRun: "only-flag", wantBytes: 32 << 20,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseCommon(t, tt.args, tt.env)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if cfg.DrainTimeout != tt.wantWait {
				t.Errorf("DrainTimeout = %s, want %s", cfg.DrainTimeout, tt.wantWait)
			}
			if cfg.Run != tt.wantRun {
				t.Errorf("Run = %q, want %q", cfg.Run, tt.wantRun)
			}
			if cfg.RawStreamMaxBytes != tt.wantBytes {
				t.Errorf("RawStreamMaxBytes = %d, want %d", cfg.RawStreamMaxBytes, tt.wantBytes)
			}
		})
	}
}

func TestFlagSetListAndLevel(t *testing.T) {
	cfg, err := parseCommon(t,
		[]string{"--log-level=debug"},
		map[string]string{"CYCLEGAN_NATS_URL": "nats://a:4222, nats://b:4223 ,"})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if want := []string{"nats://a:4222", "nats://b:4223"}; !slices.Equal(cfg.NATSURLs, want) {
		t.Errorf("NATSURLs = %q, want %q", cfg.NATSURLs, want)
	}
	if cfg.LogLevel != slog.LevelDebug {
		t.Errorf("LogLevel = %v, want debug", cfg.LogLevel)
	}
}

func TestFlagSetInvalidValues(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		flag    string
		value   string
		fromEnv bool
		rule    string
	}{
		{name: "bad duration flag", args: []string{"--drain-timeout=soon"}, flag: "drain-timeout", value: "soon", rule: "must be a duration"},
		{name: "bad duration env", env: map[string]string{"CYCLEGAN_STREAM_DUPLICATE_WINDOW": "10"}, flag: "stream-duplicate-window", value: "10", fromEnv: true, rule: "must be a duration"},
		{name: "duration below minimum", args: []string{"--stream-duplicate-window=10ms"}, flag: "stream-duplicate-window", value: "10ms", rule: "must be at least 1s"},
		{name: "negative size flag", args: []string{"--raw-stream-max-bytes=-5"}, flag: "raw-stream-max-bytes", value: "-5", rule: "must not be negative"},
		{name: "negative size env", env: map[string]string{"CYCLEGAN_TRAIN_STREAM_MAX_BYTES": "-1MiB"}, flag: "train-stream-max-bytes", value: "-1MiB", fromEnv: true, rule: "must not be negative"},
		{name: "size with unknown unit", args: []string{"--raw-stream-max-bytes=5MB"}, flag: "raw-stream-max-bytes", value: "5MB", rule: "whole number of bytes"},
		{name: "run id with dot", args: []string{"--run=my.run"}, flag: "run", value: "my.run", rule: "not allowed"},
		{name: "run id too long", env: map[string]string{"CYCLEGAN_RUN": strings.Repeat("a", 33)}, flag: "run", value: strings.Repeat("a", 33), fromEnv: true, rule: "1 to 32 characters"},
		{name: "url with bad scheme", args: []string{"--nats-url=http://localhost:4222"}, flag: "nats-url", value: "http://localhost:4222", rule: `scheme "http"`},
		{name: "url without host", args: []string{"--nats-url=nats://:4222"}, flag: "nats-url", value: "nats://:4222", rule: "must name a host"},
		{name: "url with bad port", args: []string{"--nats-url=nats://host:99999"}, flag: "nats-url", value: "nats://host:99999", rule: "not between 1 and 65535"},
		{name: "url password hidden", args: []string{"--nats-url=http://user:hunter2@host:4222"}, flag: "nats-url", value: "http://REDACTED@host:4222", rule: `scheme "http"`},
		{name: "bad listen address", args: []string{"--metrics-addr=9100"}, flag: "metrics-addr", value: "9100", rule: "must be host:port"},
		{name: "bad log level", args: []string{"--log-level=loud"}, flag: "log-level", value: "loud", rule: "debug, info, warn or error"},
		{name: "missing nkey file", args: []string{"--nats-nkey-file=/does/not/exist"}, flag: "nats-nkey-file", value: "/does/not/exist", rule: "must be a readable file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseCommon(t, tt.args, tt.env)
			if err == nil {
				t.Fatal("Parse succeeded, want an error")
			}
			if !errors.Is(err, ErrInvalidSetting) {
				t.Errorf("errors.Is(err, ErrInvalidSetting) = false for %v", err)
			}
			var se *SettingError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not a *SettingError", err)
			}
			if se.Flag != tt.flag {
				t.Errorf("Flag = %q, want %q", se.Flag, tt.flag)
			}
			if se.Value != tt.value {
				t.Errorf("Value = %q, want %q", se.Value, tt.value)
			}
			if se.FromEnv != tt.fromEnv {
				t.Errorf("FromEnv = %v, want %v", se.FromEnv, tt.fromEnv)
			}
			msg := err.Error()
			if absent := containsAll(msg, "--"+tt.flag, tt.rule); len(absent) > 0 {
				t.Errorf("message %q lacks %q", msg, absent)
			}
			if tt.fromEnv && !strings.Contains(msg, EnvName(tt.flag)) {
				t.Errorf("message %q does not name the variable %s", msg, EnvName(tt.flag))
			}
			if strings.Contains(msg, "hunter2") {
				t.Errorf("message %q shows a password", msg)
			}
		})
	}
}

func TestFlagSetUnknownFlag(t *testing.T) {
	_, err := parseCommon(t, []string{"--no-such-flag"}, nil)
	if !errors.Is(err, ErrInvalidSetting) {
		t.Fatalf("Parse error = %v, want one wrapping ErrInvalidSetting", err)
	}
	if !strings.Contains(err.Error(), "no-such-flag") {
		t.Errorf("message %q does not name the flag", err)
	}
}

func TestFlagSetHelp(t *testing.T) {
	cfg := DefaultCommonConfig()
	f := NewFlagSet("loader", envMap(nil))
	cfg.Register(f)
	if err := f.Parse([]string{"--help"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("Parse(--help) = %v, want flag.ErrHelp", err)
	}
	var b strings.Builder
	f.PrintUsage(&b)
	help := b.String()
	for _, want := range []string{
		"Usage: loader",
		"--nats-url",
		"default: nats://127.0.0.1:4222",
		"env: CYCLEGAN_NATS_URL",
		"--raw-stream-max-bytes",
		"unit: bytes",
		"default: 32MiB",
		"env: CYCLEGAN_RAW_STREAM_MAX_BYTES",
		"--drain-timeout",
		"unit: duration",
		"default: 30s",
		"--nats-password",
		"env: CYCLEGAN_NATS_PASSWORD",
	} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %q:\n%s", want, help)
		}
	}
}

func TestFlagSetLogValueRedactsSecrets(t *testing.T) {
	cfg := DefaultCommonConfig()
	f := NewFlagSet("trainer", envMap(map[string]string{
		"CYCLEGAN_NATS_PASSWORD": "hunter2",
		"CYCLEGAN_NATS_USER":     "alice",
		"CYCLEGAN_NATS_URL":      "nats://bob:s3cret@host:4222,nats://tok3n@other:4222",
	}))
	cfg.Register(f)
	if err := f.Parse(nil); err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if cfg.NATSPassword != "hunter2" {
		t.Fatalf("NATSPassword = %q, want the value from the environment", cfg.NATSPassword)
	}

	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("starting", "config", f.LogValue())
	line := b.String()
	for _, secret := range []string{"hunter2", "s3cret", "tok3n"} {
		if strings.Contains(line, secret) {
			t.Errorf("log line shows secret %q: %s", secret, line)
		}
	}
	for _, want := range []string{"config.nats-password=REDACTED", "config.nats-user=alice", "REDACTED@host:4222", "config.nats-token=\"\""} {
		if !strings.Contains(line, want) {
			t.Errorf("log line lacks %q: %s", want, line)
		}
	}
}

func TestCommonConfigCrossChecks(t *testing.T) {
	dir := t.TempDir()
	certFile := filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(certFile, []byte("not checked at parse time"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{name: "password without user", env: map[string]string{"CYCLEGAN_NATS_PASSWORD": "x"}, want: "--nats-user is empty"},
		{name: "user and token", env: map[string]string{"CYCLEGAN_NATS_USER": "u", "CYCLEGAN_NATS_PASSWORD": "p", "CYCLEGAN_NATS_TOKEN": "t"}, want: "at most one of"},
		{name: "cert without key", env: map[string]string{"CYCLEGAN_NATS_TLS_CERT": certFile}, want: "must be set together"},
		{name: "empty url list", env: map[string]string{"CYCLEGAN_NATS_URL": " , "}, want: "--nats-url is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseCommon(t, nil, tt.env)
			if !errors.Is(err, ErrInvalidSetting) {
				t.Fatalf("Parse error = %v, want one wrapping ErrInvalidSetting", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("message %q lacks %q", err, tt.want)
			}
		})
	}
}

func TestFlagSetStageSettings(t *testing.T) {
	var (
		workers  = 2
		scale    = 0.5
		fresh    = false
		keep     = CheckpointRetention{KeepLast: 3, KeepEvery: 1000}
		modeName = "fast"
	)
	f := NewFlagSet("stage", envMap(map[string]string{"CYCLEGAN_FRESH": "true", "CYCLEGAN_SCALE": "0.25"}))
	f.Int(&workers, "workers", "goroutines", "worker count", AtLeast(1))
	f.Float(&scale, "scale", "ratio", "scale factor", nil)
	f.Bool(&fresh, "fresh", "start the run over")
	f.String(&modeName, "mode", "speed mode", OneOf("fast", "slow"))
	keep.Register(f)

	if err := f.Parse([]string{"--workers=4", "--checkpoint-keep-every=0"}); err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if workers != 4 || scale != 0.25 || !fresh || keep.KeepEvery != 0 || keep.KeepLast != 3 {
		t.Errorf("got workers=%d scale=%g fresh=%v keep=%+v, want 4 0.25 true {3 0}", workers, scale, fresh, keep)
	}

	for _, args := range [][]string{{"--workers=0"}, {"--mode=medium"}, {"--checkpoint-keep-last=0"}, {"--workers=two"}} {
		if err := f.Parse(args); !errors.Is(err, ErrInvalidSetting) {
			t.Errorf("Parse(%q) = %v, want an error wrapping ErrInvalidSetting", args, err)
		}
	}
}

func TestParseBytes(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{in: "0", want: 0},
		{in: "1024", want: 1024},
		{in: "64KiB", want: 64 << 10},
		{in: "256 MiB", want: 256 << 20},
		{in: "2GiB", want: 2 << 30},
		{in: "100B", want: 100},
		{in: "-1", wantErr: true},
		{in: "1.5MiB", wantErr: true},
		{in: "10MB", wantErr: true},
		{in: "9999999TiB", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseBytes(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("parseBytes(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if got != tt.want {
			t.Errorf("parseBytes(%q) = %d, want %d", tt.in, got, tt.want)
		}
		if !tt.wantErr {
			back, err := parseBytes(formatBytes(got))
			if err != nil || back != got {
				t.Errorf("parseBytes(formatBytes(%d)) = %d, %v", got, back, err)
			}
		}
	}
}

func TestValidateRunID(t *testing.T) {
	for _, ok := range []string{"a", "horse2zebra", "run_01-B", strings.Repeat("x", 32)} {
		if err := ValidateRunID(ok); err != nil {
			t.Errorf("ValidateRunID(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", strings.Repeat("x", 33), "a.b", "a b", "a*", "a>", "ü"} {
		if err := ValidateRunID(bad); !errors.Is(err, ErrInvalidRunID) {
			t.Errorf("ValidateRunID(%q) = %v, want ErrInvalidRunID", bad, err)
		}
	}
}

func TestCheckpointNames(t *testing.T) {
	name := CheckpointName("emoji", 1200)
	if name != "emoji/step-1200.safetensors" {
		t.Fatalf("CheckpointName = %q", name)
	}
	run, step, err := ParseCheckpointName(name)
	if err != nil || run != "emoji" || step != 1200 {
		t.Errorf("ParseCheckpointName(%q) = %q, %d, %v", name, run, step, err)
	}
	for _, bad := range []string{"emoji/step-.safetensors", "emoji/step-12.bin", "emoji/latest.safetensors", "a.b/step-1.safetensors", "emoji/step--1.safetensors", "emoji/step-+1.safetensors"} {
		if _, _, err := ParseCheckpointName(bad); !errors.Is(err, ErrInvalidCheckpointName) {
			t.Errorf("ParseCheckpointName(%q) = %v, want ErrInvalidCheckpointName", bad, err)
		}
	}
}
