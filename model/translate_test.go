package model

import (
	"errors"
	"slices"
	"testing"
)

func TestTranslatorMatchesTrainingModel(t *testing.T) {
	cfg := tinyConfig()
	m := newTestModel(t, cfg, 2)
	trainSteps(t, m, newTestRand(6), 3)
	loaded, err := LoadTranslator(modelState(t, m))
	if err != nil {
		t.Fatalf("LoadTranslator: %v", err)
	}
	defer loaded.Close()
	own := m.Translator()
	defer own.Close()
	if loaded.Config() != cfg {
		t.Errorf("loaded config %+v, want %+v", loaded.Config(), cfg)
	}

	image := randomImages(newTestRand(7), 1, cfg.imageLen())
	for _, direction := range []Direction{AtoB, BtoA} {
		fromBytes, err := loaded.Translate(direction, image, 32, 32)
		if err != nil {
			t.Fatalf("%v: %v", direction, err)
		}
		fromModel, err := own.Translate(direction, image, 32, 32)
		if err != nil {
			t.Fatalf("%v: %v", direction, err)
		}
		if !slices.Equal(fromBytes, fromModel) {
			t.Errorf("%v: loaded and in-memory generators disagree", direction)
		}
		if slices.ContainsFunc(fromBytes, func(v float32) bool { return v < -1 || v > 1 }) {
			t.Errorf("%v: output leaves [-1, 1]", direction)
		}
	}
	atoB, _ := loaded.Translate(AtoB, image, 32, 32)
	btoA, _ := loaded.Translate(BtoA, image, 32, 32)
	if slices.Equal(atoB, btoA) {
		t.Error("AtoB and BtoA gave the same output: both directions use one generator")
	}
}

func TestTranslatorCycleAndSizes(t *testing.T) {
	cfg := tinyConfig()
	m := newTestModel(t, cfg, 3)
	tr := m.Translator()
	defer tr.Close()
	rng := newTestRand(8)

	// Any multiple of 4 from 8 up works, also non-square and unlike the crop.
	for _, size := range [][2]int{{8, 8}, {32, 48}, {44, 20}} {
		h, w := size[0], size[1]
		image := randomImages(rng, 1, 3*h*w)
		fake, rec, err := tr.Cycle(BtoA, image, h, w)
		if err != nil {
			t.Fatalf("Cycle %d×%d: %v", h, w, err)
		}
		if len(fake) != 3*h*w || len(rec) != 3*h*w {
			t.Fatalf("Cycle %d×%d: %d and %d values, want %d", h, w, len(fake), len(rec), 3*h*w)
		}
		direct, err := tr.Translate(BtoA, image, h, w)
		if err != nil {
			t.Fatal(err)
		}
		back, err := tr.Translate(AtoB, direct, h, w)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(fake, direct) || !slices.Equal(rec, back) {
			t.Errorf("Cycle %d×%d differs from two Translate calls", h, w)
		}
	}
}

func TestTranslatorRejectsBadImages(t *testing.T) {
	m := newTestModel(t, tinyConfig(), 4)
	tr := m.Translator()
	defer tr.Close()
	cases := []struct {
		name          string
		direction     Direction
		height, width int
		values        int
	}{
		{"side not multiple of 4", AtoB, 30, 32, 3 * 30 * 32},
		{"side too small", AtoB, 4, 4, 3 * 4 * 4},
		{"side too large", BtoA, 4096, 8, 3 * 4096 * 8},
		{"wrong length", AtoB, 16, 16, 3*16*16 - 1},
		{"unknown direction", Direction(2), 16, 16, 3 * 16 * 16},
	}
	for _, c := range cases {
		if _, err := tr.Translate(c.direction, make([]float32, c.values), c.height, c.width); !errors.Is(err, ErrInvalidImage) {
			t.Errorf("%s: error = %v, want ErrInvalidImage", c.name, err)
		}
	}
}

func TestTranslatorBoundsGraphCache(t *testing.T) {
	m := newTestModel(t, tinyConfig(), 4)
	tr := m.Translator()
	defer tr.Close()
	for side := 8; side < 8+4*(maxTranslatorGraphs+2); side += 4 {
		if _, err := tr.Translate(AtoB, make([]float32, 3*side*side), side, side); err != nil {
			t.Fatalf("side %d: %v", side, err)
		}
	}
	if len(tr.graphs) != maxTranslatorGraphs || len(tr.order) != maxTranslatorGraphs {
		t.Errorf("cache holds %d graphs (%d in order), want %d", len(tr.graphs), len(tr.order), maxTranslatorGraphs)
	}
	if _, ok := tr.graphs[translatorKey{AtoB, 8, 8}]; ok {
		t.Error("the oldest graph was not dropped")
	}
}
