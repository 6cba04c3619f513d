package loader

import (
	"errors"
	"slices"
	"testing"
)

type pair struct{ a, b, epoch int }

func drawPairs(s *Sampler, n int) []pair {
	out := make([]pair, n)
	for i := range out {
		a, b, e := s.Next()
		out[i] = pair{a, b, e}
	}
	return out
}

func TestSamplerEpochCoverage(t *testing.T) {
	tests := []struct {
		name         string
		sizeA, sizeB int
	}{
		{"A larger", 7, 3},
		{"B larger", 3, 8},
		{"equal", 5, 5},
		{"single images", 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewSampler(tt.sizeA, tt.sizeB, 42, 0)
			if err != nil {
				t.Fatal(err)
			}
			perEpoch := max(tt.sizeA, tt.sizeB)
			if s.PairsPerEpoch() != perEpoch {
				t.Errorf("PairsPerEpoch %d, want %d", s.PairsPerEpoch(), perEpoch)
			}
			for epoch := range 3 {
				counts := make([]int, tt.sizeA)
				for _, p := range drawPairs(s, perEpoch) {
					if p.epoch != epoch {
						t.Fatalf("pair in epoch %d, want %d", p.epoch, epoch)
					}
					if p.b < 0 || p.b >= tt.sizeB {
						t.Fatalf("B index %d out of range [0, %d)", p.b, tt.sizeB)
					}
					counts[p.a]++
				}
				// Slots k = 0..perEpoch-1 map to k mod |A|, so each A image appears
				// floor or ceil of perEpoch/|A| times.
				lo, hi := perEpoch/tt.sizeA, (perEpoch+tt.sizeA-1)/tt.sizeA
				for a, c := range counts {
					if c < lo || c > hi {
						t.Errorf("epoch %d: A image %d drawn %d times, want %d..%d", epoch, a, c, lo, hi)
					}
				}
			}
			if s.Position() != int64(3*perEpoch) {
				t.Errorf("Position %d, want %d", s.Position(), 3*perEpoch)
			}
		})
	}
}

func TestSamplerShufflesEachEpoch(t *testing.T) {
	s, err := NewSampler(50, 10, 7, 0)
	if err != nil {
		t.Fatal(err)
	}
	var orders [][]int
	for range 2 {
		var order []int
		for _, p := range drawPairs(s, 50) {
			order = append(order, p.a)
		}
		orders = append(orders, order)
	}
	identity := make([]int, 50)
	for i := range identity {
		identity[i] = i
	}
	if slices.Equal(orders[0], identity) {
		t.Errorf("epoch 0 visits A in file order")
	}
	if slices.Equal(orders[0], orders[1]) {
		t.Errorf("epochs 0 and 1 visit A in the same order")
	}
}

func TestSamplerSeeds(t *testing.T) {
	newPairs := func(seed uint64) []pair {
		s, err := NewSampler(20, 30, seed, 0)
		if err != nil {
			t.Fatal(err)
		}
		return drawPairs(s, 100)
	}
	if !slices.Equal(newPairs(1), newPairs(1)) {
		t.Errorf("same seed gave different sequences")
	}
	if slices.Equal(newPairs(1), newPairs(2)) {
		t.Errorf("seeds 1 and 2 gave the same sequence")
	}
}

func TestSamplerResume(t *testing.T) {
	const sizeA, sizeB, seed = 6, 4, 99
	fresh, err := NewSampler(sizeA, sizeB, seed, 0)
	if err != nil {
		t.Fatal(err)
	}
	all := drawPairs(fresh, 30)

	for _, start := range []int64{0, 1, 5, 6, 7, 13, 24} {
		s, err := NewSampler(sizeA, sizeB, seed, start)
		if err != nil {
			t.Fatal(err)
		}
		if s.Position() != start {
			t.Errorf("start %d: Position %d", start, s.Position())
		}
		got := drawPairs(s, 30-int(start))
		if !slices.Equal(got, all[start:]) {
			t.Errorf("start %d: resumed sequence\n got %v\nwant %v", start, got, all[start:])
		}
	}
}

func TestSamplerUniformB(t *testing.T) {
	const sizeB, draws = 4, 20000
	s, err := NewSampler(10, sizeB, 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	counts := make([]int, sizeB)
	for _, p := range drawPairs(s, draws) {
		counts[p.b]++
	}
	// Each count is binomial with mean 5000 and standard deviation about 61, so ±300 is
	// about 5 standard deviations.
	for b, c := range counts {
		if c < draws/sizeB-300 || c > draws/sizeB+300 {
			t.Errorf("B image %d drawn %d times in %d, want about %d", b, c, draws, draws/sizeB)
		}
	}
}

func TestNewSamplerInvalid(t *testing.T) {
	tests := []struct {
		name         string
		sizeA, sizeB int
		start        int64
	}{
		{"empty A", 0, 3, 0},
		{"empty B", 3, 0, 0},
		{"negative start", 3, 3, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewSampler(tt.sizeA, tt.sizeB, 1, tt.start); !errors.Is(err, ErrInvalidSampler) {
				t.Errorf("error %v, want ErrInvalidSampler", err)
			}
		})
	}
}
