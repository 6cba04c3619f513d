//go:build openblas

package gemm

/*
#cgo LDFLAGS: -lopenblas
void openblas_set_num_threads(int num_threads);
*/
import "C"

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/netlib/blas/netlib"
)

// Build names the GEMM backend compiled in.
const Build = "openblas"

// Kernel names the float32 GEMM kernel in use.
func Kernel() string { return "openblas" }

func init() {
	// Callers run one GEMM per goroutine (see the package comment); OpenBLAS's own threads
	// would oversubscribe the cores. This is a process-wide OpenBLAS setting.
	C.openblas_set_num_threads(1)
}

func sgemm(ws *Workspace, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	blasSgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

func sgemmFill(ws *Workspace, m, n, k int, alpha float32, a []float32, lda int, fill Filler, beta float32, c []float32, ldc int) {
	fillChunked(ws, m, n, k, alpha, a, lda, fill, beta, c, ldc)
}

func blasSgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	netlib.Implementation{}.Sgemm(transpose(transA), transpose(transB), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

func dgemm(transA, transB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	netlib.Implementation{}.Dgemm(transpose(transA), transpose(transB), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

func transpose(t bool) blas.Transpose {
	if t {
		return blas.Trans
	}
	return blas.NoTrans
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
