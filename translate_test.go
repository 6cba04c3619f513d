package main

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gocyclegan/cyclegan/model"
)

func TestMirrorIndex(t *testing.T) {
	cases := []struct {
		n    int
		want []int // indices 0, 1, 2, …
	}{
		{n: 1, want: []int{0, 0, 0, 0}},
		{n: 2, want: []int{0, 1, 0, 1, 0}},
		{n: 4, want: []int{0, 1, 2, 3, 2, 1, 0, 1, 2}},
	}
	for _, c := range cases {
		var got []int
		for i := range c.want {
			got = append(got, mirrorIndex(i, c.n))
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("mirrorIndex(0.., %d) = %v, want %v", c.n, got, c.want)
		}
	}
}

func TestPaddedSide(t *testing.T) {
	for n, want := range map[int]int{1: 8, 7: 8, 8: 8, 9: 12, 12: 12, 13: 16, 64: 64, 65: 68} {
		if got := paddedSide(n); got != want {
			t.Errorf("paddedSide(%d) = %d, want %d", n, got, want)
		}
	}
}

func TestReflectExtendThenCropIsIdentity(t *testing.T) {
	const h, w = 5, 6
	src := make([]float32, 3*h*w)
	for i := range src {
		src[i] = float32(i)
	}
	ph, pw := paddedSide(h), paddedSide(w)
	padded := reflectExtend(src, h, w, ph, pw)
	if len(padded) != 3*ph*pw {
		t.Fatalf("padded length %d, want %d", len(padded), 3*ph*pw)
	}
	// Row h of channel 1 mirrors row h-2 (reflection does not repeat the edge row).
	if got, want := padded[(1*ph+h)*pw+0], src[(1*h+h-2)*w+0]; got != want {
		t.Errorf("mirrored row value %v, want %v", got, want)
	}
	if got := cropCHW(padded, ph, pw, h, w); !slices.Equal(got, src) {
		t.Errorf("crop after extend differs from the source")
	}
}

// tinyCheckpoint returns the checkpoint bytes of a freshly initialised small model.
func tinyCheckpoint(t *testing.T) []byte {
	t.Helper()
	cfg, err := model.Preset(model.PresetCPU)
	if err != nil {
		t.Fatal(err)
	}
	cfg.LoadSize, cfg.CropSize, cfg.NGF, cfg.NDF, cfg.Blocks, cfg.DatasetSize = 36, 32, 4, 4, 1, 10
	m, err := model.New(cfg, 1)
	if err != nil {
		t.Fatalf("model.New: %v", err)
	}
	defer m.Close()
	data, err := m.Checkpoint()
	if err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	return data
}

func writeTestPNG(t *testing.T, path string, w, h int) {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.NRGBA{uint8(x * 20), uint8(y * 20), 100, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestTranslateCommandKeepsSizes(t *testing.T) {
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "model.safetensors")
	if err := os.WriteFile(ckpt, tinyCheckpoint(t), 0o644); err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(dir, "in")
	writeTestPNG(t, filepath.Join(in, "a.png"), 13, 10)
	writeTestPNG(t, filepath.Join(in, "sub", "b.png"), 16, 16)
	if err := os.WriteFile(filepath.Join(in, "notes.txt"), []byte("not an image"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")

	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"translate", "--checkpoint", ckpt, "--direction", "BtoA", in, out}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d, stderr: %s", code, stderr.String())
	}
	for name, size := range map[string][2]int{"in/a.png": {13, 10}, "in/sub/b.png": {16, 16}} {
		f, err := os.Open(filepath.Join(out, filepath.FromSlash(name)))
		if err != nil {
			t.Fatalf("output %s: %v", name, err)
		}
		cfg, err := png.DecodeConfig(f)
		f.Close()
		if err != nil {
			t.Fatalf("decode %s: %v", name, err)
		}
		if cfg.Width != size[0] || cfg.Height != size[1] {
			t.Errorf("%s is %dx%d, want %dx%d", name, cfg.Width, cfg.Height, size[0], size[1])
		}
		// Readable by others, so a container with another user id can use it.
		info, err := os.Stat(filepath.Join(out, filepath.FromSlash(name)))
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm()&0o044 != 0o044 {
			t.Errorf("%s mode %v, want readable by group and others", name, info.Mode())
		}
	}
	if _, err := os.Stat(filepath.Join(out, "in", "notes.png")); err == nil {
		t.Errorf("a text file was translated")
	}
}

func TestTranslateCommandRejectsBadArguments(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no checkpoint", []string{"translate", "in.png", "out.png"}, "--checkpoint is missing"},
		{"bad direction", []string{"translate", "--checkpoint", "x", "--direction", "AB", "in.png", "out.png"}, "direction"},
		{"no output", []string{"translate", "--checkpoint", "x", "in.png"}, "want at least one input and an output"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), c.args, &stdout, &stderr); code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			if !strings.Contains(stderr.String(), c.want) {
				t.Errorf("stderr %q does not mention %q", stderr.String(), c.want)
			}
		})
	}
}

func TestVersionNamesGEMMBuild(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"version"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(stdout.String(), "gemm=") {
		t.Errorf("version output %q lacks the GEMM build", stdout.String())
	}
}
