//go:build amd64 && !openblas && !purego

package gemm

import "golang.org/x/sys/cpu"

// hasAVX512 reports whether the AVX-512 kernels can run; it is set once at start-up.
var hasAVX512 = cpu.X86.HasAVX512F

// Kernel names the float32 GEMM kernel in use: avx512 (Go assembly) or gonum.
func Kernel() string {
	if hasAVX512 {
		return "avx512"
	}
	return "gonum"
}

// The micro-kernels (kernel_amd64.s) compute an mr×32 tile of C from a packed A panel (k
// columns of mr values) and a packed B panel (k rows of 32 values), storing or adding it at c
// with row stride ldc elements.
//
//go:noescape
func kernel4x32(k int, a, b, c *float32, ldc int, accumulate bool)

//go:noescape
func kernel8x32(k int, a, b, c *float32, ldc int, accumulate bool)

//go:noescape
func kernel12x32(k int, a, b, c *float32, ldc int, accumulate bool)

func sgemm(ws *Workspace, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if !hasAVX512 {
		blasSgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	src := matrixB{b: b, ldb: ldb, trans: transB}
	blocked(ws, m, n, k, unpackedA{transA: transA, a: a, lda: lda, alpha: alpha}, src.panel, beta, c, ldc)
}

func sgemmFill(ws *Workspace, m, n, k int, alpha float32, a []float32, lda int, fill Filler, beta float32, c []float32, ldc int) {
	if !hasAVX512 {
		fillChunked(ws, m, n, k, alpha, a, lda, fill, beta, c, ldc)
		return
	}
	src := filledB{fill: fill}
	blocked(ws, m, n, k, unpackedA{a: a, lda: lda, alpha: alpha}, src.panel, beta, c, ldc)
}

func sgemmPacked(ws *Workspace, pa *PackedA, n int, fill Filler, beta float32, c []float32, ldc int) {
	if !hasAVX512 {
		fillChunked(ws, pa.m, n, pa.k, 1, pa.data, max(1, pa.k), fill, beta, c, ldc)
		return
	}
	src := filledB{fill: fill}
	blocked(ws, pa.m, n, pa.k, prepackedA{pa}, src.panel, beta, c, ldc)
}

// pack lays out op(A) for the AVX-512 kernels: for each block of kcMax columns, panels of
// panelRows(m) rows, each holding the block's columns as groups of that many values. Without
// AVX-512 it stores op(A) row-major.
func (pa *PackedA) pack(m, k int, rows func(i int, dst []float32)) {
	pa.m, pa.k = m, k
	if !hasAVX512 {
		pa.data = grow(pa.data, m*k)
		for i := 0; i < m; i++ {
			rows(i, pa.data[i*k:(i+1)*k])
		}
		return
	}
	mr := panelRows(m)
	mPad := (m + mr - 1) / mr * mr
	pa.mr = mr
	pa.data = grow(pa.data, mPad*k)
	// Gather one panel's rows, then interleave them, so that the packed data is written
	// sequentially.
	pa.row = grow(pa.row, mr*k)
	for q := 0; q < mPad; q += mr {
		for r := 0; r < mr; r++ {
			if q+r < m {
				rows(q+r, pa.row[r*k:(r+1)*k])
			} else {
				clear(pa.row[r*k : (r+1)*k])
			}
		}
		for pc := 0; pc < k; pc += kcMax {
			kc := min(kcMax, k-pc)
			dst := pa.data[pc*mPad+q*kc : pc*mPad+q*kc+kc*mr]
			for p := 0; p < kc; p++ {
				group := dst[p*mr : (p+1)*mr]
				for r := range group {
					group[r] = pa.row[r*k+pc+p]
				}
			}
		}
	}
}

// aSource provides packed blocks of A to blocked.
type aSource interface {
	// rowsPerPanel returns the micro-kernel height.
	rowsPerPanel() int
	// block returns rows [i0, i0+mc) and columns [p0, p0+kc) as consecutive panels of
	// rowsPerPanel() rows, each kc groups long.
	block(ws *Workspace, i0, mc, p0, kc int) []float32
}

type unpackedA struct {
	transA bool
	a      []float32
	lda    int
	alpha  float32
	mr     int
}

func (u unpackedA) rowsPerPanel() int { return u.mr }

func (u unpackedA) block(ws *Workspace, i0, mc, p0, kc int) []float32 {
	packA(ws.packA, u.transA, u.a, u.lda, i0, mc, p0, kc, u.mr, u.alpha)
	return ws.packA
}

type prepackedA struct{ pa *PackedA }

func (p prepackedA) rowsPerPanel() int { return p.pa.mr }

func (p prepackedA) block(ws *Workspace, i0, mc, p0, kc int) []float32 {
	mPad := (p.pa.m + p.pa.mr - 1) / p.pa.mr * p.pa.mr
	return p.pa.data[p0*mPad+i0*kc:]
}

// panelWidth is the number of columns of C that one micro-kernel call computes.
const panelWidth = 32

// Block sizes: a kc×panelWidth panel of B (32 KiB) stays in L1 while the kernel walks the
// A panels of an mcMax×kc block (up to 144 KiB, in L2); B is packed ncMax columns at a time.
const (
	kcMax = 256
	mcMax = 144
	ncMax = 1024
)

// packPanelB writes rows k0..k0+kc of columns j0..j0+nr (nr ≤ panelWidth) of B into dst as
// kc rows of panelWidth values, zero beyond nr.
type packPanelB func(dst []float32, k0, kc, j0, nr int)

type matrixB struct {
	b     []float32
	ldb   int
	trans bool
}

func (m matrixB) panel(dst []float32, k0, kc, j0, nr int) {
	for p := 0; p < kc; p++ {
		row := dst[p*panelWidth : (p+1)*panelWidth]
		if m.trans {
			for j := 0; j < nr; j++ {
				row[j] = m.b[(j0+j)*m.ldb+k0+p]
			}
		} else {
			copy(row[:nr], m.b[(k0+p)*m.ldb+j0:])
		}
		clear(row[nr:])
	}
}

type filledB struct {
	fill Filler
}

func (f filledB) panel(dst []float32, k0, kc, j0, nr int) {
	f.fill(dst, panelWidth, k0, kc, j0, nr)
	if nr < panelWidth {
		for p := 0; p < kc; p++ {
			clear(dst[p*panelWidth+nr : (p+1)*panelWidth])
		}
	}
}

// panelRows returns the micro-kernel height for m rows: the one that computes the fewest
// padded rows, weighted by the kernels' measured relative speed (12 rows fastest).
func panelRows(m int) int {
	best, bestCost := 12, 0.0
	for _, k := range []struct {
		rows  int
		speed float64
	}{{12, 1}, {8, 0.8}, {4, 0.5}} {
		cost := float64((m+k.rows-1)/k.rows*k.rows) / k.speed
		if bestCost == 0 || cost < bestCost {
			best, bestCost = k.rows, cost
		}
	}
	return best
}

// blocked computes C = alpha·op(A)·B + beta·C with the AVX-512 kernels, B coming in packed
// panels from packB.
func blocked(ws *Workspace, m, n, k int, src aSource, packB packPanelB, beta float32, c []float32, ldc int) {
	if k == 0 {
		if beta != 1 {
			scaleC(m, n, beta, c, ldc)
		}
		return
	}
	if beta != 0 && beta != 1 {
		scaleC(m, n, beta, c, ldc)
	}
	if u, ok := src.(unpackedA); ok {
		u.mr = panelRows(m)
		src = u
	}
	mr := src.rowsPerPanel()
	kernel := kernel12x32
	switch mr {
	case 8:
		kernel = kernel8x32
	case 4:
		kernel = kernel4x32
	}
	mc := mcMax / mr * mr
	if _, ok := src.(unpackedA); ok {
		ws.packA = grow(ws.packA, min(mc, (m+mr-1)/mr*mr)*min(k, kcMax))
	}
	ws.packB = grow(ws.packB, min(ncMax, (n+panelWidth-1)/panelWidth*panelWidth)*min(k, kcMax))
	ws.tile = grow(ws.tile, 12*panelWidth)
	for jc := 0; jc < n; jc += ncMax {
		nc := min(ncMax, n-jc)
		for pc := 0; pc < k; pc += kcMax {
			kc := min(kcMax, k-pc)
			// With beta == 0 the first pass over k stores instead of adding, so C's initial
			// contents (possibly NaN) are never read.
			accumulate := pc > 0 || beta != 0
			for j := 0; j < nc; j += panelWidth {
				packB(ws.packB[j*kc:(j+panelWidth)*kc], pc, kc, jc+j, min(panelWidth, nc-j))
			}
			for ic := 0; ic < m; ic += mc {
				mcur := min(mc, m-ic)
				ablock := src.block(ws, ic, mcur, pc, kc)
				for j := 0; j < nc; j += panelWidth {
					nr := min(panelWidth, nc-j)
					bp := &ws.packB[j*kc]
					for i := 0; i < mcur; i += mr {
						rows := min(mr, mcur-i)
						ap := &ablock[i*kc]
						ci := (ic+i)*ldc + jc + j
						if rows == mr && nr == panelWidth {
							kernel(kc, ap, bp, &c[ci], ldc, accumulate)
							continue
						}
						kernel(kc, ap, bp, &ws.tile[0], panelWidth, false)
						mergeTile(ws.tile, rows, nr, c[ci:], ldc, accumulate)
					}
				}
			}
		}
	}
}

// packA writes rows i0..i0+mc and columns p0..p0+kc of op(A), times alpha, as panels of mr
// rows: panel q holds kc groups of mr values, zero for rows beyond mc.
func packA(dst []float32, transA bool, a []float32, lda, i0, mc, p0, kc, mr int, alpha float32) {
	for q := 0; q < mc; q += mr {
		rows := min(mr, mc-q)
		panel := dst[q*kc : q*kc+kc*mr]
		if transA {
			for p := 0; p < kc; p++ {
				group := panel[p*mr : (p+1)*mr]
				copy(group[:rows], a[(p0+p)*lda+i0+q:])
				clear(group[rows:])
			}
		} else {
			// Row by row, so that A is read sequentially.
			for r := 0; r < mr; r++ {
				if r >= rows {
					for p := 0; p < kc; p++ {
						panel[p*mr+r] = 0
					}
					continue
				}
				for p, v := range a[(i0+q+r)*lda+p0 : (i0+q+r)*lda+p0+kc] {
					panel[p*mr+r] = v
				}
			}
		}
		if alpha != 1 {
			for i := range panel {
				panel[i] *= alpha
			}
		}
	}
}

// mergeTile stores or adds the rows×nr corner of tile (row stride panelWidth) into c.
func mergeTile(tile []float32, rows, nr int, c []float32, ldc int, accumulate bool) {
	for r := 0; r < rows; r++ {
		src := tile[r*panelWidth : r*panelWidth+nr]
		dst := c[r*ldc : r*ldc+nr]
		if accumulate {
			for j, v := range src {
				dst[j] += v
			}
		} else {
			copy(dst, src)
		}
	}
}

// scaleC multiplies C by beta; beta == 0 clears it, so NaN in C does not survive.
func scaleC(m, n int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
			continue
		}
		for j := range row {
			row[j] *= beta
		}
	}
}
