// Package gemm multiplies dense row-major matrices for the convolution ops of package
// model/ops. Its entry points follow CBLAS's argument order in row-major layout: Sgemm and
// Dgemm, and on a Workspace, which keeps packing buffers between calls, Sgemm and SgemmFill,
// whose right-hand matrix is produced block by block by a callback (an implicit im2col).
//
// Every call runs on the calling goroutine, so callers parallelise by giving each goroutine
// its own Workspace and its own part of the output.
//
// The backend is chosen at build time, and Build names it:
//   - pure-go (the default, no cgo): float32 products use AVX-512 micro-kernels written in Go
//     assembly when the CPU has AVX-512F, and gonum's BLAS otherwise. Float64 products always
//     use gonum's BLAS. The build tag purego leaves the assembly out. Kernel names the float32
//     kernel in use.
//   - openblas (build tag openblas, cgo, Debian's libopenblas-dev): OpenBLAS for both, set to
//     one thread per call.
//
// GOEXPERIMENT=simd builds the default backend unchanged. In a Go 1.26.8 test build,
// micro-kernels written with simd/archsimd used only Z0–Z15 and kept accumulators on the
// stack. They reached 25 to 39 GFLOP/s on one core of a 2-core AVX-512 Xeon, against 130 to
// 180 GFLOP/s for the assembly kernels.
package gemm

//go:generate go run gen_kernels.go

import (
	"errors"
	"fmt"
)

// ErrInvalidArgument is returned when a dimension, leading dimension or slice length does not
// fit the requested product.
var ErrInvalidArgument = errors.New("gemm: invalid argument")

// Workspace holds the packing buffers of float32 products. The zero value is ready to use.
// A Workspace must not be used by two goroutines at once.
type Workspace struct {
	packA, packB, tile, block []float32
}

// Filler writes the block B[k0:k0+kn, n0:n0+nn] of a k×n matrix into dst, row by row with
// row stride ld: dst[i·ld + j] = B[k0+i, n0+j]. It must write every element of the block.
type Filler func(dst []float32, ld, k0, kn, n0, nn int)

