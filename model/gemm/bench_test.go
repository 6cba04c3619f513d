package gemm

import (
	"fmt"
	"testing"
)

// BenchmarkSgemm measures single-goroutine products at the shapes of the CycleGAN
// convolutions (m = output channels, n = output pixels, k = input channels × kernel area).
func BenchmarkSgemm(b *testing.B) {
	shapes := []struct {
		name           string
		transA, transB bool
		m, n, k        int
	}{
		{"res_forward", false, false, 128, 256, 1152},
		{"res_grad_input", true, false, 1152, 256, 128},
		{"res_grad_weight", false, true, 128, 1152, 256},
		{"down1_forward", false, false, 64, 1024, 288},
		{"out7x7_forward", false, false, 3, 4096, 1568},
		{"in7x7_forward", false, false, 32, 4096, 147},
	}
	for _, s := range shapes {
		b.Run(fmt.Sprintf("%s_%dx%dx%d", s.name, s.m, s.n, s.k), func(b *testing.B) {
			a := make([]float32, s.m*s.k)
			bm := make([]float32, s.k*s.n)
			c := make([]float32, s.m*s.n)
			for i := range a {
				a[i] = float32(i%7) * 0.1
			}
			for i := range bm {
				bm[i] = float32(i%5) * 0.1
			}
			lda, ldb := s.k, s.n
			if s.transA {
				lda = s.m
			}
			if s.transB {
				ldb = s.k
			}
			var ws Workspace
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := ws.Sgemm(s.transA, s.transB, s.m, s.n, s.k, 1, a, lda, bm, ldb, 0, c, s.n); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(2*float64(s.m*s.n*s.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkPack measures packing the weight of a residual-block convolution (128 output
// channels, 128·3·3 inputs), which the forward convolution does on every call.
func BenchmarkPack(b *testing.B) {
	const m, k = 128, 1152
	a := make([]float32, m*k)
	for i := range a {
		a[i] = float32(i % 11)
	}
	var pa PackedA
	b.SetBytes(int64(4 * m * k))
	for b.Loop() {
		if err := pa.Pack(false, m, k, a, k); err != nil {
			b.Fatal(err)
		}
	}
}
