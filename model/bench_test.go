package model

import (
	"syscall"
	"testing"
	"time"
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
	cpu := processCPUTime()
	for b.Loop() {
		if _, err := m.Step(a, c); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1e3/float64(b.N), "ms/step")
	// The process's CPU time per step varies less than the wall time on a
	// shared machine, which includes waiting for a core; their ratio is how
	// many cores the step keeps busy.
	b.ReportMetric(float64((processCPUTime()-cpu).Microseconds())/1e3/float64(b.N), "cpu-ms/step")
}

// processCPUTime returns the user and system CPU time of the process so far.
func processCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
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
