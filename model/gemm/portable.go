//go:build (!amd64 || purego) && !openblas

package gemm

// Kernel names the float32 GEMM kernel in use.
func Kernel() string { return "gonum" }

func sgemm(ws *Workspace, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	blasSgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

func sgemmFill(ws *Workspace, m, n, k int, alpha float32, a []float32, lda int, fill Filler, beta float32, c []float32, ldc int) {
	fillChunked(ws, m, n, k, alpha, a, lda, fill, beta, c, ldc)
}

func sgemmPacked(ws *Workspace, pa *PackedA, n int, fill Filler, beta float32, c []float32, ldc int) {
	fillChunked(ws, pa.m, n, pa.k, 1, pa.data, max(1, pa.k), fill, beta, c, ldc)
}

func (pa *PackedA) pack(m, k int, rows func(i int, dst []float32)) {
	pa.m, pa.k = m, k
	pa.data = grow(pa.data, m*k)
	for i := 0; i < m; i++ {
		rows(i, pa.data[i*k:(i+1)*k])
	}
}

func (pa *PackedA) prepare(m, k int) { pa.prepareRowMajor(m, k) }

func (pa *PackedA) packPart(part, parts int, a []float32, lda int) {
	pa.packRowMajorPart(part, parts, a, lda)
}
