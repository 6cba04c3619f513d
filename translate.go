package main

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/gocyclegan/cyclegan/messages"
	"github.com/gocyclegan/cyclegan/model"
	"github.com/gocyclegan/cyclegan/pipeline"
	"github.com/gocyclegan/cyclegan/pipeline/dataset"
)

const translateUsage = `cyclegan translate --checkpoint FILE [--direction AtoB|BtoA] IN... OUT

Translates image files, or every PNG and JPEG file under a folder, at their own size and
writes PNG files. With one input file, OUT may name a .png file; otherwise OUT is a folder,
and a folder input is mirrored under OUT/<folder name>. Sides that are not multiples of 4
(or are below 8 pixels) are extended by reflection for the generator and cropped back.

`

// translateJob is one input image and the file its translation goes to.
type translateJob struct {
	fsys fs.FS
	name string // path inside fsys
	out  string
}

func runTranslate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		checkpoint string
		direction  = "AtoB"
		maxPixels  int
	)
	fset := pipeline.NewFlagSet("cyclegan translate", nil)
	fset.String(&checkpoint, "checkpoint", "checkpoint file (.safetensors) written by the trainer or by cyclegan export", nil)
	fset.String(&direction, "direction", "AtoB translates domain A images with generator G_A, BtoA domain B images with G_B", pipeline.OneOf("AtoB", "BtoA"))
	fset.Int(&maxPixels, "max-pixels", "pixels", "largest width×height of an input image; 0 means the default of 40 million", pipeline.AtLeast(0))
	if err := parseFlags(fset, args, stdout, translateUsage); err != nil {
		return err
	}
	rest := fset.Args()
	if checkpoint == "" {
		return fmt.Errorf("--checkpoint is missing: give the .safetensors file to translate with; %w", errUsage)
	}
	if len(rest) < 2 {
		return fmt.Errorf("want at least one input and an output, got %d arguments; %w", len(rest), errUsage)
	}
	dir := model.AtoB
	if direction == "BtoA" {
		dir = model.BtoA
	}

	data, err := os.ReadFile(checkpoint)
	if err != nil {
		return fmt.Errorf("read checkpoint: %w", err)
	}
	translator, err := model.LoadTranslator(data)
	if err != nil {
		return fmt.Errorf("load checkpoint %s: %w", checkpoint, err)
	}
	defer translator.Close()

	limits := dataset.Limits{MaxPixels: int64(maxPixels)}
	jobs, err := translateJobs(ctx, rest[:len(rest)-1], rest[len(rest)-1], limits)
	if err != nil {
		return err
	}
	for _, job := range jobs {
		if err := ctx.Err(); err != nil {
			return err
		}
		img, err := dataset.DecodeImage(job.fsys, job.name, limits)
		if err != nil {
			return fmt.Errorf("read %s: %w", job.name, err)
		}
		out, err := translateImage(translator, dir, img)
		if err != nil {
			return fmt.Errorf("translate %s: %w", job.name, err)
		}
		if err := writePNG(job.out, out); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s -> %s\n", job.name, job.out)
	}
	return nil
}

// translateJobs expands the inputs into files and names their outputs. A folder input is
// scanned like a dataset domain folder (PNG and JPEG files, subfolders included, hidden
// files and symbolic links skipped) and its tree is mirrored under out.
func translateJobs(ctx context.Context, inputs []string, out string, limits dataset.Limits) ([]translateJob, error) {
	ext := strings.ToLower(filepath.Ext(out))
	if len(inputs) == 1 && (ext == ".png") {
		info, err := os.Stat(inputs[0])
		if err != nil {
			return nil, fmt.Errorf("input: %w", err)
		}
		if info.IsDir() {
			return nil, fmt.Errorf("input %s is a folder, so the output %s must be a folder too; %w", inputs[0], out, errUsage)
		}
		return []translateJob{{fsys: os.DirFS(filepath.Dir(inputs[0])), name: filepath.Base(inputs[0]), out: out}}, nil
	}
	if ext == ".jpg" || ext == ".jpeg" {
		return nil, fmt.Errorf("output %s: translations are written as PNG; name a .png file or a folder; %w", out, errUsage)
	}

	var jobs []translateJob
	for _, in := range inputs {
		info, err := os.Stat(in)
		if err != nil {
			return nil, fmt.Errorf("input: %w", err)
		}
		if !info.IsDir() {
			jobs = append(jobs, translateJob{
				fsys: os.DirFS(filepath.Dir(in)),
				name: filepath.Base(in),
				out:  filepath.Join(out, pngName(filepath.Base(in))),
			})
			continue
		}
		fsys := os.DirFS(in)
		domain, skips, err := dataset.ScanDomain(ctx, fsys, ".", limits)
		if err != nil {
			return nil, fmt.Errorf("input folder %s: %w", in, err)
		}
		for _, s := range skips {
			fmt.Fprintf(os.Stderr, "skipping %s: %v\n", filepath.Join(in, s.Path), s)
		}
		for _, name := range domain.Files {
			jobs = append(jobs, translateJob{
				fsys: fsys,
				name: name,
				out:  filepath.Join(out, filepath.Base(in), filepath.FromSlash(pngName(name))),
			})
		}
	}
	return jobs, nil
}

