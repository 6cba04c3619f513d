package model

import (
	"math"
	"testing"
)

func TestFirstNonFiniteIn(t *testing.T) {
	big := make([]float32, 3*minParallelElements) // split across goroutines
	tests := []struct {
		name         string
		slice, index int
		value        float32
	}{
		{"NaN in the first slice", 0, 5, float32(math.NaN())},
		{"+Inf at the end of the big slice", 1, len(big) - 1, float32(math.Inf(1))},
		{"-Inf in the middle of the big slice", 1, len(big) / 2, float32(math.Inf(-1))},
		{"NaN in the last slice", 2, 0, float32(math.NaN())},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := [][]float32{make([]float32, 10), make([]float32, len(big)), make([]float32, 3)}
			data[tc.slice][tc.index] = tc.value
			// A later non-finite value must not hide the first one.
			data[2][2] = float32(math.Inf(1))
			at := firstNonFiniteIn(data)
			if !at.found || at.slice != tc.slice || at.index != tc.index {
				t.Errorf("found %v at slice %d index %d, want slice %d index %d", at.found, at.slice, at.index, tc.slice, tc.index)
			}
		})
	}
	if at := firstNonFiniteIn([][]float32{big, {1, -2, math.MaxFloat32}}); at.found {
		t.Errorf("finite data: found a non-finite value at slice %d index %d", at.slice, at.index)
	}
}

func TestForEachPieceCoversEveryElementOnce(t *testing.T) {
	for _, lengths := range [][]int{{0}, {5, 0, 7}, {minParallelElements, 3, 2 * minParallelElements, 1}} {
		seen := make([][]int, len(lengths))
		for i, n := range lengths {
			seen[i] = make([]int, n)
		}
		counts := make(chan [3]int, 1024)
		go func() {
			forEachPiece(lengths, func(_, i, lo, hi int) { counts <- [3]int{i, lo, hi} })
			close(counts)
		}()
		for c := range counts {
			for j := c[1]; j < c[2]; j++ {
				seen[c[0]][j]++
			}
		}
		for i := range seen {
			for j, n := range seen[i] {
				if n != 1 {
					t.Fatalf("lengths %v: element %d of slice %d visited %d times", lengths, j, i, n)
				}
			}
		}
	}
}