// Sgemm computes C = alpha·op(A)·op(B) + beta·C for float32 row-major matrices, where op(X) is
// X or its transpose as transA and transB select, op(A) is m×k, op(B) is k×n and C is m×n.
// lda, ldb and ldc are the row strides in elements. With beta == 0, C is only written, so it
// may hold anything (NaN included) on entry. Sgemm allocates its packing buffers on every
// call; Workspace.Sgemm reuses them.
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) error {
	var ws Workspace
	return ws.Sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// Sgemm is the package-level Sgemm with the workspace's buffers.
func (ws *Workspace) Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) error {
	if err := check(transA, transB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc); err != nil {
		return err
	}
	if m == 0 || n == 0 {
		return nil
	}
	sgemm(ws, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	return nil
}

// SgemmFill computes C = alpha·A·B + beta·C like Sgemm without transposes, where the k×n
// matrix B exists only as fill, which is asked for blocks of at most a few hundred kilobytes.
func (ws *Workspace) SgemmFill(m, n, k int, alpha float32, a []float32, lda int, fill Filler, beta float32, c []float32, ldc int) error {
	if fill == nil {
		return fmt.Errorf("%w: nil Filler", ErrInvalidArgument)
	}
	if err := checkSizes(m, n, k); err != nil {
		return err
	}
	if err := checkMatrix("A", m, k, len(a), lda); err != nil {
		return err
	}
	if err := checkMatrix("C", m, n, len(c), ldc); err != nil {
		return err
	}
	if m == 0 || n == 0 {
		return nil
	}
	sgemmFill(ws, m, n, k, alpha, a, lda, fill, beta, c, ldc)
	return nil
}

// PackedA is a float32 left-hand matrix packed once for several products, for example a
// convolution weight used for every sample and by several goroutines. The zero value is
// empty; Pack or PackRows fill it. A packed matrix is read-only during products, so several
// goroutines may share it.
type PackedA struct {
	m, k int
	mr   int // rows per panel of the AVX-512 layout
	data []float32
	row  []float32
}

// Pack stores op(A), the m×k matrix A or the transpose of the k×m matrix A.
func (pa *PackedA) Pack(transA bool, m, k int, a []float32, lda int) error {
	if err := checkSizes(m, 0, k); err != nil {
		return err
	}
	rows, cols := m, k
	if transA {
		rows, cols = k, m
	}
	if err := checkMatrix("A", rows, cols, len(a), lda); err != nil {
		return err
	}
	if !transA {
		pa.prepare(m, k)
		if m > 0 && k > 0 {
			pa.packPart(0, 1, a, lda)
		}
		return nil
	}
	pa.pack(m, k, func(i int, dst []float32) {
		if transA {
			for p := range dst {
				dst[p] = a[p*lda+i]
			}
		} else {
			copy(dst, a[i*lda:i*lda+k])
		}
	})
	return nil
}

// Prepare sizes pa for the m×k row-major matrix that PackPart then stores part by part.
func (pa *PackedA) Prepare(m, k int) error {
	if err := checkSizes(m, 0, k); err != nil {
		return err
	}
	pa.prepare(m, k)
	return nil
}

// PackPart stores part `part` of `parts` of the rows of the m×k row-major matrix A (row
// stride lda) that Prepare sized pa for. The parts write disjoint memory, so goroutines may
// pack different parts of one matrix at once; parts 0 to parts−1 together store all of A.
func (pa *PackedA) PackPart(part, parts int, a []float32, lda int) error {
	if parts < 1 || part < 0 || part >= parts {
		return fmt.Errorf("%w: part %d of %d", ErrInvalidArgument, part, parts)
	}
	if err := checkMatrix("A", pa.m, pa.k, len(a), lda); err != nil {
		return err
	}
	if pa.m == 0 || pa.k == 0 {
		return nil
	}
	pa.packPart(part, parts, a, lda)
	return nil
}

// PackRows stores the m×k matrix whose row i the callback writes into dst (k values).
func (pa *PackedA) PackRows(m, k int, row func(i int, dst []float32)) error {
	if err := checkSizes(m, 0, k); err != nil {
		return err
	}
	if row == nil {
		return fmt.Errorf("%w: nil row callback", ErrInvalidArgument)
	}
	pa.pack(m, k, row)
	return nil
}

// SgemmPacked computes C = A·B + beta·C like SgemmFill, with A packed beforehand.
func (ws *Workspace) SgemmPacked(pa *PackedA, n int, fill Filler, beta float32, c []float32, ldc int) error {
	if pa == nil || fill == nil {
		return fmt.Errorf("%w: nil packed matrix or Filler", ErrInvalidArgument)
	}
	if err := checkSizes(pa.m, n, pa.k); err != nil {
		return err
	}
	if err := checkMatrix("C", pa.m, n, len(c), ldc); err != nil {
		return err
	}
	if pa.m == 0 || n == 0 {
		return nil
	}
	sgemmPacked(ws, pa, n, fill, beta, c, ldc)
	return nil
}

// Dgemm is Sgemm for float64.
func Dgemm(transA, transB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) error {
	if err := check(transA, transB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc); err != nil {
		return err
	}
	if m == 0 || n == 0 {
		return nil
	}
	dgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	return nil
}

// check validates the arguments of a row-major GEMM so that no backend can read or write out
// of bounds.
func check(transA, transB bool, m, n, k, lenA, lda, lenB, ldb, lenC, ldc int) error {
	if err := checkSizes(m, n, k); err != nil {
		return err
	}
	rowsA, colsA := m, k
	if transA {
		rowsA, colsA = k, m
	}
	rowsB, colsB := k, n
	if transB {
		rowsB, colsB = n, k
	}
	if err := checkMatrix("A", rowsA, colsA, lenA, lda); err != nil {
		return err
	}
	if err := checkMatrix("B", rowsB, colsB, lenB, ldb); err != nil {
		return err
	}
	return checkMatrix("C", m, n, lenC, ldc)
}

func checkSizes(m, n, k int) error {
	if m < 0 || n < 0 || k < 0 {
		return fmt.Errorf("%w: negative size m=%d n=%d k=%d", ErrInvalidArgument, m, n, k)
	}
	return nil
}

func checkMatrix(name string, rows, cols, length, ld int) error {
	if ld < max(1, cols) {
		return fmt.Errorf("%w: leading dimension of %s is %d, want at least %d", ErrInvalidArgument, name, ld, max(1, cols))
	}
	if rows == 0 || cols == 0 {
		return nil
	}
	if need := (rows-1)*ld + cols; length < need {
		return fmt.Errorf("%w: %s (%d×%d, leading dimension %d) needs %d elements, got %d",
			ErrInvalidArgument, name, rows, cols, ld, need, length)
	}
	return nil
}

// grow returns s resized to n elements, reallocating when its capacity is too small.
func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}