// pngName replaces the extension of name with .png.
func pngName(name string) string {
	return strings.TrimSuffix(name, filepath.Ext(name)) + ".png"
}

// translateImage runs one generator on img at its own size. The generator needs sides that
// are multiples of 4 and at least model.MinImageSize, so the image is first extended on
// the right and bottom by mirroring and the result is cropped back to the input size.
func translateImage(t *model.Translator, dir model.Direction, img *image.NRGBA) (*image.NRGBA, error) {
	width, height := img.Bounds().Dx(), img.Bounds().Dy()
	pix, err := messages.AppendHWCFromImage(nil, img, color.White)
	if err != nil {
		return nil, err
	}
	chw, err := messages.AppendFloat32CHW(nil, pix, height, width)
	if err != nil {
		return nil, err
	}
	paddedH, paddedW := paddedSide(height), paddedSide(width)
	padded := reflectExtend(chw, height, width, paddedH, paddedW)
	fake, err := t.Translate(dir, padded, paddedH, paddedW)
	if err != nil {
		return nil, err
	}
	cropped := cropCHW(fake, paddedH, paddedW, height, width)
	outPix, err := messages.AppendUint8HWC(nil, cropped, height, width)
	if err != nil {
		return nil, err
	}
	return messages.NRGBAFromHWC(outPix, height, width)
}

// paddedSide rounds a side up to a multiple of 4 that is at least model.MinImageSize.
func paddedSide(n int) int {
	n = max(n, model.MinImageSize)
	return (n + 3) / 4 * 4
}

// reflectExtend copies a CHW image of h×w into one of ph×pw (ph ≥ h, pw ≥ w). It fills the
// new rows and columns by mirroring about the last row and column without repeating it, as
// reflection padding does. The mirror folds again when the extension is wider than the image.
func reflectExtend(src []float32, h, w, ph, pw int) []float32 {
	if ph == h && pw == w {
		return src
	}
	dst := make([]float32, 3*ph*pw)
	for c := range 3 {
		for y := range ph {
			sy := mirrorIndex(y, h)
			for x := range pw {
				dst[(c*ph+y)*pw+x] = src[(c*h+sy)*w+mirrorIndex(x, w)]
			}
		}
	}
	return dst
}

// mirrorIndex maps i ≥ 0 into [0, n) by reflecting about the ends: 0 1 … n-1 n-2 … 1 0 1 …
func mirrorIndex(i, n int) int {
	if n == 1 {
		return 0
	}
	period := 2 * (n - 1)
	i %= period
	if i >= n {
		i = period - i
	}
	return i
}

// cropCHW returns the top-left h×w part of a CHW image of ph×pw.
func cropCHW(src []float32, ph, pw, h, w int) []float32 {
	if ph == h && pw == w {
		return src
	}
	dst := make([]float32, 0, 3*h*w)
	for c := range 3 {
		for y := range h {
			row := src[(c*ph+y)*pw:]
			dst = append(dst, row[:w]...)
		}
	}
	return dst
}

// writePNG writes img to path through a temporary file, creating the folders it needs.
func writePNG(path string, img image.Image) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create output folder: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".translate-*.png")
	if err != nil {
		return fmt.Errorf("create output file: %w", err)
	}
	defer os.Remove(tmp.Name())
	// CreateTemp makes the file private, but a translation is an ordinary output file.
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := png.Encode(tmp, img); err != nil {
		tmp.Close()
		return fmt.Errorf("encode %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
