//go:build amd64 && !openblas && !purego

package gemm

import "testing"

// TestSgemmWithoutAVX512 runs the gonum path that CPUs without AVX-512 take.
func TestSgemmWithoutAVX512(t *testing.T) {
	saved := hasAVX512
	hasAVX512 = false
	t.Cleanup(func() { hasAVX512 = saved })
	TestSgemmMatchesNaive(t)
	TestSgemmFillMatchesNaive(t)
	TestSgemmPackedMatchesNaive(t)
}
