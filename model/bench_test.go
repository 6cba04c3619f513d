package model

import (
	"testing"
)

// benchmarkTrainStep times Step at batch 1 with the pool on and LSGAN;
// building the graphs is outside the timing.
func benchmarkTrainStep(b *testing.B, cfg Config) {
	cfg.DatasetSize = 1483
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	m := newTestModel(b, cfg, 1)
	rng := newTestRand(1)
	a := randomImages(rng, 1, cfg.imageLen())
	c := randomImages(rng, 1, cfg.imageLen())
	if _, err := m.Step(a, c); err != nil { // first run allocates the ops' buffers
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := m.Step(a, c); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/step")
}

// BenchmarkTrainStep is the cpu preset: 64 px, ngf = ndf = 32, 6 blocks.
func BenchmarkTrainStep(b *testing.B) {
	cfg, _ := Preset(PresetCPU)
	benchmarkTrainStep(b, cfg)
}

// BenchmarkTrainStep128 is the cpu preset's networks at 128 px.
func BenchmarkTrainStep128(b *testing.B) {
	cfg, _ := Preset(PresetCPU)
	cfg.LoadSize, cfg.CropSize = 144, 128
	benchmarkTrainStep(b, cfg)
}
