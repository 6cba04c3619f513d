package model

import (
	"runtime"
	"sync"
)

// minParallelElements is the element count below which forEachPiece stays on the calling
// goroutine: starting and joining a goroutine costs a few microseconds, about as long as a
// pass over this many float32 values.
const minParallelElements = 64 * 1024

// forEachPiece splits the concatenation of slices of the given lengths into GOMAXPROCS
// contiguous parts of about equal size and runs each part on its own goroutine. Each part
// calls fn for every piece [lo, hi) of slice i that falls in it, in slice order. Every
// element belongs to exactly one piece.
func forEachPiece(lengths []int, fn func(part, i, lo, hi int)) {
	total := 0
	for _, n := range lengths {
		total += n
	}
	parts := runtime.GOMAXPROCS(0)
	if total < minParallelElements {
		parts = 1
	}
	runPart := func(part int) {
		start, end := total*part/parts, total*(part+1)/parts
		offset := 0
		for i, n := range lengths {
			lo, hi := max(start-offset, 0), min(end-offset, n)
			if lo < hi {
				fn(part, i, lo, hi)
			}
			offset += n
			if offset >= end {
				return
			}
		}
	}
	var wg sync.WaitGroup
	for part := 1; part < parts; part++ {
		wg.Go(func() { runPart(part) })
	}
	runPart(0)
	wg.Wait()
}

// nonFiniteAt is the position of the first NaN or infinity found in a list of slices.
type nonFiniteAt struct {
	found bool
	slice int // index of the slice
	index int // index within the slice
	value float32
}

// firstNonFiniteIn returns the first NaN or infinity of the slices in order, checking parts
// of them concurrently.
func firstNonFiniteIn(data [][]float32) nonFiniteAt {
	lengths := make([]int, len(data))
	for i, d := range data {
		lengths[i] = len(d)
	}
	firsts := make([]nonFiniteAt, runtime.GOMAXPROCS(0))
	forEachPiece(lengths, func(part, i, lo, hi int) {
		if firsts[part].found {
			return
		}
		if !hasNonFinite(data[i][lo:hi]) {
			return
		}
		if j, v, bad := firstNonFinite(data[i][lo:hi]); bad {
			firsts[part] = nonFiniteAt{found: true, slice: i, index: lo + j, value: v}
		}
	})
	// Parts cover increasing ranges, so the first part that found one has the first.
	for _, f := range firsts {
		if f.found {
			return f
		}
	}
	return nonFiniteAt{}
}

// hasNonFinite reports whether data contains a NaN or an infinity. v·0 is 0 for a finite v
// and NaN otherwise, so the sums stay 0 until one appears. The loop has no branch to
// mispredict, and its four sums do not wait on each other.
func hasNonFinite(data []float32) bool {
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(data); i += 4 {
		s0 += data[i] * 0
		s1 += data[i+1] * 0
		s2 += data[i+2] * 0
		s3 += data[i+3] * 0
	}
	for ; i < len(data); i++ {
		s0 += data[i] * 0
	}
	return s0+s1+s2+s3 != 0 || s0 != s0 || s1 != s1 || s2 != s2 || s3 != s3
}
