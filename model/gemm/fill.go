package gemm

// fillBlockElements is the size of the B block that fillChunked materialises at a time
// (256 KiB of float32), small enough to stay in a core's L2 cache.
const fillBlockElements = 64 * 1024

// fillChunked computes SgemmFill with a BLAS backend: it materialises B a band of columns at
// a time and multiplies each band.
func fillChunked(ws *Workspace, m, n, k int, alpha float32, a []float32, lda int, fill Filler, beta float32, c []float32, ldc int) {
	cols := max(1, min(n, fillBlockElements/max(k, 1)))
	if cols < n && cols > 32 {
		cols -= cols % 32
	}
	ws.block = grow(ws.block, k*cols)
	for n0 := 0; n0 < n; n0 += cols {
		nn := min(cols, n-n0)
		if k > 0 {
			fill(ws.block, nn, 0, k, n0, nn)
		}
		blasSgemm(false, false, m, nn, k, alpha, a, lda, ws.block, max(1, nn), beta, c[n0:], ldc)
	}
}

// prepareRowMajor sizes pa to hold an m×k matrix row-major, the layout of the BLAS backends.
func (pa *PackedA) prepareRowMajor(m, k int) {
	pa.m, pa.k = m, k
	pa.data = grow(pa.data, m*k)
}

// packRowMajorPart copies part `part` of `parts` of A's rows into pa's row-major storage.
func (pa *PackedA) packRowMajorPart(part, parts int, a []float32, lda int) {
	lo, hi := pa.m*part/parts, pa.m*(part+1)/parts
	for i := lo; i < hi; i++ {
		copy(pa.data[i*pa.k:(i+1)*pa.k], a[i*lda:i*lda+pa.k])
	}
}
