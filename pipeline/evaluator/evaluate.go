package evaluator

import (
	"context"
	"fmt"

	"github.com/gocyclegan/cyclegan/model"
)

// Evaluation is the result of one checkpoint's generators on a test set.
type Evaluation struct {
	Figures Figures
	// SamplesAB holds real A, G_A(a) and G_B(G_A(a)) of the first images of A, and
	// SamplesBA the same for B; the rows for a sample grid.
	SamplesAB, SamplesBA []SampleRow
}

// Evaluate translates every test image in both directions and back and computes the
// figures. samples is the number of images per domain kept for the sample grid, the
// first ones of the set. It checks ctx between images and returns its error once it
// ends.
func Evaluate(ctx context.Context, tr *model.Translator, set *TestSet, samples int) (Evaluation, error) {
	var ev Evaluation
	fakeB, cycleAB, err := translateDomain(ctx, tr, model.AtoB, set.A, samples, &ev.SamplesAB)
	if err != nil {
		return Evaluation{}, err
	}
	fakeA, cycleBA, err := translateDomain(ctx, tr, model.BtoA, set.B, samples, &ev.SamplesBA)
	if err != nil {
		return Evaluation{}, err
	}
	ev.Figures = Figures{CycleL1AB: cycleAB, CycleL1BA: cycleBA}

	ev.Figures.L1AB, ev.Figures.L1BA = nan(), nan()
	if len(set.Pairs) > 0 {
		// l1_AB pairs G_A(a) with b; l1_BA pairs G_B(b) with a.
		fakes, reals := set.pairImages(fakeB, set.B)
		if ev.Figures.L1AB, err = PairedL1(fakes, reals); err != nil {
			return Evaluation{}, fmt.Errorf("paired L1 A→B: %w", err)
		}
		reals, fakes = set.pairImages(set.A, fakeA)
		if ev.Figures.L1BA, err = PairedL1(fakes, reals); err != nil {
			return Evaluation{}, fmt.Errorf("paired L1 B→A: %w", err)
		}
	}

	if ev.Figures.SWDAB, err = SWD(images(fakeB), images(set.B), SWDOptions{}); err != nil {
		return Evaluation{}, fmt.Errorf("SWD A→B: %w", err)
	}
	if ev.Figures.SWDBA, err = SWD(images(fakeA), images(set.A), SWDOptions{}); err != nil {
		return Evaluation{}, fmt.Errorf("SWD B→A: %w", err)
	}
	return ev, nil
}

// translateDomain runs the cycle of direction on every image of reals. It returns the
// translations (named like their sources) and the cycle L1, mean over images of the
// per-image mean |reconstructed − real|, and appends the first samples rows to rows.
// Reconstructions are not kept beyond the sample rows, which bounds memory to one set
// of translations.
func translateDomain(ctx context.Context, tr *model.Translator, direction model.Direction, reals []TestImage, samples int, rows *[]SampleRow) ([]TestImage, float64, error) {
	fakes := make([]TestImage, len(reals))
	var cycleSum float64
	for i, real := range reals {
		if err := ctx.Err(); err != nil {
			return nil, 0, fmt.Errorf("translate %s: %w", direction, err)
		}
		fakeIn, recIn, err := tr.Cycle(direction, real.input, real.inputHeight, real.inputWidth)
		if err != nil {
			return nil, 0, fmt.Errorf("translate %s %s: %w", direction, real.Name, err)
		}
		w, h := real.Image.Width, real.Image.Height
		fake, err := cropUnit(fakeIn, real.inputWidth, real.inputHeight, w, h)
		if err != nil {
			return nil, 0, fmt.Errorf("translate %s %s: %w", direction, real.Name, err)
		}
		rec, err := cropUnit(recIn, real.inputWidth, real.inputHeight, w, h)
		if err != nil {
			return nil, 0, fmt.Errorf("reconstruct %s %s: %w", direction, real.Name, err)
		}
		d, err := meanAbsDiff(rec, real.Image)
		if err != nil {
			return nil, 0, fmt.Errorf("cycle L1 of %s: %w", real.Name, err)
		}
		cycleSum += d
		fakes[i] = TestImage{Name: real.Name, Image: fake}
		if i < samples {
			*rows = append(*rows, SampleRow{Real: real.Image.NRGBA(), Fake: fake.NRGBA(), Reconstructed: rec.NRGBA()})
		}
	}
	return fakes, cycleSum / float64(len(reals)), nil
}
