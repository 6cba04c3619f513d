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

// prepare sizes pa for an m×k matrix in the layout of pack.
func (pa *PackedA) prepare(m, k int) {
	if !hasAVX512 {
		pa.prepareRowMajor(m, k)
		return
	}
	pa.m, pa.k = m, k
	pa.mr = panelRows(m)
	pa.data = grow(pa.data, (m+pa.mr-1)/pa.mr*pa.mr*k)
}

// packPart stores the panels of part `part` of `parts` of the row-major matrix a in the
// layout of pack, reading each row of a sequentially.
func (pa *PackedA) packPart(part, parts int, a []float32, lda int) {
	if !hasAVX512 {
		pa.packRowMajorPart(part, parts, a, lda)
		return
	}
	m, k, mr := pa.m, pa.k, pa.mr
	panels := (m + mr - 1) / mr
	mPad := panels * mr
	for q := panels * part / parts * mr; q < panels*(part+1)/parts*mr; q += mr {
		rows := min(mr, m-q)
		for pc := 0; pc < k; pc += kcMax {
			kc := min(kcMax, k-pc)
			dst := pa.data[pc*mPad+q*kc : pc*mPad+q*kc+kc*mr]
			packRows(dst, a[q*lda+pc:], lda, rows, kc, mr)
		}
	}
}

// packRows writes `rows` rows of kc values of a (row stride lda) into dst as kc groups of mr
// values, zero beyond `rows`.
func packRows(dst, a []float32, lda, rows, kc, mr int) {
	dst = dst[:kc*mr]
	if rows == 12 && mr == 12 {
		packRows12(dst, a, lda, kc)
		return
	}
	for r := 0; r < mr; r++ {
		if r >= rows {
			for p := r; p < len(dst); p += mr {
				dst[p] = 0
			}
			continue
		}
		p := r
		for _, v := range a[r*lda : r*lda+kc] {
			dst[p] = v
			p += mr
		}
	}
}

// packRows12 is packRows for a full panel of 12 rows. Writing each group of 12 at once keeps
// the stores sequential; the rows are resliced to one length so that the compiler drops the
// bounds checks of the loads.
func packRows12(dst, a []float32, lda, kc int) {
	r0 := a[0*lda : 0*lda+kc]
	r1 := a[1*lda:][:len(r0)]
	r2 := a[2*lda:][:len(r0)]
	r3 := a[3*lda:][:len(r0)]
	r4 := a[4*lda:][:len(r0)]
	r5 := a[5*lda:][:len(r0)]
	r6 := a[6*lda:][:len(r0)]
	r7 := a[7*lda:][:len(r0)]
	r8 := a[8*lda:][:len(r0)]
	r9 := a[9*lda:][:len(r0)]
	r10 := a[10*lda:][:len(r0)]
	r11 := a[11*lda:][:len(r0)]
	for p := range r0 {
		g := (*[12]float32)(dst[p*12:])
		g[0], g[1], g[2], g[3] = r0[p], r1[p], r2[p], r3[p]
		g[4], g[5], g[6], g[7] = r4[p], r5[p], r6[p], r7[p]
		g[8], g[9], g[10], g[11] = r8[p], r9[p], r10[p], r11[p]
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
	if transA {
		packTransposed(dst, a, lda, i0, mc, p0, kc, mr)
	}
	for q := 0; q < mc; q += mr {
		rows := min(mr, mc-q)
		panel := dst[q*kc : q*kc+kc*mr]
		if !transA {
			// Row by row, so that A is read sequentially.
			packRows(panel, a[(i0+q)*lda+p0:], lda, rows, kc, mr)
		}
		if alpha != 1 {
			for i := range panel {
				panel[i] *= alpha
			}
		}
	}
}

// packTransposed is packA for op(A) = Aᵀ: row p0+p of a holds group p of every panel. It
// walks a row by row, because walking a panel at a time would read one short group per row
// of a, each on another page once rows are a few KiB apart.
func packTransposed(dst, a []float32, lda, i0, mc, p0, kc, mr int) {
	full := mc / mr * mr // rows in full panels
	for p := 0; p < kc; p++ {
		src := a[(p0+p)*lda+i0:][:mc]
		q := 0
		if mr == 12 {
			for ; q < full; q += 12 {
				v := *(*[12]float32)(src[q:])
				*(*[12]float32)(dst[q*kc+p*12:]) = v
			}
		}
		for ; q < mc; q += mr {
			rows := min(mr, mc-q)
			group := dst[q*kc+p*mr:][:mr]
			copy(group[:rows], src[q:q+rows])
			clear(group[rows:])
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
